"""Agent settings: from flags and ``RECONCILER_<FLAG>`` environment variables, never from the desired state.

The webhook secret comes from the environment only (``RECONCILER_WEBHOOK_SECRET``), so it never shows in a
process list or in ``GET /config``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
DEFAULT_STATE_DIR = Path("/var/lib/reconciler")
WEBHOOK_SECRET_ENV = "RECONCILER_WEBHOOK_SECRET"  # noqa: S105 - a variable name, not a secret


STATUS_MESSAGE_PLACEHOLDERS = ("node", "revision")
MAX_AUTO_WORKERS = 4  # --proxy-workers auto: one per CPU up to this (docs/decisions.md, "Where it runs")


def argument_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    """``parse`` as an argparse ``type``: its ValueError's own words become the usage error (argparse would say
    only "invalid value")."""

    def checked(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return checked


def check_status_message(template: str) -> str:
    """The template of status commit messages, if every placeholder in it is one we fill; else ValueError."""
    known = ", ".join(f"{{{name}}}" for name in STATUS_MESSAGE_PLACEHOLDERS)
    try:
        template.format(**dict.fromkeys(STATUS_MESSAGE_PLACEHOLDERS, "x"))
    except KeyError as exc:
        raise ValueError(f"unknown placeholder {{{exc.args[0]}}}; use {known}") from None
    except (IndexError, ValueError) as exc:
        raise ValueError(f"{exc} (write {{{{ and }}}} for braces; placeholders: {known})") from None
    return template


@dataclass(frozen=True)
class GitIdentity:
    """Author of status commits."""

    name: str = "reconciler"
    email: str = "reconciler@localhost"


@dataclass(frozen=True)
class AgentSettings:
    """Everything the agent needs to know that is not desired state."""

    repo: str
    node: str
    branch: str = "main"
    path: str = "."
    state_dir: Path = DEFAULT_STATE_DIR
    listen: str = "127.0.0.1:9900"
    interval: timedelta = timedelta(seconds=30)
    resync_interval: timedelta = timedelta(minutes=5)
    status_branch: str = "reconciler-status"
    status_interval: timedelta = timedelta(seconds=10)
    status_layout: str = "per-node"  # per-node: a branch <status_branch>/<node> each; shared: one branch for all
    status_heartbeat: timedelta = timedelta(minutes=5)  # the status says "alive at" this often, even unchanged
    status_message: str = "status: {node} at {revision}"
    author: GitIdentity = field(default_factory=GitIdentity)
    sign_status: bool = False
    dry_run: bool = False
    once: bool = False
    force: bool = False
    verify_signatures: bool = False
    allowed_signers: Path | None = None
    gpg_home: Path | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    shutdown_timeout: timedelta = timedelta(seconds=8)
    proxy_workers: int | None = None  # None: auto (TCPProxy: one per usable CPU up to 4; IP pools: 1)
    git_timeout: timedelta = timedelta(seconds=60)
    nameservers: tuple[str, ...] = ()  # IP or IP:PORT; empty: the system's resolver configuration

    def tcp_proxy_workers(self, usable_cpus: int) -> int:
        """A TCPProxy's workers: as given, or one per CPU this process can use (``system/cpus.usable_cpus``: its
        CPUs, capped by a container's CPU limit), at most ``MAX_AUTO_WORKERS``."""
        return min(usable_cpus, MAX_AUTO_WORKERS) if self.proxy_workers is None else self.proxy_workers

    @property
    def pool_proxy_workers(self) -> int:
        """An IP pool's proxy: one process unless told otherwise, as its ``minReuseInterval`` is kept per process
        (with more, a member could be handed out once per process within the interval)."""
        return 1 if self.proxy_workers is None else self.proxy_workers

    def public(self) -> dict[str, object]:
        """The settings as shown by ``GET /config``: no secrets, and no credentials inside the repository URL."""
        return {
            "repo": _without_credentials(self.repo),
            "branch": self.branch,
            "path": self.path,
            "node": self.node,
            "stateDir": str(self.state_dir),
            "listen": self.listen,
            "interval": self.interval.total_seconds(),
            "resyncInterval": self.resync_interval.total_seconds(),
            "statusBranch": self.status_branch,
            "statusInterval": self.status_interval.total_seconds(),
            "statusLayout": self.status_layout,
            "statusHeartbeat": self.status_heartbeat.total_seconds(),
            "dryRun": self.dry_run,
            "force": self.force,
            "verifySignatures": self.verify_signatures,
            "webhook": self.webhook_secret is not None,
            "proxyWorkers": "auto" if self.proxy_workers is None else self.proxy_workers,
            "nameservers": list(self.nameservers),
        }


def _without_credentials(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
