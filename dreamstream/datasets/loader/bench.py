"""Loader throughput: 64x64x3 frames/s into [T, B] uint8 batches, against the raw limit measured in the same run.

The raw limit reads the same shard bytes and decodes them to NumPy with nothing else (no pipeline, no
batching, one thread). The loader runs with its defaults unless told otherwise (one loader thread, two
fetch threads, in this process). Local disk first, then S3 through a moto server on loopback.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import tarfile
import tempfile
import time
import uuid
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=30_000, help="64x64x3 frames in the benchmark dataset")
    parser.add_argument("--source", choices=["synthetic", "atari"], nargs="+", default=["synthetic", "atari"],
                        help="synthetic: dreamstream.datasets.synthetic frames (noisy gradients, zstd about 3x: "
                             "decoding is real work; the headline figures); atari: real Pong frames (zstd about "
                             "350x: the raw decode runs from cache, see docs/loader.md)")
    parser.add_argument("--mode", choices=["tbtt", "windows"], default="tbtt")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=50)
    parser.add_argument("--workers", type=int, default=0, help="loader.workers (0: a thread in this process)")
    parser.add_argument("--shard-kb", type=int, default=512, help="shard size limit for the benchmark dataset")
    parser.add_argument("--repeats", type=int, default=4,
                        help="raw and loader epochs timed, alternating (the best of each counts)")
    parser.add_argument("--moto", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure S3 through a moto server started on loopback")


def write_dataset(url: str, frames: np.ndarray, shard_bytes: int) -> Any:
    from gymnasium import spaces

    from dreamstream.datasets import DatasetCard, EpisodeWriter, WriterConfig, spec_from_spaces
    from dreamstream.datasets.bench import episodes_from

    spec = spec_from_spaces(spaces.Dict(image=spaces.Box(0, 255, (64, 64, 3), np.uint8)), spaces.Discrete(6))
    card = DatasetCard.create(spec, "ALE/Pong-v5", description="loader bench")
    with EpisodeWriter(url, card, WriterConfig(shard_max_bytes=shard_bytes)) as writer:
        for episode in episodes_from(frames, spec, episode_steps=1000):
            writer.add_episode(episode)
    return spec


def raw_epoch(dataset: Any, records: list[Any]) -> float:
    """Frames/s reading every shard's bytes and decoding its members to NumPy, nothing more."""
    from dreamstream.datasets.codec import decode_array, split_member_name

    start = time.perf_counter()
    frames = 0
    for record in records:
        data = dataset.fs.cat_file(f"{dataset.root}/{record.shard_path}")
        rows = {row.key: row.steps for row in record.samples}
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for info in tar:
                key, field, suffix = split_member_name(info.name)
                member = tar.extractfile(info).read()
                if field not in dataset.spec.fields:
                    json.loads(member)
                    continue
                spec = dataset.spec.fields[field]
                value = decode_array(suffix, member, spec.dtype, (rows[key], *spec.shape))
                if field == "image":
                    frames += len(value)
    return frames / (time.perf_counter() - start)


def loader_epoch(loader: Any, args: argparse.Namespace) -> float:
    """Frames/s of valid rows delivered in [T, B] uint8 batches over one epoch."""
    before = loader.metrics()["steps"]
    start = time.perf_counter()
    for batch in loader:
        assert batch["image"].dtype.itemsize == 1 and batch["image"].shape[:2] == (args.seq_len, args.batch_size)
    return (loader.metrics()["steps"] - before) / (time.perf_counter() - start)


def measure(url: str, storage_options: dict[str, Any] | None, args: argparse.Namespace) -> dict[str, float]:
    """Raw and loader epochs alternate (so both see the same machine load); the best of each counts."""
    from dreamstream.datasets import Dataset
    from dreamstream.datasets.loader import LoaderConfig, make_loader

    dataset = Dataset(url, storage_options)
    records = dataset.records()
    config = LoaderConfig(batch_size=args.batch_size, seq_len=args.seq_len, mode=args.mode, workers=args.workers)
    raw, rate = 0.0, 0.0
    with make_loader(url, config, storage_options=storage_options) as loader:
        for _ in range(args.repeats):
            raw = max(raw, raw_epoch(dataset, records))
            rate = max(rate, loader_epoch(loader, args))
        metrics = loader.metrics()
    return {"raw_frames_per_s": raw, "frames_per_s": rate, "ratio": rate / raw,
            "padding": metrics["padding_steps"] / max(1, metrics["padding_steps"] + metrics["steps"])}


def source_frames(source: str, count: int) -> np.ndarray:
    if source == "atari":
        from dreamstream.datasets.bench import atari_frames

        return atari_frames(count)
    from gymnasium import spaces

    from dreamstream.datasets import spec_from_spaces
    from dreamstream.datasets.synthetic import random_episode

    spec = spec_from_spaces(spaces.Dict(image=spaces.Box(0, 255, (64, 64, 3), np.uint8)), spaces.Discrete(6))
    return random_episode(spec, count, np.random.default_rng(0))["image"]


def run(args: argparse.Namespace) -> dict[str, Any]:
    import contextlib

    import fsspec

    from dreamstream.datasets.bench import moto_endpoint

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        endpoint = stack.enter_context(moto_endpoint()) if args.moto else None
        for source in args.source:
            local = f"{tmp}/{source}"
            write_dataset(local, source_frames(source, args.frames), args.shard_kb * 1024)
            results[f"{source}/local"] = measure(local, None, args)
            if endpoint is not None:
                options = {"endpoint_url": endpoint, "key": "bench", "secret": "bench"}
                fs = fsspec.filesystem("s3", **options)
                bucket = f"bench-{uuid.uuid4().hex[:8]}"
                fs.mkdir(bucket)
                fs.put(local + "/", f"{bucket}/ds/", recursive=True)
                results[f"{source}/s3"] = measure(f"s3://{bucket}/ds", options, args)
    print(f"{'source/store':<17}{'raw fr/s':>12}{'loader fr/s':>13}{'ratio':>8}{'padding':>9}")
    for name, r in results.items():
        print(f"{name:<17}{r['raw_frames_per_s']:>12,.0f}{r['frames_per_s']:>13,.0f}{r['ratio']:>8.2f}"
              f"{r['padding']:>9.3f}")
    print(f"[T, B] = [{args.seq_len}, {args.batch_size}] {args.mode}, workers={args.workers}, {args.frames} frames; "
          "raw: read + untar + decode to NumPy in one thread (each chunk dropped at once); loader: valid "
          "frames/s delivered in [T, B] uint8 batches, best of each measurement's epochs.")
    head = results[f"{args.source[0]}/local"]
    out: dict[str, Any] = {"bench": "loader", "frames_per_s": round(head["frames_per_s"]),
                           "ratio": round(head["ratio"], 3), "source": args.source[0]}
    for name, r in results.items():
        out[name] = {k: round(v, 3) if k in ("ratio", "padding") else round(v) for k, v in r.items()}
    out.update(frames=args.frames, mode=args.mode, batch=[args.seq_len, args.batch_size], workers=args.workers)
    return out
