"""The ``reconciler`` command. The only module that prints, exits or configures logging.

Exit codes: 0 ok, 1 invalid input, 2 usage error, 3 runtime failure.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from reconciler import __version__
from reconciler.agent.validation import validate_path
from reconciler.errors import SourceError
from reconciler.loading.report import FORMATTERS
from reconciler.model.json_schema import generate_schemas, render_schema
from reconciler.system.files import read_bytes_if_exists, write_atomic

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_RUNTIME = 0, 1, 2, 3

log = logging.getLogger("reconciler")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reconciler", description="Declarative GitOps reconciler for the network edge."
    )
    parser.add_argument("--version", action="version", version=f"reconciler {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate", help="check a desired-state tree: schema, references, internal ranges, protected entries"
    )
    validate.add_argument("path", nargs="?", default="desired-state", type=Path, help="default: desired-state")
    validate.add_argument(
        "--base",
        metavar="REF",
        help="git revision to compare protected allow-list entries with (e.g. origin/main)",
    )
    validate.add_argument("--format", choices=sorted(FORMATTERS), default="text", help="default: text")

    schema = commands.add_parser("schema", help="write (or --check) schemas/*.schema.json from the models")
    schema.add_argument("--dir", type=Path, default=Path("schemas"), help="default: schemas")
    schema.add_argument("--check", action="store_true", help="exit 1 if the files differ from the models")
    return parser


def _validate(args: argparse.Namespace) -> int:
    report = validate_path(args.path, base=args.base)
    print(FORMATTERS[args.format](report.root, report.problems, report.result.state, report.result.documents))
    return EXIT_OK if report.valid else EXIT_INVALID


def _schema(args: argparse.Namespace) -> int:
    stale = []
    for stem, schema in generate_schemas().items():
        path = args.dir / f"{stem}.schema.json"
        content = render_schema(schema).encode()
        if read_bytes_if_exists(path) == content:
            continue
        if args.check:
            stale.append(str(path))
        else:
            write_atomic(path, content)
            print(f"wrote {path}")
    if stale:
        print("schemas are out of date; run 'reconciler schema' and commit:\n  " + "\n  ".join(stale))
        return EXIT_INVALID
    if args.check:
        print(f"{args.dir}: up to date")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors and 0 on --help
        return int(exc.code or 0)
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command == "validate":
            return _validate(args)
        return _schema(args)
    except SourceError as exc:
        print(f"reconciler: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception:
        log.exception("internal error: please report it with the command that caused it")
        return EXIT_RUNTIME


if __name__ == "__main__":
    raise SystemExit(main())
