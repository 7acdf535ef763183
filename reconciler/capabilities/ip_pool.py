"""The IPPool capability: an nginx egress-IP pool's members, their health from nginx's access log, and the TCP
proxy that hands out the available ones.

Observing reads the members (listed, or from nginx's configuration: server blocks or an upstream block), reads
the log lines written since the last observation (``system/log_tail``: rotations followed, nothing lost or read
twice), attributes each request to its member and judges every member with the pool's HealthStrategy and the
manual bans (``planning/pool``). Planning compares the proxy app the pool should run (one target
``next:<port>`` per member) with what runs, and adds each member's availability as a settings change, so health
never waits for the safety gate; applying runs the app on this capability's proxy manager (the same engine and
workers as TCPProxy) and hands it the availability.

Each pool's state keeps its members' health (bans and cool-downs survive a restart) and each log's position (no
line is counted twice, none skipped), and, in memory only, the open logs and what the last scan found.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, cast

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import ConfigDict, PlainSerializer, PlainValidator

from reconciler.capabilities.base import Capability, Observed
from reconciler.capabilities.context import CapabilityContext, PassRequests
from reconciler.capabilities.ip_pool_compat import compat_routes
from reconciler.capabilities.routes import NotReadyError, state_route
from reconciler.capabilities.state import Runtime
from reconciler.errors import ApplyError, ObserveError
from reconciler.formats.access_log import LogCounts, LogReader, Requests, read_requests, requests
from reconciler.health.registry import strategy_of
from reconciler.model import DesiredState, HealthStrategy
from reconciler.model.ip_pool import IPPool
from reconciler.model.observed import ProxyAppFacts
from reconciler.model.proxy_config import AppConfig, AppSettings
from reconciler.model.values import format_host_port
from reconciler.observers.nginx_members import NginxMember, server_members, upstream_members
from reconciler.planning.plan import Action, Change, TargetPlan
from reconciler.planning.pool import MemberHealth, failure_test, health_from_json, health_to_json, judge
from reconciler.planning.tcp_proxy import AppTarget, ProxyMember, apply_changes, plan_app
from reconciler.proxy.manager import ProxyManager
from reconciler.system.clock import Clock
from reconciler.system.files import file_signature
from reconciler.system.log_tail import LogTail, TailPosition
from reconciler.system.nginx import read_nginx_config

APP_PREFIX = "pool:"
WATCH_SECONDS = 1.0  # how often nginx files on the machine are looked at between scans


@dataclass(frozen=True, slots=True)
class Availability:
    """A member's availability as the proxy should use it."""

    address: str
    up: bool
    reason: str

    def __str__(self) -> str:
        return "available" if self.up else f"unavailable: {self.reason}"


@dataclass(frozen=True)
class PoolFacts:
    members: tuple[NginxMember, ...]
    health: Mapping[str, MemberHealth]
    counts: LogCounts
    problems: tuple[str, ...]
    app: ProxyAppFacts | None


def _health_from_json(data: object) -> dict[str, MemberHealth]:
    if not isinstance(data, Mapping):
        raise ValueError("health is an object of members")
    try:
        return {str(ip): health_from_json(h) for ip, h in data.items()}
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"a member's health cannot be read: {exc!r}") from None


def _health_to_json(health: Mapping[str, MemberHealth]) -> dict[str, Any]:
    return {ip: health_to_json(h) for ip, h in sorted(health.items())}


Health = Annotated[dict[str, MemberHealth], PlainValidator(_health_from_json), PlainSerializer(_health_to_json)]


@dataclass
class PoolState:
    """What one pool keeps between scans: written to the state file, the members' health and each log's
    (inode, offset); in memory, the rest."""

    __pydantic_config__ = ConfigDict(arbitrary_types_allowed=True)

    health: Health = field(default_factory=dict)
    logs: dict[str, tuple[int, int]] = field(default_factory=dict)  # resolved log path -> (inode, offset)
    tails: Annotated[dict[str, LogTail], Runtime] = field(default_factory=dict)  # resolved log path -> its tail
    counts: Annotated[LogCounts, Runtime] = field(default_factory=LogCounts)
    members: Annotated[tuple[NginxMember, ...], Runtime] = ()
    resource: Annotated[IPPool | None, Runtime] = None  # as last observed (the old tool's /api/config)
    # nginx file -> its stat at the scan
    watched: Annotated[dict[str, tuple[int, int, float] | None], Runtime] = field(default_factory=dict)
    # health holds a verdict (a finished scan, or the state file's); not while the first scan runs
    judged: Annotated[bool, Runtime] = True

    def close(self) -> None:
        for tail in self.tails.values():
            tail.close()


