"""The ``reconciler`` command: parses flags, runs one subcommand, prints its output and exits with its code.
Besides it, only the console's entry point (``console/main``) and the proxy workers configure logging.

Exit codes: 0 ok, 1 invalid input, 2 usage error, 3 runtime failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reconciler import __version__
from reconciler.agent.runner import Agent
from reconciler.agent.state_store import STATE_FILE, STATUS_FILE
from reconciler.agent.tick import TickOutcome, TickResult
from reconciler.capabilities.edge_network import saved_networks
from reconciler.console import main as console_main
from reconciler.errors import ReconcilerError, RemoteNotFoundError, SettingsError, SourceError
from reconciler.loading.report import FORMATTERS
from reconciler.model.json_schema import generate_schemas, render_schema
from reconciler.model.values import NODE_NAME_PATTERN, parse_api_listen, parse_duration
from reconciler.render import nagios
from reconciler.render.plan import RENDERERS, render_text
from reconciler.render.status import render_edges_csv, render_fleet_text, render_status_text
from reconciler.settings import (
    DEFAULT_STATE_DIR,
    MAX_AUTO_WORKERS,
    WEBHOOK_SECRET_ENV,
    AgentSettings,
    GitIdentity,
    argument_type,
    check_status_message,
)
from reconciler.status.fleet import fleet_rows
from reconciler.status.state_file import StateFileError, decode
from reconciler.system.clock import SystemClock
from reconciler.system.cpus import usable_cpus
from reconciler.system.files import (
    FileSystem,
    ReadOnlyFileSystem,
    read_bytes_if_exists,
    temporary_directory,
    write_atomic,
)
from reconciler.system.folder_source import FolderSource
from reconciler.system.git import STATUS_LAYOUTS, open_repository
from reconciler.system.resolver import nameserver
from reconciler.system.signals import StopSignals, start_process_helpers
from reconciler.system.status_fleet import fetch_fleet
from reconciler.validation import validate_paths

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
    validate.add_argument(
        "paths",
        nargs="*",
        default=[Path("desired-state")],
        type=Path,
        metavar="PATH",
        help="a folder (the whole tree) or YAML files (as a pre-commit hook passes them); default: desired-state",
    )
    validate.add_argument("--allow-empty", action="store_true", help="a tree without documents is valid")
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
    plan.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="plan against what the agent with this state dir recorded (read only); default: from nothing",
    )
    plan.add_argument("--format", choices=sorted(RENDERERS), default="text", help="default: text")

    apply = commands.add_parser("apply", help="one reconcile pass from a folder, then exit")
    apply.add_argument("path", nargs="?", default="desired-state", type=Path, help="default: desired-state")
    apply.add_argument("--once", action="store_true", required=True, help="one pass (required: say it)")
    _node_flag(apply)
    _state_dir_flag(apply)
    apply.add_argument("--force", action="store_true", help="pass the safety gate")

    run = commands.add_parser(
        "run",
        help="the agent: scheduler, HTTP API, status commits",
        epilog="Every flag can also be given as RECONCILER_<FLAG> (dashes as underscores: RECONCILER_STATUS_INTERVAL)"
        "; a flag on the command line wins. Secrets come from the environment only: RECONCILER_WEBHOOK_SECRET "
        "(POST /hooks/git, POST /plan/approve) and RECONCILER_GIT_TOKEN (HTTPS remotes).",
    )
    _agent_flags(run)

    status = commands.add_parser(
        "status", help="the current status of this node; with --repo URL --all, of every node (the fleet view)"
    )
    _state_dir_flag(status)
    status.add_argument(
        "--format",
        choices=["text", "json", "csv"],
        default="text",
        help="csv: one row per edge of every EdgeNetwork (network, edge, tier, live, mode, last, average, ...)",
    )
    status.add_argument("--all", action="store_true", help="every node's status, read from --repo")
    status.add_argument("--repo", default=_env("repo", ""), help="with --all: the desired-state repository")
    status.add_argument(
        "--status-branch",
        default=_env("status_branch", "reconciler-status"),
        help="with --all: the branch the agents publish to (each node's <branch>/<node>, or the shared one); "
        "default: reconciler-status",
    )
    status.add_argument(
        "--stale-after",
        type=_duration,
        default=_env("stale_after", "15m"),
        help="with --all: a node whose last heartbeat is older is stale (default 15m: three heartbeats)",
    )

    check = commands.add_parser(
        "check",
        help="a Nagios-compatible check of an EdgeNetwork from this node's state (exit 0 OK, 1 WARNING, "
        "2 CRITICAL, 3 UNKNOWN)",
    )
    check.add_argument("check", choices=["edges-integrity", "edges-latency", "edges-rotation"])
    check.add_argument("network", help="the EdgeNetwork's name")
    _state_dir_flag(check)
    check.add_argument("--warning", type=float, default=None, help="warning at or above (edges, seconds, changes)")
    check.add_argument("--critical", type=float, default=None, help="critical at or above")
    console_main.add_parser(commands)
    return parser


def _env(flag: str, default: str) -> str:
    """Every flag's default may come from RECONCILER_<FLAG> (dashes as underscores)."""
    return os.environ.get(f"RECONCILER_{flag.upper()}", default)


