"""The `tandem` command: one sub-command per job; each lives in pipelines/commands/."""

from __future__ import annotations

import argparse
import logging
import sys

from core.errors import TandemError
from pipelines.commands import bm25, compare, dense, evaluate, fuse, mine, rerank, run, search

COMMANDS = [run, search, bm25, dense, evaluate, mine, rerank, fuse, compare]


def installed_version() -> str:
    """The installed package's version (a source checkout that is not installed says so)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tandem")
    except PackageNotFoundError:
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tandem",
        description="Two-stage neural retrieval: BM25 and dense retrieval, hard-negative mining, "
        "cross-encoder reranking and evaluation on BEIR-format datasets.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail and full tracebacks")
    parser.add_argument("--version", action="version", version=f"tandem {installed_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.handler(args) or 0
    except TandemError as err:
        print(f"tandem {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # disk full, read-only, permission denied, a folder where a file goes ...
        if args.verbose:
            raise
        where = f": {err.filename}" if err.filename else ""
        print(f"tandem {args.command}: error: {err.strerror or err}{where} (-v shows where)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; finished outputs are kept, partial ones were discarded", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