PoolValue = ProxyMember | Availability


def app_key(name: str) -> str:
    return f"{APP_PREFIX}{name}"


def proxy_target(pool: IPPool, member: NginxMember) -> str:
    """Where the proxy sends a member's connections: nginx (``next``) on the member's port, for members that
    are nginx server blocks (or listed); the member itself for the servers of an upstream block."""
    if pool.spec.members.upstream is not None or pool.spec.proxy is None:
        return format_host_port(member.ip, member.port)
    return format_host_port(pool.spec.proxy.next, member.port)


def desired_app(pool: IPPool, members: Sequence[NginxMember]) -> AppConfig | None:
    proxy = pool.spec.proxy
    if proxy is None:
        return None
    settings = AppSettings(
        balance=proxy.balance,
        connect_timeout=proxy.dialTimeout.total_seconds(),
        retries=2,
        idle_timeout=proxy.idleTimeout.total_seconds() if proxy.idleTimeout else None,
        on_empty=proxy.emptyPool,
        eject_after=0,  # the access log judges members, not failed connects to nginx
        max_lifetime=proxy.maxLifetime.total_seconds() if proxy.maxLifetime else None,
        min_reuse=proxy.minReuseInterval.total_seconds(),
    )
    targets = tuple((proxy_target(pool, m), m.weight) for m in members if not m.down)
    listen = tuple((str(proxy.listen.host), port) for port in proxy.listen.ports)
    return AppConfig(app_key(pool.metadata.name), listen, targets, settings, None)


def _summary(facts: PoolFacts) -> dict[str, Any]:
    """Every member's availability and reason; counts change with every request and stay in /metrics."""
    shown = []
    for member in facts.members:
        health = facts.health.get(member.ip)
        verdict = health.verdict if health is not None else None
        shown.append(
            {
                "ip": member.ip,
                "port": member.port,
                "available": verdict.available if verdict else True,
                "reason": (verdict.reason if verdict else "") or "",
            }
        )
    summary: dict[str, Any] = {"members": shown}
    if facts.problems:
        summary["problems"] = list(facts.problems)
    return summary


