"""Facts: what observers and running capabilities report about the world, as frozen values.

Planning, status and metrics read these types, never dicts, so a field has one meaning everywhere.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from reconciler.model.proxy_config import AppSettings, CheckSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# --- DNS ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResolvedAddress:
    address: IPAddress
    ttl: int  # seconds the answer may be kept; 0 for a static entry (an IP literal, the hosts file)


@dataclass(frozen=True, slots=True)
class NameFacts:
    """One name's A and AAAA answers. ``error`` says why there is no address (empty when there is one)."""

    name: str
    addresses: tuple[ResolvedAddress, ...] = ()
    cnames: tuple[str, ...] = ()  # the CNAME chain from the name to the canonical name, in order
    error: str = ""

    @property
    def ttl(self) -> int:
        """The shortest TTL among the answers (how long the whole answer is good for)."""
        return min((a.ttl for a in self.addresses), default=0)


# --- TCP checks -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProbeFacts:
    """One active check of one target: passed or not, how long it took, why it failed."""

    ok: bool
    seconds: float
    error: str = ""
    local: bool = False  # the check could not be made for a reason of this machine's: no evidence about the target


# --- proxy apps -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProxyCounters:
    """What the data plane counted for one app (added up over worker processes)."""

    connections: int = 0
    active: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    connect_failures: int = 0
    retries: int = 0
    no_backend: int = 0
    ejections: int = 0
    at_limit: int = 0


Health = Literal["up", "down", "unknown"]  # unknown: not checked yet (traffic goes there, as HAProxy does)


@dataclass(frozen=True, slots=True)
class ProxyTargetFacts:
    address: str  # as the operator wrote it (host:port)
    weight: int
    health: Health
    resolved: str | None  # the ip:port connected to, None while the name does not resolve
    reason: str = ""
    active: int = 0
    connections: int = 0
    connect_failures: int = 0
    ejected: bool = False
    failed_checks: int = 0

    @property
    def usable(self) -> bool:
        """May get new connections: not known to be down, and not drained."""
        return self.health != "down" and self.weight > 0


@dataclass(frozen=True, slots=True)
class ProxyAppFacts:
    """One running app: where it listens, its targets with health, its settings and counters."""

    key: str
    listen: tuple[str, ...]  # host:port it listens on now
    targets: tuple[ProxyTargetFacts, ...]
    settings: AppSettings
    checks: CheckSettings | None
    listen_errors: Mapping[str, str] = field(default_factory=dict)  # host:port -> why it cannot listen there
    counters: ProxyCounters = field(default_factory=ProxyCounters)
    checks_not_made: int = 0  # health checks this machine could not make (EMFILE, ENOBUFS, ...), since start
    check_problem: str = ""  # the reason, while such failures are recent: the agent's own problem, not a target's


@dataclass(frozen=True, slots=True)
class TCPProxyFacts:
    """The apps of one TCPProxy resource that run now, by key (``<resource>/<app>``)."""

    apps: Mapping[str, ProxyAppFacts] = field(default_factory=dict)


# --- firewall -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChainFacts:
    """One of our chains as the kernel has it: its rules as ``iptables-save`` prints them, and how many jump
    rules lead to it from its built-in chain."""

    exists: bool
    rules: tuple[str, ...] = ()
    jumps: int = 0


@dataclass(frozen=True)
class FirewallFacts:
    """Our sets and chains in the kernel. ``entries``: set name -> how many members the kernel holds;
    ``members``: the members of those sets as normalised networks ('203.0.113.7/32'), read again only when the
    kernel's count differs from what was known; ``chains``: 'filter 4' -> the chain; ``forwarding``: family ->
    whether the kernel forwards it."""

    entries: Mapping[str, int] = field(default_factory=dict)
    members: Mapping[str, frozenset[str]] = field(default_factory=dict)
    chains: Mapping[str, ChainFacts] = field(default_factory=dict)
    forwarding: Mapping[int, bool] = field(default_factory=dict)


# --- edges ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EdgeProbeFacts:
    """One probe of one edge: passed or not, how long to the full body (the timeout value when it failed), how
    long to the headers, and why it failed."""

    edge: str
    address: str | None  # what the edge resolved to (None: it did not)
    ok: bool
    seconds: float
    headers_seconds: float | None = None
    error: str = ""