def _node_name(text: str) -> str:
    """A node name as spec.nodes lists them; it also names the node's status folder and branch."""
    if len(text) <= 253 and re.fullmatch(NODE_NAME_PATTERN, text):
        return text
    hint = f" (did you mean {text.lower()!r}?)" if re.fullmatch(NODE_NAME_PATTERN, text.lower()) else ""
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a node name: lower-case letters, digits and '-' in dot-separated labels, as spec.nodes"
        f" lists nodes{hint}"
    )


def _node_flag(parser: argparse.ArgumentParser) -> None:
    # host names are case-insensitive and node names lower-case: the host GW-1 is the node gw-1
    _option(parser, "node", socket.gethostname().lower(), "this node's name, what spec.nodes selects", _node_name)


def _state_dir_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(_env("state_dir", str(DEFAULT_STATE_DIR))),
        help="where the agent keeps its state file, status snapshot and repository; default: %(default)s",
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


def _workers(text: str) -> int | None:
    """A worker count, or None for ``auto``."""
    if text == "auto":
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"'{text}' is not a count (auto, 0, 1, 2, ...)")
    return int(text)


@dataclass(frozen=True)
class _EnvError:
    """A value from the environment that does not convert: reported naming the variable, after parsing, if the
    flag was not given on the command line (which would win)."""

    variable: str
    value: str
    message: str


def _env_name(flag: str) -> str:
    return f"RECONCILER_{flag.upper().replace('-', '_')}"


def _option(
    parser: argparse.ArgumentParser,
    flag: str,
    default: str,
    text: str,
    convert: Callable[[str], Any] | None = None,
    **extra: Any,
) -> None:
    """``--flag`` with its default from RECONCILER_<FLAG> when set, and both in the help."""
    raw = os.environ.get(_env_name(flag))
    value: object = raw if raw is not None else default
    if convert is not None and raw is not None:
        try:
            value = convert(raw)
        except (argparse.ArgumentTypeError, ValueError) as exc:
            value = _EnvError(_env_name(flag), raw, str(exc))
    shown = f"default: {raw} (from {_env_name(flag)})" if raw is not None else f"default: {default or 'none'}"
    if convert is not None:
        extra["type"] = convert
    parser.add_argument(f"--{flag}", default=value, help=f"{text}; {shown}", **extra)


def _switch(parser: argparse.ArgumentParser, flag: str, text: str) -> None:
    """``--flag``, also on with RECONCILER_<FLAG>=true."""
    on = os.environ.get(_env_name(flag), "").lower() == "true"
    suffix = f"; on (from {_env_name(flag)})" if on else ""
    parser.add_argument(f"--{flag}", action="store_true", default=on, help=text + suffix)


def _path(text: str) -> Path | None:
    return Path(text) if text else None


def _agent_flags(parser: argparse.ArgumentParser) -> None:
    repo = _env("repo", "")
    parser.add_argument(
        "--repo", default=repo, required=not repo, help="git URL of the desired-state repository (file, ssh, https)"
    )
    _option(parser, "branch", "main", "branch that holds the desired state")
    _option(parser, "path", ".", "folder of the desired state inside the repository")
    _node_flag(parser)
    _state_dir_flag(parser)
    _option(parser, "listen", "127.0.0.1:9900", "address of the HTTP API and metrics", argument_type(parse_api_listen))
    _option(parser, "interval", "30s", "git poll interval (a webhook fetches at once)", _duration)
    _option(parser, "resync-interval", "5m", "reconcile everything this often even without changes", _duration)
    _option(
        parser,
        "status-branch",
        "reconciler-status",
        "status branch: per node, this node commits to <status-branch>/<node>; shared, to this branch",
    )
    _option(
        parser,
        "status-layout",
        "per-node",
        "per-node: a branch of its own per node (never contended); shared: one branch for every node",
        choices=STATUS_LAYOUTS,
    )
    _option(parser, "status-interval", "10s", "at most one status commit per interval", _duration)
    _option(
        parser,
        "status-heartbeat",
        "5m",
        "the status says when the node was last alive, refreshed this often (so stopped nodes show as stale)",
        _duration,
    )
    _option(
        parser,
        "status-message",
        "status: {node} at {revision}",
        "message of status commits, with the placeholders {node} and {revision}",
        _status_message,
    )
    _option(parser, "author-name", "reconciler", "author name of status commits")
    _option(parser, "author-email", "reconciler@localhost", "author email of status commits")
    _switch(parser, "sign-status", "sign status commits with git's own signing configuration")
    _switch(parser, "dry-run", "observe, plan and publish status; change nothing on this machine")
    _switch(parser, "once", "one pass, print the plan and status, then exit")
    _switch(parser, "force", "let plans through the safety gate (for this run)")
    _switch(parser, "verify-signatures", "apply only commits signed by an allowed key")
    _option(parser, "allowed-signers", "", "SSH allowed-signers file for --verify-signatures", _path)
    _option(parser, "gpg-home", "", "GnuPG home with the keys for --verify-signatures", _path)
    _option(parser, "shutdown-timeout", "8s", "how long a stop may take before everything is ended", _duration)
    _option(
        parser,
        "proxy-workers",
        "auto",
        "processes carrying TCPProxy traffic (auto: one per CPU this process may use, at most "
        f"{MAX_AUTO_WORKERS}; IP pools: 1; 0: inside the agent's process)",
        _workers,
    )
    parser.add_argument(
        "--nameserver",
        dest="nameservers",
        action="append",
        type=_nameserver,
        default=None,
        metavar="IP[:PORT]",
        help="DNS server for target names, repeat for more (RECONCILER_NAMESERVERS: comma-separated); "
        "default: the system's (/etc/resolv.conf)",
    )