class IPPoolCapability(Capability[IPPool, PoolFacts, PoolValue, PoolState]):
    resource_type = IPPool
    state_type = PoolState
    state_version = 2

    def __init__(
        self,
        manager: ProxyManager,
        clock: Clock,
        *,
        replay: bool = False,
        passes: PassRequests | None = None,
        api_port: str = "",
    ) -> None:
        self.manager = manager
        self.api_port = api_port  # the agent's API port, shown as the old tool's probe_port
        self.clock = clock
        self.replay = replay
        self.passes = passes or PassRequests()
        self.strategies: dict[str, HealthStrategy] = {}
        self.files_root: str | None = None
        self.watcher: asyncio.Task[None] | None = None

    @classmethod
    def from_context(cls, context: CapabilityContext) -> IPPoolCapability:
        settings = context.settings
        manager = ProxyManager(
            drain=settings.shutdown_timeout.total_seconds() / 2,
            workers=settings.pool_proxy_workers,
            resolver=context.resolver,
            connector=context.connector,
            clock=context.clock,
        )
        api_port = settings.listen.rsplit(":", 1)[-1]
        return cls(manager, context.clock, replay=settings.dry_run, passes=context.passes, api_port=api_port)

    def new_state(self) -> PoolState:
        return PoolState(judged=False)

    @classmethod
    def upgrade_state(cls, version: int, part: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """Version 1 kept every pool's record under ``pools``, as today's."""
        pools = part.get("pools") if version == 1 else None
        return pools if isinstance(pools, dict) else None

    def use(self, desired: DesiredState) -> None:
        self.strategies = {s.metadata.name: s for s in desired.of_kind(HealthStrategy)}
        self.files_root = desired.files_root

    def observe_interval(self, resource: IPPool) -> timedelta | None:
        return resource.spec.scanInterval

    def _path(self, text: str) -> Path:
        """A path as the resource wrote it: relative ones name files of the desired-state folder."""
        path = Path(text)
        if path.is_absolute() or self.files_root is None:
            return path
        return Path(self.files_root) / path

    # --- observe ---------------------------------------------------------------------------------------------

    def _members(self, pool: IPPool) -> tuple[tuple[NginxMember, ...], tuple[str, ...]]:
        source = pool.spec.members
        if source.static is not None:
            return tuple(NginxMember(str(m.ip), m.port) for m in source.static), ()
        if source.nginxConf is not None:
            found = server_members(read_nginx_config(self._path(source.nginxConf)))
        else:
            assert source.upstream is not None
            found = upstream_members(read_nginx_config(self._path(source.upstream.file)), source.upstream.name)
        return found.members, found.problems

    def _nginx_files(self, pool: IPPool) -> list[str]:
        """The machine's nginx file the members come from (files the repository ships change by commit)."""
        source = pool.spec.members
        named = source.nginxConf or (source.upstream.file if source.upstream else None)
        if named is None or not Path(named).is_absolute():
            return []
        return [named]

    async def start(self) -> None:
        self.watcher = asyncio.get_running_loop().create_task(self._watch(), name="ip-pool nginx files")

    async def _watch(self) -> None:
        """A pool whose nginx file on the machine changed is scanned at once, not at its next scanInterval."""
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            for name, state in list(self.states.items()):
                if any(file_signature(Path(path)) != seen for path, seen in state.watched.items()):
                    state.watched = {}  # asked once; the scan records the new state
                    self.passes.request(IPPool.KIND, name)

    def _scan(self, pool: IPPool, reader: LogReader, members: Sequence[NginxMember], state: PoolState) -> Requests:
        log = pool.spec.accessLog
        found = Requests()
        if reader.by == "file":
            for member in members:
                tail = self._tail(state, self._path(log.path.replace("{ip}", member.ip)), from_end=log.from_ == "end")
                read_requests(reader, tail.read(), {}, file_member=member.ip, into=found)
        else:
            keys: dict[bytes, str] = {}
            for member in members:
                keys[str(member.port).encode()] = member.ip
                keys[format_host_port(member.ip, member.port).encode()] = member.ip
            tail = self._tail(state, self._path(log.path), from_end=log.from_ == "end")
            read_requests(reader, tail.read(), keys, into=found)
        for path, tail in state.tails.items():
            if (position := tail.position) is not None:
                state.logs[path] = (position.inode, position.offset)
        return found

    def _tail(self, state: PoolState, path: Path, *, from_end: bool) -> LogTail:
        tail = state.tails.get(str(path))
        if tail is None:
            saved = state.logs.get(str(path))
            position = TailPosition(*saved) if saved is not None else None
            tail = state.tails[str(path)] = LogTail(path, position, from_end=from_end)
        return tail

    async def observe(self, resource: IPPool, state: PoolState) -> Observed[PoolFacts]:
        name = resource.metadata.name
        strategy = self.strategies.get(resource.spec.strategy)
        if strategy is None:
            raise ObserveError(f"no HealthStrategy named {resource.spec.strategy}")
        # the files' state before reading them: a change while they are read is seen by the watcher
        state.watched = {path: file_signature(Path(path)) for path in self._nginx_files(resource)}
        members, problems = await asyncio.to_thread(self._members, resource)
        state.members = members
        state.resource = resource
        log = resource.spec.accessLog
        reader = LogReader.for_format(log.format, per_member_files="{ip}" in log.path)
        found = await asyncio.to_thread(self._scan, resource, reader, members, state)
        now = self.clock.now()
        seen = {member: requests(reader, rows, now=now) for member, rows in found.by_member.items()}
        state.health = judge(
            strategy,
            [m.ip for m in members],
            state.health,
            seen,
            failing=failure_test(resource.spec.failure),
            banned=[str(ip) for ip in resource.spec.banned],
            history=resource.spec.history,
            now=now,
        )
        state.counts.add(found.counts)
        state.judged = True
        app = self.manager.snapshot().get(app_key(name))
        facts = PoolFacts(members, dict(state.health), state.counts, problems, app)
        return Observed(facts, _summary(facts), degraded=_empty(facts))

    # --- plan and apply --------------------------------------------------------------------------------------

    def plan(
        self, resource: IPPool, facts: PoolFacts, state: PoolState, *, now: float
    ) -> Sequence[TargetPlan[PoolValue]]:
        key = app_key(resource.metadata.name)
        want = desired_app(resource, facts.members)
        planned = plan_app(key, want, facts.app, kind=IPPool.KIND, name=resource.metadata.name)
        if planned is None or want is None:
            return [_widened(planned)] if planned is not None else []
        port_of = (
            {format_host_port(resource.spec.proxy.next, m.port): m.ip for m in facts.members}
            if resource.spec.proxy
            else {}
        )
        running = {t.address: t for t in facts.app.targets} if facts.app else {}
        health: list[Change[PoolValue]] = []
        for address, _ in want.targets:
            member = facts.health.get(port_of.get(address, ""))
            verdict = member.verdict if member is not None else None
            up, reason = (verdict.available, verdict.reason) if verdict else (True, "")
            have = running.get(address)
            if have is None or (have.health != "down") != up or (not up and have.reason != reason):
                before = None if have is None else Availability(address, have.health != "down", have.reason or "")
                after = Availability(address, up, reason)
                health.append(Change(f"member {address}", Action.CHANGE, before, after, member=False))
        widened = _widened(planned)
        return [TargetPlan(planned.kind, planned.name, planned.target, planned.size, (*widened.changes, *health))]

    async def apply(self, resource: IPPool, target: TargetPlan[PoolValue], state: PoolState) -> None:
        if not isinstance(target.target, AppTarget):
            raise TypeError(f"an IPPool has no target {target.target}")
        key = target.target.key
        configuring = [c for c in target.changes if not isinstance(c.after, Availability)]
        try:
            if configuring:
                proxy_changes = cast("list[Change[ProxyMember]]", configuring)  # every value but an Availability
                await self.manager.set_app(key, apply_changes(key, self.manager.config(key), proxy_changes))
        except OSError as exc:
            raise ApplyError(str(exc)) from exc
        judged = {
            c.after.address: (c.after.up, c.after.reason) for c in target.changes if isinstance(c.after, Availability)
        }
        self.manager.set_health(key, judged)

    async def forget(self, name: str, state: PoolState | None) -> None:
        await self.manager.set_app(app_key(name), None)
        if state is not None:
            state.close()

    async def close(self, deadline: float) -> None:
        if self.watcher is not None:
            self.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.watcher
        for state in self.states.values():
            state.close()
        if not await self.manager.close_by(deadline):
            raise ApplyError("pool proxy connections did not drain in time: the proxy workers were ended")

    # --- metrics and routes ------------------------------------------------------------------------------------

    def collectors(self) -> Sequence[Collector]:
        return (PoolCollector(self),)

    def routes(self) -> Sequence[web.RouteDef]:
        def rescan(name: str, state: PoolState, request: web.Request) -> dict[str, str]:
            if not self.passes.request(IPPool.KIND, name):
                raise NotReadyError("no agent runs passes here")
            return {"rescan": name}

        return (
            state_route("GET", "/pools/{name}", self, _pool_view, what="IP pool"),
            state_route("POST", "/pools/{name}/rescan", self, rescan, what="IP pool", status=202),
            *compat_routes(self, self.api_port),
        )


def _pool_view(name: str, state: PoolState, request: web.Request) -> dict[str, Any]:
    """Every member's availability, reason, requests, recent history and strategy state; the log's counts."""
    if not state.judged:  # an empty answer would read as a pool without members
        raise NotReadyError(f"the first scan of IP pool {name} has not finished")
    members = {
        ip: {
            "available": health.verdict.available,
            "reason": health.verdict.reason,
            "requests": dict(health.requests),
            "history": [list(item) for item in health.history[-20:]],
            **health_to_json(health)["state"],
        }
        for ip, health in sorted(state.health.items())
    }
    log = {
        "lines": state.counts.lines,
        "unparsable": state.counts.unparsable,
        "unattributed": state.counts.unattributed,
    }
    return {"name": name, "members": members, "log": log}


class PoolCollector(Collector):
    """Per member of every pool: availability, cool-down, failures in a row and requests by status class; and the
    old tool's metric names (``ipmanager_*``, labelled ``ip`` and ``port``) for dashboards that query them."""

    def __init__(self, capability: IPPoolCapability) -> None:
        self.capability = capability

    def collect(self) -> Iterator[Metric]:
        labels = ["pool", "ip", "port"]
        available = GaugeMetricFamily(
            "reconciler_pool_member_available", "1 while the member is handed out.", labels=labels
        )
        cooling = GaugeMetricFamily(
            "reconciler_pool_member_cooldown_seconds",
            "Seconds until a banned member returns (0 if not banned).",
            labels=labels,
        )
        failures = GaugeMetricFamily(
            "reconciler_pool_member_consecutive_failures", "Failed requests in a row.", labels=labels
        )
        served = CounterMetricFamily(
            "reconciler_pool_member_requests", "Requests in the access log, by status class.", labels=[*labels, "class"]
        )
        old = {
            name: GaugeMetricFamily(name, text, labels=["ip", "port"])
            for name, text in (
                ("ipmanager_all_list", "Every member (1)."),
                ("ipmanager_available_list", "1 while the member is available."),
                ("ipmanager_cooldown_list", "1 while the member cools down after a ban."),
                ("ipmanager_consecutive_failure", "Failed requests in a row."),
            )
        }
        connections = CounterMetricFamily(
            "reconciler_pool_connections", "Connections the pool proxy accepted.", labels=["pool"]
        )
        empty = CounterMetricFamily(
            "reconciler_pool_empty", "Clients answered as configured because no member was available.", labels=["pool"]
        )
        relayed = CounterMetricFamily(
            "reconciler_pool_bytes", "Bytes the pool proxy relayed (in: client to nginx).", labels=["pool", "direction"]
        )
        apps = self.capability.manager.snapshot()
        now = self.capability.clock.now()
        for pool, state in sorted(self.capability.states.items()):
            app = apps.get(app_key(pool))
            if app is not None:
                connections.add_metric([pool], app.counters.connections)
                empty.add_metric([pool], app.counters.no_backend)
                relayed.add_metric([pool, "in"], app.counters.bytes_in)
                relayed.add_metric([pool, "out"], app.counters.bytes_out)
            for member in state.members:
                health = state.health.get(member.ip)
                if health is None:
                    continue
                row = [pool, member.ip, str(member.port)]
                up = 1.0 if health.verdict.available else 0.0
                until = _cooldown_until(health)
                row_old = [member.ip, str(member.port)]
                available.add_metric(row, up)
                cooling.add_metric(row, max(0.0, until - now) if until else 0.0)
                failures.add_metric(row, float(_in_a_row(health)))
                for status_class, count in sorted(health.requests.items()):
                    served.add_metric([*row, status_class], count)
                old["ipmanager_all_list"].add_metric(row_old, 1.0)
                old["ipmanager_available_list"].add_metric(row_old, up)
                old["ipmanager_cooldown_list"].add_metric(row_old, 1.0 if until and until > now else 0.0)
                old["ipmanager_consecutive_failure"].add_metric(row_old, float(_in_a_row(health)))
        yield from (available, cooling, failures, served, connections, empty, relayed, *old.values())


def _widened(plan: TargetPlan[ProxyMember]) -> TargetPlan[PoolValue]:
    """The proxy app's plan as a pool plan (its values are read, never written: widening them is safe)."""
    return cast("TargetPlan[PoolValue]", plan)


def _cooldown_until(health: MemberHealth) -> float | None:
    return strategy_of(health.state).cooldown_until(health.state)


def _in_a_row(health: MemberHealth) -> int:
    return strategy_of(health.state).in_a_row(health.state)


def _empty(facts: PoolFacts) -> tuple[str, str] | None:
    if not facts.members:
        return "EmptyPool", "the pool has no members"
    if all(not (h := facts.health.get(m.ip)) or not h.verdict.available for m in facts.members):
        return "EmptyPool", "no member is available: clients get the configured answer (proxy.emptyPool)"
    return None
