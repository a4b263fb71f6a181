"""`dreamstream validate ROOT`: check the card, every commit record and shard; non-zero exit if damaged."""

from __future__ import annotations

import argparse
import json
import sys

from dreamstream.datasets.storage import resolve_location


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", type=resolve_location, help="dataset URL: a path, file://, s3://, gs://, memory://")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    # Dask (dreamstream.pipelines): one task per shard. Without either option the checks run here, serially,
    # which is quickest for small datasets (no cluster start-up).
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="verify shards on a Dask LocalCluster of N worker processes (default 0: serially)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="verify shards on an existing Dask cluster")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from dreamstream.datasets import Dataset
    from dreamstream.datasets.verify import validate, verify_record

    if args.workers or args.scheduler:
        from dreamstream.pipelines.cluster import ClusterConfig
        from dreamstream.pipelines.validate import run_validate

        report = run_validate(args.root, ClusterConfig(workers=args.workers, scheduler=args.scheduler,
                                                       dashboard_address=":0"))
        return _print(args, report)
    dataset = Dataset(args.root)

    def verify_all(names: list[str], shards: bool):
        progress = tqdm(names, desc="verifying shards", unit="shard", disable=not sys.stderr.isatty())
        return (verify_record(dataset, name, shards) for name in progress)

    report = validate(dataset, verify_all)
    report["root"] = args.root
    return _print(args, report)


def _print(args: argparse.Namespace, report: dict) -> int:
    from dreamstream.datasets.verify import Problem

    problems = [Problem(**p) for p in report["problems"]]
    shards, steps = report["shards"], report["steps"]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for problem in problems:
            print(problem)
        verdict = "OK" if not problems else f"DAMAGED: {len(problems)} problem(s)"
        print(f"{args.root}: {shards} shards, {steps} steps verified: {verdict}")
    return 0 if not problems else 1
