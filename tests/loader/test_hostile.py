"""Hostile shards and stores in the running loader: a few crafted shards are skipped and counted; when most
shard reads fail it raises instead of training on padding; an unreachable store ends in one StoreError
after bounded retries; and `dreamstream validate` lists every damaged item of a dataset in one run."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import fsspec
import numpy as np
import pytest
from bounded import bounded
from crafted import archive, commit, header, members_of, tar_of, zstd_rle

from dreamstream.datasets import Dataset, DatasetCard, DatasetError, EpisodeWriter, WriterConfig
from dreamstream.datasets.errors import StoreError
from dreamstream.datasets.loader import LoaderConfig, make_loader
from dreamstream.datasets.synthetic import random_episode

MEMORY_MB, SECONDS = 64, 60


def report(label: str, usage) -> None:
    print(f"{label}: peak {usage.peak_bytes / 2**20:.2f} MiB, {usage.seconds:.2f} s")


def config(**kwargs) -> LoaderConfig:
    return LoaderConfig(**{"batch_size": 4, "seq_len": 10, "retries": 1, "retry_backoff_s": 0.01,
                           "shuffle_buffer": 80, **kwargs})


def craft_bad(corpus_url: str, count: int) -> list[str]:
    """Replace the first `count` shards with crafted ones (a negative size field, a zstd bomb in turn),
    re-committed so that their records' size and sha256 match."""
    dataset = Dataset(corpus_url)
    damaged = []
    for i, record in enumerate(dataset.records()[:count]):
        members = members_of(dataset.shard_bytes(record))
        key = record.samples[0].key
        if i % 2:
            data = tar_of([(n, zstd_rle(2**30) if n == f"{key}.image.npy.zst" else d) for n, d in members])
        else:
            data = archive(header(f"{key}.reward.npy", size_field=b"-0001000000\x00"))
        os.remove(Path(corpus_url) / record.record_path)
        os.remove(Path(corpus_url) / record.shard_path)
        damaged.append(commit(dataset, record.name, data, record).shard_path)
    return damaged


def test_a_few_crafted_shards_are_skipped_and_counted(corpus):
    craft_bad(corpus.url, 2)
    with bounded(MEMORY_MB, SECONDS) as usage, make_loader(corpus.url, config(on_error="skip")) as loader:
        expected = len(loader)
        batches = list(loader)
        metrics = loader.metrics()
    report("skip and count", usage)
    assert batches and len(batches) == expected
    assert metrics["shards_skipped"] == 1  # the tar that does not split
    assert metrics["chunks_skipped"] == 1  # the bomb: its sample alone
    assert metrics["shard_retries"] == 0  # facts about the stored bytes are not retried


def test_the_loader_raises_when_most_shard_reads_fail(corpus):
    records = Dataset(corpus.url).records()
    craft_bad(corpus.url, len(records) - 2)
    settings = config(on_error="skip", failure_window=6, max_failed_share=0.5)
    with bounded(MEMORY_MB, SECONDS) as usage, make_loader(corpus.url, settings) as loader:
        tripped = r"of the last \d shard reads failed, more than loader.max_failed_share=0.5 of loader.failure_window=6"
        with pytest.raises(DatasetError, match=tripped):
            for _ in loader.forever():
                pass
    report("failure share", usage)


def test_the_loader_raises_when_every_sample_fails_to_decode(corpus, spec):
    """A dataset whose card no longer matches its shards: every chunk fails, the shard reads succeed."""
    card_path = Path(corpus.url) / "dataset.json"
    other = spec_with_vector_width(spec, 4)
    card_path.write_text(card_json(DatasetCard.create(other, env_id="Test-v0")))
    with make_loader(corpus.url, config(on_error="skip", failure_window=6)) as loader:
        with pytest.raises(DatasetError, match="shard reads failed"):
            for _ in loader.forever():
                pass


def spec_with_vector_width(spec, width):
    from dreamstream.datasets import EpisodeSpec, FieldSpec

    observations = {**spec.observations, "vector": FieldSpec(shape=(width,), dtype="float32", kind="vector")}
    return EpisodeSpec(observations=observations, action=spec.action)


def card_json(card: DatasetCard) -> str:
    import json

    return json.dumps(card.to_json())


# -- unreachable stores ----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def s3_options(endpoint: str) -> dict:
    """s3fs against `endpoint` with one botocore attempt per request (s3fs still retries a few times)."""
    return {"key": "testing", "secret": "testing", "endpoint_url": endpoint,
            "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 2, "read_timeout": 5}}


def test_an_unreachable_store_is_one_error_at_start():
    options = s3_options(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with bounded(MEMORY_MB, SECONDS) as usage, pytest.raises(StoreError, match="cannot read dataset.json") as caught:
        make_loader("s3://nowhere/ds", config(), storage_options=options)
    report("unreachable at start", usage)
    assert "\n" not in str(caught.value) and "dataset s3://nowhere/ds" in str(caught.value)


@pytest.fixture
def private_s3():
    """A moto server of this test's own, which the test may stop."""
    port = free_port()
    executable = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    if executable is None:
        pytest.fail("moto_server is not installed; run `make setup` (test extras)")
    process = subprocess.Popen([executable, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("moto_server did not start")
            time.sleep(0.1)
    yield process, f"http://127.0.0.1:{port}"
    process.kill()
    process.wait()


def test_a_store_lost_mid_run_is_one_error_even_with_skip(private_s3, spec):
    process, endpoint = private_s3
    options = s3_options(endpoint)
    fsspec.filesystem("s3", **options).mkdir("lost")
    card = DatasetCard.create(spec, env_id="Test-v0")
    rng = np.random.default_rng(0)
    with EpisodeWriter("s3://lost/ds", card, WriterConfig(chunk_steps=16), storage_options=options) as writer:
        for _ in range(8):  # a shard each
            writer.add_episode(random_episode(spec, 30, rng))
            writer.commit()
    settings = config(on_error="skip", io_threads=0, prefetch=0, batch_size=1, shuffle_buffer=16)
    with make_loader("s3://lost/ds", settings, storage_options=options) as loader:
        batches = iter(loader)
        next(batches)  # the reader has its card and its first shards
        process.kill()
        process.wait()
        with bounded(MEMORY_MB, SECONDS) as usage, pytest.raises(StoreError, match="after 2 attempt") as caught:
            for _ in batches:
                pass
    report("store lost mid-run", usage)
    message = str(caught.value)
    assert "cannot read the shard" in message and "shard shards/" in message and "\n" not in message


# -- validate -----------------------------------------------------------------------------------------------

def test_validate_lists_every_damaged_item_in_one_run(corpus):
    damaged = craft_bad(corpus.url, 3)
    records = Dataset(corpus.url).records()
    bad_record = Path(corpus.url) / records[-1].record_path
    bad_record.write_text('{"format": "dreamstream.commit", "version": 1, "name": []}')
    truncated = Path(corpus.url) / records[-2].shard_path
    truncated.write_bytes(truncated.read_bytes()[:1000])
    run = subprocess.run([sys.executable, "-m", "dreamstream.cli", "validate", corpus.url], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    lines = [line for line in run.stdout.splitlines() if line.startswith("[")]
    expected = [*damaged, records[-2].shard_path, records[-1].record_path]
    assert len(lines) == len(expected) == 5
    for where in expected:
        assert sum(where in line for line in lines) == 1, (where, lines)
    assert "DAMAGED: 5 problem(s)" in run.stdout
