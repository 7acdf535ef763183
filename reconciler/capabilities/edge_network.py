"""The EdgeNetwork capability: every edge probed each ``interval``, the healthiest set kept live in BIND zone files.

Observing probes every edge and canary (``observers/http_probe``), adds the results to each edge's history, and
selects the live set (``planning/edges``: tiers, modes, sticky edges, the rotation budget, canaries) and renders
each zone (``render/zone``). Planning compares each zone with what was last written; applying writes the changed
zones (checked by ``named-checkzone`` first) and moves the published live set, then runs ``afterChange`` once.
Histories, the live set, the rotation times, the serials and the zones' content are each network's state,
written to the state file, so a restart neither rewrites a zone nor spends the rotation budget again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from aiohttp import web
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import PlainSerializer, PlainValidator

from reconciler.appliers.zone import ZoneApplier, zone_group
from reconciler.capabilities.base import Capability, Observed
from reconciler.capabilities.context import CapabilityContext
from reconciler.capabilities.routes import NotFoundError, state_route
from reconciler.capabilities.state import Runtime, read_part
from reconciler.errors import ApplyError
from reconciler.model import DesiredState
from reconciler.model.edge_network import EdgeNetwork, EdgeNetworkSpec, Rotation
from reconciler.model.observed import EdgeProbeFacts
from reconciler.observers.http_probe import ProbeSpec, probe_all, probe_canaries
from reconciler.planning.edges import (
    Candidate,
    History,
    Judging,
    Probe,
    Selection,
    Tier,
    place_canaries,
    select_live,
    tier,
)
from reconciler.planning.plan import Action, Change, TargetPlan, Whole
from reconciler.render.zone import RenderedZone, ZoneTemplateError, next_serial, render_zone
from reconciler.system.clock import Clock
from reconciler.system.commands import CommandRunner
from reconciler.system.files import file_permissions, read_bytes_if_exists
from reconciler.system.http import HttpFetcher
from reconciler.system.resolver import Resolver

ZONES_TARGET = Whole("zones")


@dataclass(frozen=True, slots=True)
class ZoneWrite:
    """A zone as it will be written: its file, the serial and the text."""

    zone: str
    path: str
    serial: int
    body: str
    text: str

    def __str__(self) -> str:
        return f"{self.path} serial {self.serial}"


@dataclass(frozen=True, slots=True)
class ZonePermissions:
    """A zone file's permissions as the spec wants them (the text is as written; someone changed its mode)."""

    zone: str
    path: str
    mode: int
    group: str | None

    def __str__(self) -> str:
        return f"{self.path} mode {self.mode:04o}" + (f" group {self.group}" if self.group else "")


@dataclass(frozen=True, slots=True)
class ZoneRecord:
    """An address a zone publishes (added or removed)."""

    zone: str
    address: str

    def __str__(self) -> str:
        return self.address


@dataclass(frozen=True, slots=True)
class LiveSet:
    """The live set the zones publish, and the times of its changes within the rotation window."""

    live: tuple[str, ...]
    changes: tuple[float, ...]

    def __str__(self) -> str:
        return ", ".join(self.live) or "none"


ZoneValue = ZoneWrite | ZonePermissions | ZoneRecord | LiveSet | str


@dataclass(frozen=True, slots=True)
class ZoneFile:
    """A zone file on disk as the plan needs it."""

    exists: bool
    permissions_wanted: bool  # its mode or group is not what the spec names


def _permissions_wanted(path: Path, mode: int, group: str | None) -> bool:
    """Whether a zone file lacks the mode or group the spec names (a group this machine lacks: the apply says so)."""
    found = file_permissions(path)
    if found is None:
        return False
    try:
        gid = zone_group(group)
    except ApplyError:
        return True
    return found[0] != mode or (gid is not None and found[1] != gid)


