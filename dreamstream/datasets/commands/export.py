"""`dreamstream export minari ROOT --dataset-id NS/ENV/NAME-vN [--out DIR]`: a dataset's complete episodes as a
Minari dataset (docs/minari.md)."""

from __future__ import annotations

import argparse

from dreamstream.datasets.storage import resolve_location

FORMATS = ("minari",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("format", choices=FORMATS, help="the format to write")
    parser.add_argument("root", type=resolve_location, help="dataset URL: a path, file://, s3://, gs://, memory://")
    parser.add_argument("--dataset-id", required=True, help="the Minari id to write, NAMESPACE/ENV/NAME-vN")
    parser.add_argument("--out", default=None,
                        help="Minari datasets root to write under (default: Minari's own, $MINARI_DATASETS_PATH "
                             "or ~/.minari/datasets)")
    parser.add_argument("--images", choices=("jpeg", "exact"), default="jpeg",
                        help="image fields as Minari image spaces, which Minari stores as JPEG (lossy; the default), "
                             "or exact: as MultiDiscrete spaces of 256 values, stored raw (docs/minari.md)")


def run(args: argparse.Namespace) -> int:
    from dreamstream.datasets.minari.export import export_minari

    done = export_minari(args.root, args.dataset_id, args.out, args.images)
    print(f"wrote Minari dataset {args.dataset_id}: {done.episodes} episodes, {done.steps} steps, at {done.path}"
          + (f" ({done.skipped} partial or single-row episodes left out)" if done.skipped else ""))
    return 0
