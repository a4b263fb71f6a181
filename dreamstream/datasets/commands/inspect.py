"""`dreamstream inspect ROOT [--json]`: shards, episodes, steps, returns and the card, from commit records."""

from __future__ import annotations

import argparse
import json

from dreamstream.datasets.storage import resolve_location


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", type=resolve_location, help="dataset URL: a path, file://, s3://, gs://, memory://")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from dreamstream.datasets import Dataset
    from dreamstream.datasets.summary import summarize

    dataset = Dataset(args.root)
    card = dataset.card
    summary = summarize(dataset.records())
    if args.json:
        print(json.dumps({"root": args.root, "card": card.to_json(), "summary": summary}, indent=2))
        return 0
    print(f"dataset   {args.root}")
    print(f"env       {card.env_id}" + (f"  (preset {card.preset})" if card.preset else ""))
    print(f"created   {card.created} by {card.creator.get('tool', '?')} on {card.creator.get('host', '?')}")
    if card.description:
        print(f"about     {card.description}")
    print("fields")
    for name, field in card.spec.fields.items():
        classes = f" classes={list(field.classes)}" if field.classes else ""
        print(f"  {name:<14}{field.kind:<12}{field.dtype:<8}{list(field.shape)}{classes}")
    action = card.spec.action
    size = f"{action.n} actions" if action.kind == "discrete" else f"shape {list(action.shape)}"
    print(f"action    {action.kind}, {size}")
    print(f"shards    {summary['shards']} ({summary['bytes'] / 2**20:.1f} MiB, {summary['writers']} writers)")
    print(f"samples   {summary['samples']}, steps {summary['steps']}")
    print(f"episodes  {summary['episodes']} ({summary['complete_episodes']} complete: "
          f"{summary['terminated']} terminated, {summary['truncated']} truncated)")
    for name in ("return", "length"):
        stats = summary[name]
        if stats:
            print(f"{name:<10}mean {stats['mean']:.3f}  std {stats['std']:.3f}  "
                  f"min {stats['min']:.3f}  max {stats['max']:.3f}")
    print("policies  " + ", ".join(f"{k} ({v} samples)" for k, v in sorted(summary["policies"].items())))
    if card.lineage:  # the whole lineage (recipe included) is in --json
        sources = ", ".join(f"{s.get('name', '?')} ({s.get('url', '?')})" for s in card.lineage.get("sources", []))
        print(f"lineage   {card.lineage.get('kind', 'derived')} from {sources or 'unknown sources'}")
    return 0