def _env_errors(args: argparse.Namespace) -> list[str]:
    return [
        f"{value.variable}={value.value}: {value.message}"
        for value in vars(args).values()
        if isinstance(value, _EnvError)
    ]


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
        status_layout=args.status_layout,
        status_heartbeat=args.status_heartbeat,
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
        nameservers=tuple(args.nameservers or [n for n in _env("nameservers", "").split(",") if n]),
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


def _run_agent(settings: AgentSettings) -> int:
    """The long-running agent. SIGINT and SIGTERM are blocked before the first thread or git child exists, so
    that only the one thread of StopSignals takes them (a Ctrl-C kills no git and no proxy worker mid-way)."""
    agent: Agent | None = None
    early: list[int] = []  # signals before the agent exists (the first clone): it stops as soon as it starts

    def stop_signal(signum: int) -> None:
        if agent is None:
            early.append(signum)
        else:
            agent.stop_signal(signum)

    if settings.tcp_proxy_workers(usable_cpus()) or settings.pool_proxy_workers:
        start_process_helpers()
    with StopSignals(stop_signal):
        source, publisher = open_repository(settings)
        try:
            agent = Agent(settings, source=source, publisher=publisher)
            for signum in early:
                agent.stop_signal(signum)
            with _event_loop() as runner:
                return runner.run(agent.run())
        finally:
            source.close()


def _run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not settings.once:
        return _run_agent(settings)
    source, publisher = open_repository(settings)
    agent = Agent(settings, source=source, publisher=publisher)
    try:
        result = asyncio.run(agent.run_once())
    finally:
        source.close()
    print(render_text(result.plan))
    _print_status(agent.handle.status_document())
    if agent.state_error is not None:
        print(f"reconciler: {agent.state_error}", file=sys.stderr)
        return EXIT_RUNTIME
    stall = result.stall
    if stall is not None and stall[0] == "PathNotFound":  # --path names no folder: an input error, as documented
        print(f"reconciler: {stall[1]}", file=sys.stderr)
        return EXIT_USAGE
    return _exit_code(result)


def _local_agent(
    path: Path, node: str, state_dir: Path, *, dry_run: bool, force: bool, files: FileSystem | None = None
) -> Agent:
    settings = AgentSettings(repo=str(path), node=node, branch="", state_dir=state_dir, dry_run=dry_run, force=force)
    return Agent(settings, source=FolderSource(path), files=files)


def _plan(args: argparse.Namespace) -> int:
    if args.state_dir is not None:
        # what that node recorded (revisions, what its capabilities ran), read only: plan changes nothing
        files = ReadOnlyFileSystem()
        agent = _local_agent(args.path, args.node, args.state_dir, dry_run=True, force=False, files=files)
        result = asyncio.run(agent.run_once())
    else:
        with temporary_directory("reconciler-plan-") as state_dir:
            agent = _local_agent(args.path, args.node, Path(state_dir), dry_run=True, force=False)
            result = asyncio.run(agent.run_once())
    not_enforced = list(result.not_enforced)
    if args.format == "json":
        document = json.loads(RENDERERS["json"](result.plan))
        print(json.dumps({**document, "notEnforced": not_enforced}, indent=2))
    else:
        print(RENDERERS[args.format](result.plan).rstrip("\n"))
        if result.resources == 0:
            print(f"no resource in {args.path} selects node {args.node} (spec.nodes)")
        if not_enforced:
            print(f"not enforced by this agent yet (validated only): {', '.join(not_enforced)}")
    if result.outcome is TickOutcome.STALLED:
        _print_status(agent.handle.status_document())
    return _exit_code(result)