@dataclass(frozen=True)
class EdgeFacts:
    probes: Mapping[str, EdgeProbeFacts]
    tiers: Mapping[str, Tier]
    selection: Selection
    zones: Mapping[str, RenderedZone]
    records: Mapping[str, tuple[str, ...]]  # zone -> the addresses it publishes
    problems: tuple[str, ...]
    files: Mapping[str, ZoneFile] = field(default_factory=dict)  # zone -> its file, for each rendered zone
    unpublished: tuple[str, ...] = ()  # zones no live edge has an address for: not rendered, never written


def _histories_from_json(data: object) -> dict[str, History]:
    if not isinstance(data, Mapping):
        raise ValueError("histories are an object of edges")
    try:
        return {str(h): History(tuple(Probe(float(a), float(s), bool(o)) for a, s, o in p)) for h, p in data.items()}
    except (TypeError, ValueError) as exc:
        raise ValueError(f"a history cannot be read: {exc}") from None


def _histories_to_json(histories: Mapping[str, History]) -> dict[str, list[list[Any]]]:
    return {h: [[p.at, p.seconds, p.ok] for p in history.probes] for h, history in histories.items()}


def _failed_only(errors: Mapping[str, str]) -> dict[str, str]:
    return {h: e for h, e in errors.items() if e}


@dataclass
class NetworkState:
    """What one edge network keeps between rounds: written to the state file, the histories, what the zones
    publish (live set, rotation times, serials, bodies, records), each edge's address and last error, and the
    rotation window the checks read; in memory, what the last round found."""

    histories: Annotated[
        dict[str, History], PlainValidator(_histories_from_json), PlainSerializer(_histories_to_json)
    ] = field(default_factory=dict)
    live: tuple[str, ...] = ()
    changes: tuple[float, ...] = ()
    serials: dict[str, int] = field(default_factory=dict)
    bodies: dict[str, str] = field(default_factory=dict)
    records: dict[str, list[str]] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)  # edge -> the address it last resolved to
    # edge -> why its last probe failed ('' when it passed; only failures are written)
    errors: Annotated[dict[str, str], PlainSerializer(_failed_only)] = field(default_factory=dict)
    per: float = Rotation().per.total_seconds()  # the rotation window (spec.rotation.per), for the checks
    live_count: Annotated[int | None, Runtime] = None  # spec.liveCount, beside the live set in the metrics
    tiers: Annotated[dict[str, str], Runtime] = field(default_factory=dict)  # edge -> its tier at the last round
    # edge -> (mode, comment) from the desired state
    modes: Annotated[dict[str, tuple[str, str]], Runtime] = field(default_factory=dict)
    # zone -> its canary at the last round
    canaries: Annotated[dict[str, dict[str, Any]], Runtime] = field(default_factory=dict)
    canaries_off: Annotated[str, Runtime] = ""  # why no canary was used at the last round
    unpublished: Annotated[tuple[str, ...], Runtime] = ()  # zones held back at the last round: no live address


def saved_networks(version: int, part: Mapping[str, Any]) -> dict[str, NetworkState]:
    """The networks of this capability's part of the state file (``reconciler check`` reads them); a record that
    cannot be read is left out."""
    return read_part(EdgeNetworkCapability, version, part)[0]


