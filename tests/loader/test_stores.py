"""The same corpus on S3 (moto server) and GCS (emulator) gives the same batches as on local disk."""

from __future__ import annotations

import dataclasses

import fsspec
import pytest
import torch

from dreamstream.datasets.loader import LoaderConfig, make_loader


def copy_to(corpus, bucket_url: str) -> str:
    fs, root = fsspec.core.url_to_fs(bucket_url)
    fs.put(corpus.url + "/", root + "/ds/", recursive=True, batch_size=1)
    return bucket_url + "/ds"


def batches(url: str, config: LoaderConfig, count: int | None = None,
            storage_options: dict | None = None) -> list[dict[str, torch.Tensor]]:
    with make_loader(url, config, storage_options=storage_options) as loader:
        return list(loader) if count is None else [b for _, b in zip(range(count), loader, strict=False)]


def assert_equal(got, expected) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert a.keys() == b.keys()
        for name in a:
            assert torch.equal(a[name], b[name]), name


@pytest.mark.parametrize("store", ["s3", "gcs"])
@pytest.mark.parametrize("mode", ["tbtt", "windows"])
def test_object_stores_give_the_local_batches(request, corpus, store, mode):
    url = copy_to(corpus, request.getfixturevalue(f"{store}_url"))
    config = LoaderConfig(batch_size=4, seq_len=10, mode=mode, shuffle_buffer=60, seed=11)
    # The GCS emulator serves one connection at a time: concurrent gcsfs requests stall about 1 s there (not
    # on GCS). One request at a time keeps the test fast; neither setting changes what is read.
    options = {"batch_size": 1} if store == "gcs" else None
    store_config = dataclasses.replace(config, io_threads=1) if store == "gcs" else config
    assert_equal(batches(url, store_config, storage_options=options), batches(corpus.url, config))


def test_spawned_workers_read_s3(corpus, s3_url):
    # Object stores get spawned workers (s3fs is not fork-safe); they find the endpoint in the environment.
    url = copy_to(corpus, s3_url)
    config = LoaderConfig(batch_size=4, seq_len=10, workers=2, shuffle_buffer=60, seed=11)
    assert_equal(batches(url, config, count=6), batches(corpus.url, config, count=6))
