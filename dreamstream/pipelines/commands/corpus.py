"""`dreamstream corpus RECIPE.yaml`: build an offline corpus (filters, mixture, dedup, split, reshard)."""

from __future__ import annotations

import argparse
import json

from dreamstream.pipelines.cluster import add_cluster_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe YAML (examples in configs/corpora/, keys in docs/pipelines.md)")
    parser.add_argument("--dry-run", action="store_true",
                        help="plan, scan and select, print the counts, write nothing")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_cluster_arguments(parser)


def format_summary(summary: dict) -> str:
    lines = [f"corpus {summary['recipe']} -> {summary['output']}", "",
             f"  {'source':<24}{'label':<10}{'episodes':>9}{'complete':>9}{'passed':>8}{'dupes':>7}"
             f"{'selected':>9}{'steps':>10}"]
    for s in summary["sources"]:
        lines.append(f"  {s['name'][:24]:<24}{s['label'][:10]:<10}{s['episodes']:>9}{s['complete']:>9}"
                     f"{s['passed_filter']:>8}{s.get('duplicates', 0):>7}{s['selected']:>9}{s['selected_steps']:>10}")
    lines += ["", f"  {'split':<12}{'label':<12}{'episodes':>9}{'steps':>10}{'ep %':>8}{'step %':>8}"]
    for name, split in summary["splits"].items():
        for label, c in split["by_label"].items():
            lines.append(f"  {name:<12}{label:<12}{c['episodes']:>9}{c['steps']:>10}"
                         f"{c['episode_fraction']:>8.1%}{c['step_fraction']:>8.1%}")
        extra = f"  {split['shards']} shards, {split['bytes'] / 2**20:.1f} MiB" if "shards" in split else ""
        lines.append(f"  {name:<12}{'all':<12}{split['episodes']:>9}{split['steps']:>10}{extra}  {split['url']}")
    lines += ["", f"  duplicates dropped: {summary['duplicates']}; {summary['seconds']:.1f} s"]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from dreamstream.pipelines.cluster import cluster_from_args
    from dreamstream.pipelines.corpus import run_corpus
    from dreamstream.pipelines.recipe import load_recipe

    recipe, digest = load_recipe(args.recipe)
    summary = run_corpus(recipe, cluster_from_args(args), where=args.recipe, recipe_sha256=digest,
                         dry_run=args.dry_run)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    if args.dry_run and not args.json:
        print("  (dry run: nothing written)")
    return 0
