"""Settings section, device hand-off, and webdataset's own opener pointed at fsspec."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import webdataset as wds

from dreamstream.config import ConfigError, from_dict
from dreamstream.datasets import Dataset
from dreamstream.datasets.loader import LoaderConfig, make_loader, to_device
from dreamstream.train.loop.settings import TrainSettings


def test_loader_settings_are_typed_and_checked():
    settings = from_dict(TrainSettings, {"loader": {"batch_size": 8, "mode": "windows", "follow": True}})
    assert settings.loader == LoaderConfig(batch_size=8, mode="windows", follow=True)
    with pytest.raises(ConfigError, match="did you mean 'seq_len'"):
        from_dict(TrainSettings, {"loader": {"seqlen": 8}})
    with pytest.raises(ConfigError, match="'tbtt'"):
        from_dict(TrainSettings, {"loader": {"mode": "tbt"}})
    with pytest.raises(ValueError, match="batch_size"):
        LoaderConfig(batch_size=2, workers=4)
    with pytest.raises(ValueError, match="seq_len=0"):
        LoaderConfig(seq_len=0)


def test_batches_move_to_a_device(corpus):
    with make_loader(corpus.url, LoaderConfig(batch_size=2, seq_len=4)) as loader:
        batch = next(iter(loader))
    moved = to_device(batch, "cpu")
    assert moved.keys() == batch.keys() and all(torch.equal(moved[k], batch[k]) for k in batch)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("workers", [0, 1, 2])
def test_batches_are_pinned_when_cuda_is_available(corpus, workers):
    with make_loader(corpus.url, LoaderConfig(batch_size=2, seq_len=4, workers=workers)) as loader:
        batch = next(iter(loader))
    assert all(t.is_pinned() for t in batch.values())
    on_gpu = to_device(batch, "cuda")
    assert all(t.is_cuda for t in on_gpu.values())


def test_plain_webdataset_reads_object_store_urls_through_fsspec(corpus, s3_url):
    import fsspec

    fs, root = fsspec.core.url_to_fs(s3_url)
    record = Dataset(corpus.url).records()[0]
    fs.put_file(f"{corpus.url}/{record.shard_path}", f"{root}/shard.tar")
    # Without the loader's opener, webdataset would have no s3 handler (and shell out to gsutil for gs://).
    samples = list(wds.WebDataset(f"{s3_url}/shard.tar", shardshuffle=False))
    assert [s["__key__"] for s in samples] == [row.key for row in record.samples]
    reward = np.load(io.BytesIO(samples[0]["reward.npy"]), allow_pickle=False)
    assert len(reward) == record.samples[0].steps
