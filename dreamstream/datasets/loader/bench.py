"""Loader throughput: 64x64x3 frames/s into [T, B] uint8 batches, against the raw limit measured in the same run.

The raw limit is the fastest known way to do the same work with no pipeline: read the same shard bytes and
decompress every member straight into preallocated [T, B] arrays, in as many threads as the loader's
io_threads. The loader runs with its defaults unless told otherwise (one loader thread, two io threads,
in this process). Every source prints, local disk and S3 through a moto server on loopback; the headline
is the worst source/store.
"""

from __future__ import annotations

import argparse
import logging
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
    parser.add_argument("--io-threads", type=int, default=2,
                        help="loader.io_threads, and the threads the raw limit decodes in")
    parser.add_argument("--repeats", type=int, default=3,
                        help="raw and loader epochs timed, alternating (min/median/max of each and of their ratio)")
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


def raw_epoch(dataset: Any, records: list[Any], args: argparse.Namespace) -> float:
    """Frames/s of the limit, in as many threads as the loader's io_threads (zstd releases the GIL): each
    shard's bytes read whole and split without copying, every array member decoded straight into
    preallocated [T, B, ...] arrays (per thread, one per field, as many batches as the longest chunk
    needs, viewed as T*B rows filled in order and wrapped around): zstd members decompressed into them
    with no intermediate buffer, plain .npy members copied once. No pipeline, no checksum, no padding."""
    from concurrent.futures import ThreadPoolExecutor

    steps = {row.key: row.steps for record in records for row in record.samples}
    slots = args.seq_len * args.batch_size
    slots *= -(-max(steps.values()) // slots)
    threads = max(1, args.io_threads)
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        frames = sum(pool.map(lambda i: _decode_into_batches(dataset, records[i::threads], steps, slots),
                              range(threads)))
    return frames / (time.perf_counter() - start)


def _decode_into_batches(dataset: Any, records: list[Any], steps: dict[str, int], slots: int) -> int:
    from dreamstream.datasets.codec import NPY, decode_npy_zst_into, load_npy
    from dreamstream.datasets.tar import tar_samples

    batch = {name: np.empty((slots, *f.shape), f.dtype) for name, f in dataset.spec.fields.items()}
    frames = 0
    for record in records:
        data = dataset.fs.cat_file(f"{dataset.root}/{record.shard_path}")
        for sample in tar_samples(data, record.shard_path):
            n = steps[sample["__key__"]]
            at = frames % slots
            at = 0 if at + n > slots else at
            for member, value in sample.items():
                name, _, suffix = member.partition(".")
                if name not in batch:
                    continue
                rows = batch[name][at : at + n]
                if suffix == NPY:
                    rows[...] = load_npy(value, rows.dtype, rows.shape)
                else:
                    decode_npy_zst_into(value, rows)
            frames += n
    return frames


def loader_epoch(loader: Any, args: argparse.Namespace) -> float:
    """Frames/s of valid rows delivered in [T, B] uint8 batches over one epoch."""
    before = loader.metrics()["steps"]
    start = time.perf_counter()
    for batch in loader:
        assert batch["image"].dtype.itemsize == 1 and batch["image"].shape[:2] == (args.seq_len, args.batch_size)
    return (loader.metrics()["steps"] - before) / (time.perf_counter() - start)


def measure(url: str, storage_options: dict[str, Any] | None, args: argparse.Namespace) -> dict[str, Any]:
    """Raw and loader epochs alternate (so each pair sees the same machine load): -> each repeat's raw and
    loader frames/s and their ratio, and the epochs' padding share."""
    from dreamstream.datasets import Dataset
    from dreamstream.datasets.loader import LoaderConfig, make_loader

    dataset = Dataset(url, storage_options)
    records = dataset.records()
    config = LoaderConfig(batch_size=args.batch_size, seq_len=args.seq_len, mode=args.mode, workers=args.workers,
                          io_threads=args.io_threads)
    raw, rate = [], []
    with make_loader(url, config, storage_options=storage_options) as loader:
        for _ in range(args.repeats):
            raw.append(raw_epoch(dataset, records, args))
            rate.append(loader_epoch(loader, args))
        metrics = loader.metrics()
    return {"raw_frames_per_s": raw, "frames_per_s": rate, "ratio": [r / b for r, b in zip(rate, raw, strict=True)],
            "padding": metrics["padding_steps"] / max(1, metrics["padding_steps"] + metrics["steps"])}


def spread(values: list[float]) -> tuple[float, float, float]:
    """(min, median, max)."""
    return float(np.min(values)), float(np.median(values)), float(np.max(values))


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

    results: dict[str, dict[str, Any]] = {}
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
    print(f"{'source/store':<16}{'raw fr/s (min/median/max)':>34}{'loader fr/s (min/median/max)':>34}"
          f"{'ratio (min/median/max)':>24}{'padding':>9}")
    for name, r in results.items():
        cells = [" / ".join(f"{v:,.0f}" for v in spread(r[k])) for k in ("raw_frames_per_s", "frames_per_s")]
        ratio = " / ".join(f"{v:.2f}" for v in spread(r["ratio"]))
        print(f"{name:<16}{cells[0]:>34}{cells[1]:>34}{ratio:>24}{r['padding']:>9.3f}")
    worst = min(results, key=lambda name: float(np.median(results[name]["ratio"])))
    head = results[worst]
    print(f"[T, B] = [{args.seq_len}, {args.batch_size}] {args.mode}, workers={args.workers}, "
          f"io_threads={args.io_threads}, {args.frames} frames, {args.repeats} repeats; raw (the limit): read + "
          "split + zstd straight into preallocated [T, B] arrays, in io_threads threads; loader: valid frames/s "
          f"delivered in [T, B] uint8 batches; ratio per repeat (raw and loader epochs alternate). "
          f"Worst source/store (median ratio): {worst} {float(np.median(head['ratio'])):.2f}")
    out: dict[str, Any] = {"bench": "loader", "frames_per_s": round(float(np.median(head["frames_per_s"]))),
                           "ratio": round(float(np.median(head["ratio"])), 3), "worst": worst}
    for name, r in results.items():
        out[name] = {k: [round(v, 3) for v in spread(r[k])] if k == "ratio" else
                     [round(v) for v in spread(r[k])] for k in ("raw_frames_per_s", "frames_per_s", "ratio")}
        out[name]["padding"] = round(r["padding"], 3)
    out.update(frames=args.frames, mode=args.mode, batch=[args.seq_len, args.batch_size], workers=args.workers,
               io_threads=args.io_threads, repeats=args.repeats)
    return out
