"""The ``reconciler`` command. The only module that prints, exits or configures logging.

Exit codes: 0 ok, 1 invalid input, 2 usage error, 3 runtime failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from reconciler import __version__
from reconciler.agent.runner import STATUS_FILE, Agent
from reconciler.agent.tick import TickOutcome, TickResult
from reconciler.agent.validation import validate_path
from reconciler.errors import ReconcilerError, RemoteNotFoundError, SettingsError, SourceError
from reconciler.loading.report import FORMATTERS
from reconciler.model.json_schema import generate_schemas, render_schema
from reconciler.model.values import parse_duration
from reconciler.render.plan import RENDERERS, render_text
from reconciler.render.status import render_status_text
from reconciler.settings import (
    DEFAULT_STATE_DIR,
    WEBHOOK_SECRET_ENV,
    AgentSettings,
    GitIdentity,
    check_status_message,
)
from reconciler.system.files import read_bytes_if_exists, temporary_directory, write_atomic
from reconciler.system.folder_source import FolderSource
from reconciler.system.git import open_repository
from reconciler.system.resolver import nameserver

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

    plan = commands.add_parser("plan", help="what would change on this node, as a readable diff; changes nothing")
    plan.add_argument("path", nargs="?", default="desired-state", type=Path, help="default: desired-state")
    _node_flag(plan)
    plan.add_argument("--format", choices=sorted(RENDERERS), default="text", help="default: text")

    apply = commands.add_parser("apply", help="one reconcile pass from a folder, then exit")
    apply.add_argument("path", nargs="?", default="desired-state", type=Path, help="default: desired-state")
    apply.add_argument("--once", action="store_true", required=True, help="one pass (required: say it)")
    _node_flag(apply)
    _state_dir_flag(apply)
    apply.add_argument("--force", action="store_true", help="pass the safety gate")

    run = commands.add_parser("run", help="the agent: scheduler, HTTP API, status commits")
    _agent_flags(run)

    status = commands.add_parser("status", help="the current status of this node, human readable")
    _state_dir_flag(status)
    status.add_argument("--format", choices=["text", "json"], default="text")
    return parser


def _env(flag: str, default: str) -> str:
    """Every flag's default may come from RECONCILER_<FLAG> (dashes as underscores)."""
    return os.environ.get(f"RECONCILER_{flag.upper()}", default)


def _node_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node", default=_env("node", socket.gethostname()), help="default: the hostname")


