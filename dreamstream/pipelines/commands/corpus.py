"""`dreamstream corpus RECIPE.yaml`: build an offline corpus from a recipe (in progress)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe YAML (see configs/corpora/)")


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("corpus is being written")