def _apply(args: argparse.Namespace) -> int:
    agent = _local_agent(args.path, args.node, args.state_dir, dry_run=False, force=args.force)
    result = asyncio.run(agent.run_once())
    print(render_text(result.plan))
    _print_status(agent.handle.status_document())
    return _exit_code(result)


def _fleet(args: argparse.Namespace) -> int:
    """Every node's status from the remote, whatever the layout: node, revision, Ready, age, stale."""
    if not args.repo:
        print("reconciler: --all reads the nodes' status from --repo URL (or RECONCILER_REPO)", file=sys.stderr)
        return EXIT_USAGE
    with temporary_directory("reconciler-fleet-") as folder:
        found = fetch_fleet(args.repo, Path(folder), status_branch=args.status_branch, timeout=60)
    nodes = {name: (node.files, node.changed_at) for name, node in found.items()}
    rows = fleet_rows(nodes, now=SystemClock().now(), stale_after=args.stale_after.total_seconds())
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    print(render_fleet_text(rows))
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    if args.all:
        return _fleet(args)
    if args.repo and os.environ.get(_env_name("repo")) != args.repo:  # given on the command line, not inherited
        print(
            "reconciler: --repo is read with --all (every node's status); without it, status reads --state-dir",
            file=sys.stderr,
        )
        return EXIT_USAGE
    content = read_bytes_if_exists(args.state_dir / STATUS_FILE)
    if content is None:
        print(f"reconciler: no status in {args.state_dir} (has the agent run with this --state-dir?)", file=sys.stderr)
        return EXIT_USAGE
    try:
        document = json.loads(content)
        if args.format == "json":
            shown = json.dumps(document, indent=2) + "\n"
        elif args.format == "csv":
            shown = render_edges_csv(document)
        else:
            shown = render_status_text(document) + "\n"
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # not JSON, or not a status document
        path = args.state_dir / STATUS_FILE
        why = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc)
        print(f"reconciler: {path} cannot be read ({why}); the agent writes it again at its next pass", file=sys.stderr)
        return EXIT_RUNTIME
    print(shown, end="")
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    """Reads the EdgeNetwork part of the state file; anything missing is UNKNOWN, as plugins say it."""
    kind = args.check.removeprefix("edges-")
    service = nagios.SERVICES[kind]
    try:
        warning, critical = nagios.thresholds(kind, args.warning, args.critical)
    except ValueError as exc:
        print(f"{service} UNKNOWN - {exc}")
        return 3
    content = read_bytes_if_exists(args.state_dir / STATE_FILE)
    try:
        part = decode(content).capabilities.get("EdgeNetwork") if content is not None else None
    except StateFileError as exc:
        print(f"{service} UNKNOWN - the state file cannot be read: {exc}")
        return 3
    network = saved_networks(part.version, part.state).get(args.network) if part is not None else None
    if network is None:
        print(f"{service} UNKNOWN - no state of EdgeNetwork {args.network} in {args.state_dir}")
        return 3
    if kind == "integrity":
        result = nagios.integrity(args.network, {h: e for h, e in network.errors.items() if e}, warning, critical)
    elif kind == "latency":
        last = {h: history.last.seconds for h, history in network.histories.items() if history.last is not None}
        result = nagios.latency(args.network, list(network.live), last, warning, critical)
    else:
        result = nagios.rotation(
            args.network,
            list(network.changes),
            now=SystemClock().now(),
            per=network.per,
            warning=warning,
            critical=critical,
        )
    print(result.line)
    return result.code


def _validate(args: argparse.Namespace) -> int:
    today = datetime.fromtimestamp(SystemClock().now(), UTC).date()
    report = validate_paths(args.paths, base=args.base, allow_empty=args.allow_empty, today=today)
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
    quiet = args.command in ("validate", "schema", "plan", "status", "check")
    logging.basicConfig(
        level=(logging.WARNING if quiet else logging.INFO, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # APScheduler logs every job run at INFO, httpx every request (a thousand edges a minute): their warnings and
    # errors are what an operator needs; a probe's outcome is in status and metrics.
    for chatty in ("apscheduler", "httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    if errors := _env_errors(args):
        for error in errors:
            print(f"reconciler: {error}", file=sys.stderr)
        return EXIT_USAGE
    commands = {
        "validate": _validate,
        "schema": _schema,
        "plan": _plan,
        "apply": _apply,
        "run": _run,
        "status": _status,
        "check": _check,
        "console": console_main.run,
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
