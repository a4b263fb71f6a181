"""`dreamstream import minari ID_OR_PATH --out ROOT`: a local Minari dataset as a new dreamstream dataset that
`dreamstream train --offline --data ROOT` trains on (docs/minari.md)."""

from __future__ import annotations

import argparse

from dreamstream.datasets.storage import resolve_location

FORMATS = ("minari",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("format", choices=FORMATS, help="the format to read")
    parser.add_argument("source", help="a Minari dataset id (in $MINARI_DATASETS_PATH or ~/.minari/datasets) "
                                       "or the path of its folder")
    parser.add_argument("--out", required=True, type=resolve_location,
                        help="the new dataset's URL: a path, file://, s3://, gs://, memory://")
    parser.add_argument("--drop-field", action="append", default=[], metavar="KEY",
                        help="leave out this key of a Dict observation (one that cannot map, such as a Text "
                             "mission); repeatable")


def run(args: argparse.Namespace) -> int:
    from dreamstream.datasets.minari.load import import_minari

    done = import_minari(args.source, args.out, frozenset(args.drop_field))
    print(f"imported Minari dataset {done.dataset_id}: {done.episodes} episodes, {done.steps} rows, into {args.out}")
    return 0
