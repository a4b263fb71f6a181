"""Command-line arguments that several commands share, spelled once: `--set` and `--progress`/`--no-progress`."""

from __future__ import annotations

import argparse


def add_set_argument(parser: argparse.ArgumentParser, example: str) -> None:
    """`--set KEY=VALUE` (repeatable) into `args.overrides`: the overrides of dreamstream.settings.load_settings."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a setting, e.g. {example} (repeatable)")


def add_progress_arguments(parser: argparse.ArgumentParser) -> None:
    """`--progress` / `--no-progress` into `args.progress`: True, False, or None (a bar on a terminal only)."""
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="always show a progress bar")
    progress.add_argument("--no-progress", dest="progress", action="store_false",
                          help="plain log lines even on a terminal")