class EdgeNetworkCapability(Capability[EdgeNetwork, EdgeFacts, ZoneValue, NetworkState]):
    resource_type = EdgeNetwork
    state_type = NetworkState
    state_version = 2

    def __init__(self, fetcher: HttpFetcher, resolver: Resolver, runner: CommandRunner, clock: Clock) -> None:
        self.fetcher = fetcher
        self.resolver = resolver
        self.applier = ZoneApplier(runner)
        self.clock = clock
        self.files_root: str | None = None

    @classmethod
    def from_context(cls, context: CapabilityContext) -> EdgeNetworkCapability:
        return cls(context.fetcher, context.resolver, context.runner, context.clock)

    @classmethod
    def upgrade_state(cls, version: int, part: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """Version 1 kept every network's record under ``networks``, as today's."""
        networks = part.get("networks") if version == 1 else None
        return networks if isinstance(networks, dict) else None

    def use(self, desired: DesiredState) -> None:
        self.files_root = desired.files_root

    def observe_interval(self, resource: EdgeNetwork) -> timedelta | None:
        return resource.spec.interval

    def observe_timeout(self, resource: EdgeNetwork) -> float | None:
        return resource.spec.timeout.total_seconds() * 3 + 10  # a round takes about one timeout, retries included

    def _path(self, text: str) -> Path:
        path = Path(text)
        return path if path.is_absolute() or self.files_root is None else Path(self.files_root) / path

    def _read(self, text: str | None) -> str | None:
        if text is None:
            return None
        content = read_bytes_if_exists(self._path(text))
        if content is None:
            raise ZoneTemplateError(f"{text} does not exist")
        return content.decode()

    # --- observe ---------------------------------------------------------------------------------------------

    async def observe(self, resource: EdgeNetwork, state: NetworkState) -> Observed[EdgeFacts]:
        spec = resource.spec
        state.per = spec.rotation.per.total_seconds()
        state.live_count = spec.liveCount
        probe = ProbeSpec(
            url=spec.object.url,
            host=spec.object.host,
            sha256=spec.object.sha256,
            md5=spec.object.md5,
            timeout=spec.timeout.total_seconds(),
            verify=spec.object.verifyTls,
        )
        edges = spec.edge_list
        canaries = {str(zone): str(address) for zone, address in spec.canaries.items()}
        hosts = [e.host for e in edges]
        apart = sorted({a for a in canaries.values() if a not in set(hosts)})
        probes, canary_probes = await asyncio.gather(
            probe_all(self.fetcher, self.resolver, hosts, probe),
            probe_canaries(self.fetcher, self.resolver, apart, probe, killer=spec.canaryKiller),
        )
        probes |= canary_probes
        now = self.clock.now()
        judging = Judging(
            good_enough=spec.goodEnough.total_seconds(),
            window=spec.window.total_seconds(),
            live_count=spec.liveCount,
            max_changes=spec.rotation.maxChanges,
            per=spec.rotation.per.total_seconds(),
        )
        tiers: dict[str, Tier] = {}
        for host, found in probes.items():
            history = state.histories.get(host, History()).add(Probe(now, found.seconds, found.ok), limit=spec.history)
            state.histories[host] = history
            tiers[host] = tier(history, judging, now=now)
            if found.address is not None:
                state.addresses[host] = found.address
            state.errors[host] = found.error
        state.tiers = {host: found.value for host, found in tiers.items()}
        state.modes = {e.host: (e.mode, e.comment) for e in edges}
        candidates = [
            Candidate(e.host, e.mode, tiers[e.host], state.histories[e.host].average, state.histories[e.host].answered)
            for e in edges
        ]
        selection = select_live(candidates, state.live, state.changes, judging, now=now)
        failed_canaries = sum(1 for a in set(canaries.values()) if not probes[a].ok)
        averages = {h: history.average for h, history in state.histories.items()}
        per_zone = place_canaries(
            selection.live,
            [str(z.name) for z in spec.zones],
            canaries,
            tiers,
            averages,
            failed_canaries=failed_canaries,
            canary_killer=spec.canaryKiller,
        )
        state.canaries = {
            zone: {"address": address, "tier": tiers[address].value, "used": address in per_zone.get(zone, ())}
            for zone, address in sorted(canaries.items())
        }
        state.canaries_off = (
            f"{failed_canaries} canary probes failed (canaryKiller {spec.canaryKiller}): no canary this round"
            if canaries and failed_canaries >= spec.canaryKiller
            else ""
        )
        zones, records, problems, unpublished = _render_zones(spec, per_zone, state, self._read)
        state.unpublished = unpublished
        output = spec.output
        files = {}
        for name in zones:
            path = Path(output.dir) / f"{name}.zone"
            exists = read_bytes_if_exists(path) is not None
            files[name] = ZoneFile(exists, exists and _permissions_wanted(path, output.mode, output.group))
        facts = EdgeFacts(probes, tiers, selection, zones, records, problems, files, unpublished)
        return Observed(
            facts,
            _summary(resource, facts, state),
            degraded=_degraded(resource, facts),
            details={"timings": _timings(resource, state)},
        )

    # --- plan and apply --------------------------------------------------------------------------------------

    def plan(
        self, resource: EdgeNetwork, facts: EdgeFacts, state: NetworkState, *, now: float
    ) -> Sequence[TargetPlan[ZoneValue]]:
        today = datetime.fromtimestamp(now, UTC).date()
        changes: list[Change[ZoneValue]] = []
        output = resource.spec.output
        for name, rendered in sorted(facts.zones.items()):
            path = str(Path(output.dir) / f"{name}.zone")
            written = state.bodies.get(name)
            file = facts.files.get(name, ZoneFile(exists=False, permissions_wanted=False))
            if written == rendered.body and file.exists:
                if file.permissions_wanted:
                    mode = ZonePermissions(name, path, output.mode, output.group)
                    changes.append(Change(f"{name} permissions", Action.CHANGE, after=mode, member=False))
                continue
            serial = next_serial(state.serials.get(name), today)
            write = ZoneWrite(name, path, serial, rendered.body, rendered.with_serial(serial))
            before = sorted(state.records.get(name, []))
            after = list(facts.records[name])
            changes += [
                Change(f"{name} {a}", Action.ADD, after=ZoneRecord(name, a), member=False)
                for a in after
                if a not in before
            ]
            changes += [
                Change(f"{name} {a}", Action.REMOVE, before=ZoneRecord(name, a), member=False)
                for a in before
                if a not in after
            ]
            before_file = "the zone as last written" if written is not None else None
            changes.append(Change(f"{name} file", Action.CHANGE, before_file, write, member=False))
        live = facts.selection
        # the live set moves with what the zones publish: with a zone written, or when every zone is as it
        # should be already (two edges behind one address)
        if live.live != state.live and (changes or len(facts.zones) == len(resource.spec.zones)):
            moved = LiveSet(live.live, live.changes)
            changes.append(Change("live set", Action.CHANGE, LiveSet(state.live, state.changes), moved, member=False))
        if not changes:
            return []
        return [TargetPlan(resource.KIND, resource.metadata.name, ZONES_TARGET, len(state.live), tuple(changes))]

    async def apply(self, resource: EdgeNetwork, target: TargetPlan[ZoneValue], state: NetworkState) -> None:
        output = resource.spec.output
        writes = [c.after for c in target.changes if isinstance(c.after, ZoneWrite)]
        for write in writes:
            await asyncio.to_thread(
                self.applier.write,
                Path(write.path),
                write.zone,
                write.text,
                check=output.check,
                mode=output.mode,
                group=output.group,
            )
            state.serials[write.zone] = write.serial
            state.bodies[write.zone] = write.body
        for change in target.changes:
            value = change.after if change.after is not None else change.before
            if isinstance(value, ZonePermissions):
                await asyncio.to_thread(self.applier.permit, Path(value.path), value.zone, value.mode, value.group)
            elif isinstance(value, ZoneRecord):
                listed = state.records.setdefault(value.zone, [])
                if change.action is Action.ADD and value.address not in listed:
                    listed.append(value.address)
                elif change.action is Action.REMOVE and value.address in listed:
                    listed.remove(value.address)
            elif isinstance(value, LiveSet):  # the live set and the rotation budget move with what was published
                state.live, state.changes = value.live, value.changes
        if writes and resource.spec.output.afterChange:
            await asyncio.to_thread(self.applier.after_change, resource.spec.output.afterChange)

    async def forget(self, name: str, state: NetworkState | None) -> None:
        return None  # the zone files stay: removing a published zone is the operator's call

    async def close(self, deadline: float) -> None:
        closing = getattr(self.fetcher, "close", None)
        if closing is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(closing(), max(0.1, deadline - asyncio.get_running_loop().time()))

    # --- metrics and routes ------------------------------------------------------------------------------------

    def collectors(self) -> Sequence[Collector]:
        return (EdgeCollector(self),)

    def routes(self) -> Sequence[web.RouteDef]:
        return (
            state_route("GET", "/edges/{name}", self, _network_view, what="EdgeNetwork"),
            state_route("GET", "/edges/{name}/{edge}", self, _edge_view, what="EdgeNetwork"),
        )


def _network_view(name: str, state: NetworkState, request: web.Request) -> dict[str, Any]:
    """A network's live set, rotations, serials, canaries and edges (the old edge_query's filters:
    ``?tier=pass_threshold&mode=force&live=true``)."""
    wanted = {key: request.query[key] for key in ("tier", "mode", "live") if key in request.query}
    edges = {}
    for host, history in sorted(state.histories.items()):
        mode, comment = state.modes.get(host, ("available", ""))
        shown: dict[str, Any] = {
            "tier": state.tiers.get(host),
            "mode": mode,
            "live": host in state.live,
            "last": history.last.seconds if history.last else None,
            "average": history.average if history.probes else None,
            "probes": len(history.probes),
        }
        if comment:
            shown["comment"] = comment
        if state.errors.get(host):
            shown["error"] = state.errors[host]
        if all(str(shown[key]).lower() == value.lower() for key, value in wanted.items()):
            edges[host] = shown
    return {
        "name": name,
        "live": list(state.live),
        "rotations": list(state.changes),
        "serials": state.serials,
        "canaries": state.canaries,
        "canariesOff": state.canaries_off,
        "edges": edges,
    }


def _edge_view(name: str, state: NetworkState, request: web.Request) -> dict[str, Any]:
    """One edge: its tier, mode, error, hourly means and the last 20 probes."""
    host = request.match_info["edge"]
    history = state.histories.get(host)
    if history is None:
        raise NotFoundError(f"no edge {host} in EdgeNetwork {name} on this node")
    mode, comment = state.modes.get(host, ("available", ""))
    return {
        "network": name,
        "edge": host,
        "tier": state.tiers.get(host),
        "mode": mode,
        "comment": comment,
        "live": host in state.live,
        "error": state.errors.get(host, ""),
        "hourly": [
            {"hour": _iso(hour), "average": round(mean, 4), "probes": count} for hour, mean, count in history.hourly()
        ],
        "recent": [{"at": _iso(p.at), "seconds": round(p.seconds, 4), "ok": p.ok} for p in history.probes[-20:]],
    }


class EdgeCollector(Collector):
    """Per edge: the last probe's time, the all-time mean and live membership; per network: live-set changes. Host
    names are label values, never part of a metric's name (the old tool built names from them)."""

    def __init__(self, capability: EdgeNetworkCapability) -> None:
        self.capability = capability

    def collect(self) -> Iterator[Metric]:
        labels = ["network", "edge"]
        last = GaugeMetricFamily(
            "reconciler_edge_probe_seconds", "The last probe's time to the full body.", labels=labels
        )
        mean = GaugeMetricFamily(
            "reconciler_edge_average_seconds", "Mean probe time over the kept history.", labels=labels
        )
        live = GaugeMetricFamily("reconciler_edge_live", "1 while the edge is in the live set.", labels=labels)
        failed = GaugeMetricFamily("reconciler_edge_failed", "1 when the last probe failed.", labels=labels)
        rotations = GaugeMetricFamily(
            "reconciler_edge_rotations", "Live-set changes within the rotation window.", labels=["network"]
        )
        wanted = GaugeMetricFamily(
            "reconciler_edge_live_wanted", "How many edges should be live (spec.liveCount).", labels=["network"]
        )
        held = GaugeMetricFamily(
            "reconciler_edge_zone_unpublished",
            "1 while a zone is not written because no live edge has an address (the file keeps what it had).",
            labels=["network", "zone"],
        )
        for network, state in sorted(self.capability.states.items()):
            for edge, history in sorted(state.histories.items()):
                if history.last is None:
                    continue
                last.add_metric([network, edge], history.last.seconds)
                mean.add_metric([network, edge], history.average)
                live.add_metric([network, edge], 1.0 if edge in state.live else 0.0)
                failed.add_metric([network, edge], 0.0 if history.last.ok else 1.0)
            rotations.add_metric([network], float(len(state.changes)))
            if state.live_count is not None:
                wanted.add_metric([network], float(state.live_count))
            for zone in state.unpublished:
                held.add_metric([network, zone], 1.0)
        yield from (last, mean, live, failed, rotations, wanted, held)


def _timings(resource: EdgeNetwork, state: NetworkState) -> dict[str, dict[str, float]]:
    """Each probed edge's last fetch and windowed mean, in seconds: new at every round, so never committed."""
    timings = {}
    for edge in resource.spec.edge_list:
        history = state.histories.get(edge.host, History())
        if history.last is not None:
            timings[edge.host] = {"last": round(history.last.seconds, 3), "average": round(history.average, 3)}
    return timings


def _summary(resource: EdgeNetwork, facts: EdgeFacts, state: NetworkState) -> dict[str, Any]:
    edges = []
    for edge in resource.spec.edge_list:
        shown: dict[str, Any] = {
            "host": edge.host,
            "tier": facts.tiers.get(edge.host, Tier.PASS).value,
            "live": edge.host in state.live,  # published: what the zone files say, as GET /edges does
            "mode": edge.mode,
        }
        if edge.comment:
            shown["comment"] = edge.comment
        if facts.probes.get(edge.host) is not None and facts.probes[edge.host].error:
            shown["error"] = facts.probes[edge.host].error
        edges.append(shown)
    summary: dict[str, Any] = {"live": list(state.live), "edges": edges}
    if tuple(facts.selection.live) != tuple(state.live):  # chosen, not yet in a zone (first pass, a failed check)
        summary["selected"] = list(facts.selection.live)
    if facts.selection.deferred:
        summary["deferred"] = list(facts.selection.deferred)
    if state.canaries:
        summary["canaries"] = state.canaries
    if state.canaries_off:
        summary["canariesOff"] = state.canaries_off
    if facts.problems:
        summary["problems"] = list(facts.problems)
    if facts.unpublished:
        summary["unpublished"] = list(facts.unpublished)
    return summary


def _render_zones(
    spec: EdgeNetworkSpec,
    per_zone: Mapping[str, Sequence[str]],
    state: NetworkState,
    read: Callable[[str | None], str | None],
) -> tuple[dict[str, RenderedZone], dict[str, tuple[str, ...]], tuple[str, ...], tuple[str, ...]]:
    """Each zone rendered with the addresses of its live edges; the problems met; the zones not rendered
    because none of their live edges has an address (a zone without one is never written)."""
    problems: list[str] = []
    records: dict[str, tuple[str, ...]] = {}
    zones: dict[str, RenderedZone] = {}
    unpublished: list[str] = []
    for zone in spec.zones:
        name = str(zone.name)
        addresses = []
        for host in per_zone[name]:
            address = state.addresses.get(host)
            if address is None:
                problems.append(f"{host} is live but has no address: not published in {name}")
            else:
                addresses.append(address)
        records[name] = tuple(sorted(set(addresses)))
        if not records[name]:  # a zone without an address would replace a working one: it stays as it is
            unpublished.append(name)
            continue
        try:
            zones[name] = render_zone(
                name,
                labels=zone.labels,
                addresses=records[name],
                soa=spec.soa,
                nameservers=spec.nameserver_names,
                glue=spec.glue,
                include=read(zone.include),
                template=read(zone.template),
            )
        except ZoneTemplateError as exc:
            problems.append(str(exc))
    return zones, records, tuple(problems), tuple(unpublished)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _degraded(resource: EdgeNetwork, facts: EdgeFacts) -> tuple[str, str] | None:
    if facts.unpublished:
        zones = ", ".join(facts.unpublished)
        return (
            "NoLiveEdge",
            f"no live edge has an address for {zones}: not written, what the zone files publish stays "
            "(edgemanage wrote nothing either)",
        )
    if facts.problems:
        return "ZoneProblem", "; ".join(facts.problems)
    if facts.selection.short:
        return "ShortLiveSet", f"{len(facts.selection.live)} of {resource.spec.liveCount} edges live"
    return None
