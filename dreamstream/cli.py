"""`dreamstream <command>`: one entry point; each part registers its commands in COMMANDS.

A command module exposes `add_arguments(parser)` and `run(args) -> int`, and keeps heavy imports
(torch, dask, mlflow) inside `run`, so `dreamstream --help` and `dreamstream validate` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("dreamstream.pipelines.commands.validate", "check a dataset's card, commit records and shards"),
    "inspect": ("dreamstream.datasets.commands.inspect", "summarise a dataset: shards, episodes, steps, returns"),
    "export": ("dreamstream.datasets.commands.export", "write a dataset's episodes in another format (Minari)"),
    "import": ("dreamstream.datasets.commands.import_", "read a Minari dataset into a new dataset"),
    "train": ("dreamstream.train.loop.command", "train DreamerV2 online (with collectors) or offline (from a corpus)"),
    "curves": ("dreamstream.train.loop.curves",
               "plot a run's return and gradient steps against env steps, across resumes"),
    "dream": ("dreamstream.train.dream.command", "a trained world model's reconstructions and open-loop dreams of "
              "an episode"),
    "bench": ("dreamstream.bench", "measure throughput against a same-run baseline"),
    "stats": ("dreamstream.pipelines.commands.stats", "dataset statistics and an HTML report (Dask)"),
    "corpus": ("dreamstream.pipelines.commands.corpus", "build an offline corpus from a YAML recipe (Dask)"),
    "collect": ("dreamstream.collect.command", "collect episodes from an Atari/MiniGrid/gymnasium env into a dataset"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dreamstream", description="dreamstream: episode datasets and Dreamer")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    # -v also after the command name; SUPPRESS keeps the sub-parser from resetting a -v given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from dreamstream.redact import redact_logs

    redact_logs()  # every log line, from any library, without URL credentials
    from dreamstream import smoke
    from dreamstream.errors import UserError

    if smoke.enabled():
        smoke.announce()

    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except UserError as exc:
        if args.verbose:
            raise
        print(f"dreamstream {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
