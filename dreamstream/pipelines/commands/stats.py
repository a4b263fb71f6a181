"""`dreamstream stats ROOT [--deep] [--verify] [--json] [--report DIR] [--write]`: dataset statistics on a Dask
cluster."""

from __future__ import annotations

import argparse
import json
import logging

from dreamstream.datasets.storage import resolve_location
from dreamstream.pipelines.cluster import add_cluster_arguments

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", type=resolve_location, help="dataset URL: a path, file://, s3://, gs://")
    parser.add_argument("--deep", action="store_true",
                        help="also per-field observation statistics (reads every frame)")
    parser.add_argument("--verify", action="store_true",
                        help="also check every shard's sha256 against its commit record (by default the "
                             "checksum verified at commit is trusted; `dreamstream validate` checks every byte)")
    parser.add_argument("--json", action="store_true", help="print the statistics as JSON instead of a table")
    parser.add_argument("--report", metavar="DIR", type=resolve_location,
                        help="write an HTML report with plots (and stats.json) to DIR")
    parser.add_argument("--write", action="store_true",
                        help="store the statistics as ROOT/stats.json beside the card (Dataset.stats() reads it)")
    parser.add_argument("--records-only", action="store_true",
                        help="commit records only: no shard is read (no action/reward histograms)")
    add_cluster_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from dreamstream.datasets import Dataset
    from dreamstream.datasets.stats_file import STATS_NAME, write_stats
    from dreamstream.pipelines.cluster import cluster_from_args, open_runner
    from dreamstream.pipelines.report import format_table, write_html
    from dreamstream.pipelines.stats import compute_stats

    config = cluster_from_args(args)
    if args.records_only:
        config.workers, config.scheduler = 0, None  # nothing to distribute
    with open_runner(config) as runner:
        result = compute_stats(args.root, runner, deep=args.deep, shards=not args.records_only,
                               verify=args.verify)
    if args.json:
        print(json.dumps(result.summary, indent=2))
    else:
        print(format_table(result.summary))
    if args.report:
        path = write_html(result, args.report)
        log.info("report written to %s", path)
    if args.write:
        dataset = Dataset(args.root)
        write_stats(dataset.fs, dataset.root, result.summary, args.root)
        log.info("statistics stored as %s/%s", args.root, STATS_NAME)
    return 0
