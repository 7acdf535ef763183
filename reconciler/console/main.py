"""``reconciler console``: its flags (each also ``RECONCILER_<FLAG>``) and the service's lifetime."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path

from aiohttp import web

from reconciler.console.app import Access, ConsoleApp
from reconciler.console.auth import Sessions, TokenBook
from reconciler.console.service import Console
from reconciler.errors import ReconcilerError, SettingsError
from reconciler.model.values import host_and_port, parse_api_listen, parse_duration
from reconciler.settings import GitIdentity, argument_type
from reconciler.system.clock import SystemClock
from reconciler.system.console_git import ConsoleClone
from reconciler.system.forge import FORGE_TOKEN_ENV, KINDS, Forge
from reconciler.system.signals import StopSignals

log = logging.getLogger(__name__)


def _env(flag: str, default: str) -> str:
    return os.environ.get(f"RECONCILER_{flag.upper()}", default)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    console = commands.add_parser(
        "console",
        help="web pages and a JSON API that turn edits into commits or pull requests, and show every node's status",
        epilog="Every flag can also be given as RECONCILER_<FLAG>. Secrets come from the environment only: "
        "RECONCILER_GIT_TOKEN (HTTPS remotes) and RECONCILER_FORGE_TOKEN (the forge's API).",
    )
    console.add_argument("--repo", default=_env("repo", ""), help="git URL of the desired-state repository")
    console.add_argument("--branch", default=_env("branch", "main"), help="default: main")
    console.add_argument("--path", default=_env("path", ""), help="folder of the desired state in the repository")
    console.add_argument(
        "--listen",
        default=_env("listen", "127.0.0.1:9901"),
        type=argument_type(parse_api_listen),
        help="default: 127.0.0.1:9901",
    )
    console.add_argument(
        "--mode",
        choices=["pull-request", "push"],
        default=_env("mode", "pull-request"),
        help="pull-request: a branch console/<user>/... and a pull request; push: straight to --branch",
    )
    console.add_argument(
        "--status-branch",
        default=_env("status_branch", "reconciler-status"),
        help="the branch the agents publish their status to (each node's <branch>/<node>, or the shared one); "
        "default: reconciler-status",
    )
    console.add_argument(
        "--state-dir", type=Path, default=Path(_env("state_dir", "/var/lib/reconciler-console")), help="its clone"
    )
    console.add_argument(
        "--tokens", type=Path, default=_env("tokens", "") or None, help="file of hashed tokens (sha256:HEX USER EMAIL)"
    )
    console.add_argument("--trust-header", default=_env("trust_header", "") or None, help="e.g. X-Forwarded-User")
    console.add_argument(
        "--trusted-proxy",
        action="append",
        default=[p for p in _env("trusted_proxy", "").split(",") if p],
        help="address or network of a reverse proxy whose --trust-header is believed (repeatable)",
    )
    console.add_argument(
        "--trust-email-header",
        default=_env("trust_email_header", "") or None,
        help="header the trusted proxy sets to the user's e-mail (default: the tokens file's, or USER@console.invalid)",
    )
    console.add_argument(
        "--public-read",
        action="store_true",
        default=_env("public_read", "") in ("1", "true", "yes"),
        help="pages and read calls need no user (edits always do)",
    )
    console.add_argument(
        "--session-idle", default=_env("session_idle", "1h"), help="a page session ends unused this long (1h)"
    )
    console.add_argument(
        "--session-lifetime", default=_env("session_lifetime", "12h"), help="and this long after login (12h)"
    )
    console.add_argument(
        "--max-sessions",
        type=int,
        default=int(_env("max_sessions", "10000")),
        help="page sessions kept at once; the least recently used ends first (10000)",
    )
    console.add_argument("--forge", choices=KINDS, default=_env("forge", "") or None, help="who opens pull requests")
    console.add_argument(
        "--forge-url", default=_env("forge_url", ""), help="the forge's API, like https://api.github.com"
    )
    console.add_argument("--forge-project", default=_env("forge_project", ""), help="owner/name on the forge")
    console.add_argument(
        "--stale-after",
        default=_env("stale_after", "15m"),
        help="a node whose last heartbeat is older is stale (default 15m: three of the agents' heartbeats)",
    )
    console.add_argument(
        "--legacy-api",
        metavar="LIST",
        default=_env("legacy_api", "") or None,
        help="serve the old egress tool's /api?add=, /api?del=, /show-all and /ping, editing this allow-list",
    )
    console.add_argument("--git-timeout", default=_env("git_timeout", "60s"), help="default: 60s")


def _forge(args: argparse.Namespace) -> Forge | None:
    if args.forge is None:
        return None
    if not args.forge_url or not args.forge_project:
        raise SettingsError("--forge needs --forge-url and --forge-project")
    return Forge(args.forge, args.forge_url, args.forge_project, os.environ.get(FORGE_TOKEN_ENV, ""))


def build(args: argparse.Namespace) -> ConsoleApp:
    if not args.repo:
        raise SettingsError("--repo (or RECONCILER_REPO) is required")
    clone = ConsoleClone(
        args.repo,
        workdir=args.state_dir / "clone",
        branch=args.branch,
        path=args.path,
        timeout=parse_duration(args.git_timeout).total_seconds(),
        committer=GitIdentity("reconciler console", "console@reconciler.invalid"),
    )
    # a repository or branch that cannot be read is said now, as the agent says it, not by a 502 at every call
    clone.refresh()
    console = Console(clone, mode=args.mode, forge=_forge(args), clock=SystemClock())
    if args.max_sessions < 1:
        raise SettingsError("--max-sessions must be at least 1")
    sessions = Sessions(
        idle=parse_duration(args.session_idle).total_seconds(),
        lifetime=parse_duration(args.session_lifetime).total_seconds(),
        limit=args.max_sessions,
        clock=SystemClock().monotonic,
    )
    access = Access(
        TokenBook.read(args.tokens),
        args.trust_header,
        tuple(args.trusted_proxy),
        sessions,
        trust_email_header=args.trust_email_header,
        public_read=args.public_read,
    )
    stale = parse_duration(args.stale_after).total_seconds()
    return ConsoleApp(console, access, status_branch=args.status_branch, stale_after=stale, legacy_list=args.legacy_api)


class _Stop:
    """Where a stop signal goes: the served console's loop, or a note that it came before serving began."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.event: asyncio.Event | None = None
        self.early = False

    def signal(self, signum: int) -> None:
        if self.loop is None or self.event is None:
            self.early = True
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed
            self.loop.call_soon_threadsafe(self.event.set)


async def serve(app: ConsoleApp, listen: str, stop_on: _Stop | None = None) -> None:
    host, port = host_and_port(listen)
    runner = web.AppRunner(app.application(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise SettingsError(f"cannot listen on {listen}: {exc.strerror}") from exc
    log.info("console listening address=%s", listen)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    if stop_on is not None:
        stop_on.loop, stop_on.event = loop, stop
        if stop_on.early:
            stop.set()
    await stop.wait()
    await runner.cleanup()


def run(args: argparse.Namespace) -> int:
    # blocked before the clone's git children and the first thread: a Ctrl-C in the terminal ends an edit's push
    # only through the console's own stop
    stop = _Stop()
    with StopSignals(stop.signal):
        try:
            app = build(args)
        except ReconcilerError as exc:
            print(f"reconciler console: {exc}", file=sys.stderr)
            return 2
        try:
            asyncio.run(serve(app, args.listen, stop))
        except SettingsError as exc:
            print(f"reconciler console: {exc}", file=sys.stderr)
            return 2
        finally:
            with contextlib.suppress(Exception):
                app.console.close()
    return 0