def _state_dir_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir", type=Path, default=Path(_env("state_dir", str(DEFAULT_STATE_DIR))), help="default: %(default)s"
    )


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _nameserver(text: str) -> str:
    try:
        nameserver(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _status_message(text: str) -> str:
    try:
        return check_status_message(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"'{text}' is not a count (0, 1, 2, ...)")
    return int(text)


def _agent_flags(parser: argparse.ArgumentParser) -> None:
    repo = _env("repo", "")
    parser.add_argument("--repo", default=repo, required=not repo, help="git URL of the desired-state repository")
    parser.add_argument("--branch", default=_env("branch", "main"))
    parser.add_argument("--path", default=_env("path", "."), help="folder of the desired state inside the repo")
    _node_flag(parser)
    _state_dir_flag(parser)
    parser.add_argument("--listen", default=_env("listen", "127.0.0.1:9900"), help="HTTP API and metrics")
    parser.add_argument("--interval", type=_duration, default=_env("interval", "30s"), help="git poll interval")
    parser.add_argument("--resync-interval", type=_duration, default=_env("resync_interval", "5m"))
    parser.add_argument("--status-branch", default=_env("status_branch", "reconciler-status"))
    parser.add_argument(
        "--status-interval",
        type=_duration,
        default=_env("status_interval", "10s"),
        help="at most one status commit per interval",
    )
    parser.add_argument(
        "--status-message",
        type=_status_message,
        default=_env("status_message", "status: {node} at {revision}"),
        help="message of status commits; placeholders {node} and {revision}; default: %(default)s",
    )
    parser.add_argument("--author-name", default=_env("author_name", "reconciler"))
    parser.add_argument("--author-email", default=_env("author_email", "reconciler@localhost"))
    parser.add_argument("--sign-status", action="store_true", default=_env("sign_status", "") == "true")
    parser.add_argument("--dry-run", action="store_true", default=_env("dry_run", "") == "true")
    parser.add_argument("--once", action="store_true", default=_env("once", "") == "true")
    parser.add_argument("--force", action="store_true", help="pass the safety gate")
    parser.add_argument(
        "--verify-signatures",
        action="store_true",
        default=_env("verify_signatures", "") == "true",
        help="apply only commits signed by an allowed key",
    )
    parser.add_argument("--allowed-signers", type=Path, default=_env("allowed_signers", "") or None)
    parser.add_argument("--gpg-home", type=Path, default=_env("gpg_home", "") or None)
    parser.add_argument("--shutdown-timeout", type=_duration, default=_env("shutdown_timeout", "8s"))
    parser.add_argument(
        "--proxy-workers",
        type=_count,
        default=_env("proxy_workers", "1"),
        help="processes carrying proxied traffic (0: inside the agent's process); default: %(default)s",
    )
    parser.add_argument(
        "--nameserver",
        dest="nameservers",
        action="append",
        type=_nameserver,
        default=[n for n in _env("nameservers", "").split(",") if n],
        metavar="IP[:PORT]",
        help="DNS server for target names (repeat for more; default: the system's, /etc/resolv.conf)",
    )


def _settings(args: argparse.Namespace) -> AgentSettings:
    return AgentSettings(
        repo=args.repo,
        node=args.node,
        branch=args.branch,
        path=args.path,
        state_dir=args.state_dir,
        listen=args.listen,
        interval=args.interval,
        resync_interval=args.resync_interval,
        status_branch=args.status_branch,
        status_interval=args.status_interval,
        status_message=args.status_message,
        author=GitIdentity(args.author_name, args.author_email),
        sign_status=args.sign_status,
        dry_run=args.dry_run,
        once=args.once,
        force=args.force,
        verify_signatures=args.verify_signatures,
        allowed_signers=args.allowed_signers,
        gpg_home=args.gpg_home,
        webhook_secret=os.environ.get(WEBHOOK_SECRET_ENV) or None,
        shutdown_timeout=args.shutdown_timeout,
        proxy_workers=args.proxy_workers,
        nameservers=tuple(args.nameservers),
    )


def _exit_code(result: TickResult) -> int:
    """Stalled (invalid or refused revision) is invalid input; a resource that failed is a runtime failure."""
    return {TickOutcome.STALLED: EXIT_INVALID, TickOutcome.DEGRADED: EXIT_RUNTIME}.get(result.outcome, EXIT_OK)


def _print_status(document: dict[str, Any]) -> None:
    print(render_status_text(document))


def _event_loop() -> asyncio.Runner:
    """uvloop when installed (the proxy's data path is much faster on it), else asyncio's own loop."""
    try:
        import uvloop  # noqa: PLC0415 - optional: only where the platform has it
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def _run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    source, publisher = open_repository(settings)
    agent = Agent(settings, source=source, publisher=publisher)
    if not settings.once:
        with _event_loop() as runner:
            return runner.run(agent.run())
    result = asyncio.run(agent.run_once())
    print(render_text(result.plan))
    _print_status(agent.status_document())
    return _exit_code(result)


def _local_agent(path: Path, node: str, state_dir: Path, *, dry_run: bool, force: bool) -> Agent:
    settings = AgentSettings(repo=str(path), node=node, branch="", state_dir=state_dir, dry_run=dry_run, force=force)
    return Agent(settings, source=FolderSource(path))


def _plan(args: argparse.Namespace) -> int:
    with temporary_directory("reconciler-plan-") as state_dir:
        agent = _local_agent(args.path, args.node, Path(state_dir), dry_run=True, force=False)
        result = asyncio.run(agent.run_once())
    slots = agent.reconciler.slots
    not_enforced = sorted(f"{kind}/{name}" for (kind, name), slot in slots.items() if slot.capability is None)
    if args.format == "json":
        document = json.loads(RENDERERS["json"](result.plan))
        print(json.dumps({**document, "notEnforced": not_enforced}, indent=2))
    else:
        print(RENDERERS[args.format](result.plan).rstrip("\n"))
        if agent.reconciler.desired is not None and not slots:
            print(f"no resource in {args.path} selects node {args.node} (spec.nodes)")
        if not_enforced:
            print(f"not enforced by this agent yet (validated only): {', '.join(not_enforced)}")
    if result.outcome is TickOutcome.STALLED:
        _print_status(agent.status_document())
    return _exit_code(result)


def _apply(args: argparse.Namespace) -> int:
    agent = _local_agent(args.path, args.node, args.state_dir, dry_run=False, force=args.force)
    result = asyncio.run(agent.run_once())
    print(render_text(result.plan))
    _print_status(agent.status_document())
    return _exit_code(result)


def _status(args: argparse.Namespace) -> int:
    content = read_bytes_if_exists(args.state_dir / STATUS_FILE)
    if content is None:
        print(f"reconciler: no status in {args.state_dir} (has the agent run with this --state-dir?)", file=sys.stderr)
        return EXIT_USAGE
    document = json.loads(content)
    if args.format == "json":
        print(json.dumps(document, indent=2))
    else:
        _print_status(document)
    return EXIT_OK


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
    quiet = args.command in ("validate", "schema", "plan", "status")
    logging.basicConfig(
        level=(logging.WARNING if quiet else logging.INFO, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # APScheduler logs every job run at INFO; its warnings and errors are what an operator needs.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    commands = {
        "validate": _validate,
        "schema": _schema,
        "plan": _plan,
        "apply": _apply,
        "run": _run,
        "status": _status,
    }
    try:
        code = commands[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, not as a traceback at interpreter exit
        return code
    except BrokenPipeError:
        # the reader went away (`reconciler status | head -1`): done, as `git log | head` is
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (SourceError, SettingsError, RemoteNotFoundError) as exc:
        print(f"reconciler: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ReconcilerError as exc:
        print(f"reconciler: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    except Exception:
        log.exception("internal error: please report it with the command that caused it")
        return EXIT_RUNTIME


if __name__ == "__main__":
    raise SystemExit(main())
