"""The EgressGateway capability: the allow-lists a gateway selects, enforced with our ipsets and chains.

Observing resolves every domain of the selected lists (answers inside internal ranges dropped and reported), works
out the members every set should have (``planning/egress``: grace, expiry, protected entries, caps; with the
clock's ``now`` and the memory of earlier answers) and reads what the kernel holds of ours. Planning compares the
two (``planning/firewall``); applying carries out each target in order: sets swapped in, chains rewritten, one
jump rule each, forwarding, stale sets destroyed, and connections to addresses no longer allowed cut.

The memory of answers (until when each address that left a domain's answer stays) and of protected entries is
each gateway's state, written to the state file, so a restart neither drops an address early nor forgets a
protected entry. Per-destination counters are read from the counting sets at scrape time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from typing import Annotated, Any

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import ConfigDict, PlainSerializer, PlainValidator

from reconciler.appliers.firewall import JUMPS, PREFIX, FirewallApplier, jumps, temporary_name
from reconciler.capabilities.base import Capability, Observed
from reconciler.capabilities.context import CapabilityContext
from reconciler.capabilities.state import Runtime
from reconciler.errors import ReconcilerError
from reconciler.model import DesiredState
from reconciler.model.egress_allow_list import EgressAllowList
from reconciler.model.egress_gateway import EgressGateway
from reconciler.model.internal_ranges import DEFAULT_RANGES, AddressRanges
from reconciler.model.observed import FirewallFacts
from reconciler.observers.dns import Answers, resolve_public
from reconciler.observers.firewall import bare, read_firewall, set_counters
from reconciler.planning.egress import EgressPlan, Memory, PartCache, plan_egress, selected_lists
from reconciler.planning.firewall import (
    CutTarget,
    FirewallValue,
    Forwarding,
    Jump,
    Ruleset,
    RulesTarget,
    SetTarget,
    plan_firewall,
)
from reconciler.planning.plan import Action, Change, TargetPlan
from reconciler.render.firewall import (
    COUNT_IN,
    COUNT_OUT,
    SetSpec,
    counting_set_name,
    desired_sets,
    render_filter,
    render_nat,
    set_lines,
)
from reconciler.system.clock import Clock
from reconciler.system.commands import CommandRunner
from reconciler.system.resolver import Resolver

DEFAULT_INTERVAL = timedelta(seconds=60)
DIRECTIONS = {COUNT_OUT: "OUTPUT", COUNT_IN: "INPUT"}  # the old tool's label values


@dataclass(frozen=True)
class GatewayFacts:
    """What planning a gateway needs: the members every set should have (from the answers) and the kernel."""

    egress: EgressPlan
    answers: Answers
    firewall: FirewallFacts
    families: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class LoadSet(SetTarget):
    """A set to load or edit, with what it should be (its type and counters come from the spec)."""

    spec: SetSpec | None = field(default=None, compare=False)


@dataclass(frozen=True)
class _Rendered:
    sets: dict[str, SetSpec] = field(default_factory=dict)
    rulesets: list[Ruleset] = field(default_factory=list)


def _memory_from_json(data: object) -> Memory:
    if not isinstance(data, Mapping):
        raise ValueError("the memory of answers is an object")
    try:
        return Memory.from_json(data)
    except (AttributeError, TypeError) as exc:
        raise ValueError(f"the memory of answers cannot be read: {exc}") from None


@dataclass
class GatewayState:
    """Written to the state file, the memory of answers and protected entries; in memory, the members last
    planned (for the counters' hostnames) and what each of its sets was last made to hold."""

    __pydantic_config__ = ConfigDict(arbitrary_types_allowed=True)

    memory: Annotated[Memory, PlainValidator(_memory_from_json), PlainSerializer(Memory.as_json)] = field(
        default_factory=Memory
    )
    egress: Annotated[EgressPlan | None, Runtime] = None
    # network -> the names that allow it; worked out at the first scrape after a pass, not on every pass
    named: Annotated[dict[str, str] | None, Runtime] = None
    # set -> the members we last made it hold, whatever happened to it since (a hand flush): what was allowed,
    # for the cut of connections to addresses that are no longer
    made: Annotated[dict[str, frozenset[str]], Runtime] = field(default_factory=dict)

    @property
    def hostnames(self) -> dict[str, str]:
        if self.named is None:
            self.named = _hostnames(self.egress) if self.egress is not None else {}
        return self.named


def _with_spec(target: TargetPlan[FirewallValue], specs: Mapping[str, SetSpec]) -> TargetPlan[FirewallValue]:
    """A set's target plan with the spec it is loaded from (everything the apply needs is in the plan)."""
    key = target.target
    if not isinstance(key, SetTarget) or key.stale or key.set not in specs:
        return target
    return replace(target, target=LoadSet(key.set, key.label, spec=specs[key.set]))


def _families(gateway: EgressGateway) -> tuple[int, ...]:
    return tuple(sorted({client.version for client in gateway.spec.clients}))


def _internal(gateway: EgressGateway) -> AddressRanges:
    ranges = gateway.spec.internalRanges
    return AddressRanges(ranges) if ranges is not None else DEFAULT_RANGES


def _hostnames(plan: EgressPlan) -> dict[str, str]:
    """network -> the destinations that allow it ('api.example.com', '203.0.113.7'), comma-joined."""
    named: dict[str, set[str]] = {}
    for members in plan.sets.values():
        for network, sources in members.items():
            for source in sources:
                named.setdefault(network, set()).add(source.split("/", 1)[1].split(":", 1)[1])
    return {network: ",".join(sorted(names)) for network, names in named.items()}


def render(gateway: EgressGateway, plan: EgressPlan, families: Sequence[int]) -> _Rendered:
    sets = {n: s for n, s in desired_sets(gateway.metadata.name, plan).items() if s.family in families}
    rulesets = [r(gateway, plan, f) for f in families for r in (render_filter, render_nat)]
    return _Rendered(sets, rulesets)


class EgressGatewayCapability(Capability[EgressGateway, GatewayFacts, FirewallValue, GatewayState]):
    resource_type = EgressGateway
    state_type = GatewayState
    state_version = 2

    def __init__(self, runner: CommandRunner, resolver: Resolver, clock: Clock, *, replay: bool = False) -> None:
        self.runner = runner
        self.applier = FirewallApplier(runner)
        self.resolver = resolver
        self.clock = clock
        self.replay = replay  # dry run: a kernel we cannot read is planned against as empty
        self.lists: tuple[EgressAllowList, ...] = ()
        self.parts: PartCache = {}  # each list's static entries, derived once per revision and day
        # set -> members known to be in the kernel: a cache of the one kernel all gateways' sets are in
        self.installed: dict[str, frozenset[str]] = {}
        self.resolve_failures = 0
        self.refused_answers = 0
        self.details: dict[str, dict[str, Any]] = {}
        self.scraped = _destination_metrics([])  # the counters of the scrape in progress, as samples

    @classmethod
    def from_context(cls, context: CapabilityContext) -> EgressGatewayCapability:
        return cls(context.runner, context.resolver, context.clock, replay=context.settings.dry_run)

    @classmethod
    def upgrade_state(cls, version: int, part: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """Version 1 kept every gateway's memory under ``memory``."""
        memory = part.get("memory") if version == 1 else None
        return {name: {"memory": m} for name, m in memory.items()} if isinstance(memory, dict) else None

    def use(self, desired: DesiredState) -> None:
        self.lists = desired.of_kind(EgressAllowList)
        self.parts = {}

    def observe_interval(self, resource: EgressGateway) -> timedelta | None:
        intervals = [lst.spec.resolveInterval for lst in selected_lists(resource, self.lists)]
        return min([*intervals, DEFAULT_INTERVAL])

    # --- observe ---------------------------------------------------------------------------------------------

    async def observe(self, resource: EgressGateway, state: GatewayState) -> Observed[GatewayFacts]:
        lists = selected_lists(resource, self.lists)
        memory = state.memory
        domains = {str(e.domain) for lst in lists for e in lst.spec.entries if e.domain is not None}
        domains |= {str(p["domain"]) for p in memory.protected.values() if p.get("domain")}
        domains = {d for d in domains if not d.startswith("*.")}
        answers = await resolve_public(self.resolver, domains, _internal(resource))
        egress = plan_egress(
            resource, lists, answers.facts, memory, now=self.clock.now(), refused=answers.refused, cache=self.parts
        )
        state.memory, state.egress, state.named = egress.memory, egress, None
        self.resolve_failures += sum(1 for facts in answers.facts.values() if facts.error)
        self.refused_answers += sum(len(v) for v in answers.refused.values())
        families = _families(resource)
        firewall, note = await self._read_kernel(families)
        facts = GatewayFacts(egress, answers, firewall, families)
        summary = self._summary(resource, facts)
        if note:
            summary["kernel"] = note
        return Observed(facts, summary, degraded=self._degraded(resource, facts))

    async def _read_kernel(self, families: tuple[int, ...]) -> tuple[FirewallFacts, str]:
        try:
            facts = await asyncio.to_thread(
                read_firewall, self.runner, prefix=PREFIX, wanted=JUMPS, known=self.installed, families=families
            )
        except ReconcilerError as exc:
            if not self.replay:
                raise
            return FirewallFacts(), f"not readable here ({exc}): planned against nothing installed"
        self.installed = dict(facts.members)
        return facts, ""

    def _degraded(self, resource: EgressGateway, facts: GatewayFacts) -> tuple[str, str] | None:
        if resource.spec.enableForwarding:
            return None
        off = [family for family in facts.families if not facts.firewall.forwarding.get(family, False)]
        if not off:
            return None
        keys = ", ".join({4: "net.ipv4.ip_forward", 6: "net.ipv6.conf.all.forwarding"}[f] for f in off)
        return "ForwardingDisabled", f"{keys} is off: clients' traffic is not forwarded (or set spec.enableForwarding)"

    def _summary(self, resource: EgressGateway, facts: GatewayFacts) -> dict[str, Any]:
        """Per domain its addresses with TTLs and refused answers; per entry what keeps it from being enforced
        as written. Counters change with every packet: they are in /metrics and /egress, not in git."""
        domains: dict[str, Any] = {}
        for domain, found in sorted(facts.answers.facts.items()):
            shown: dict[str, Any] = {
                "addresses": [{"address": str(a.address), "ttl": a.ttl} for a in found.addresses],
            }
            if found.cnames:
                shown["cnames"] = list(found.cnames)
            if found.error:
                shown["error"] = found.error
            if domain in facts.answers.refused:
                shown["refused"] = list(facts.answers.refused[domain])
            domains[domain] = shown
        sizes = {f"{key.port_class} ipv{key.family}": len(m) for key, m in sorted(facts.egress.sets.items())}
        return {
            "defaultAction": resource.spec.defaultAction,
            "sets": sizes,
            "domains": domains,
            "entries": [{"entry": r.entry, "reason": r.reason, "message": r.message} for r in facts.egress.reports],
        }

    # --- plan and apply --------------------------------------------------------------------------------------

    def plan(
        self, resource: EgressGateway, facts: GatewayFacts, state: GatewayState, *, now: float
    ) -> Sequence[TargetPlan[FirewallValue]]:
        rendered = render(resource, facts.egress, facts.families)
        wanted = {name: spec.members for name, spec in rendered.sets.items()}
        targets = plan_firewall(
            resource.KIND,
            resource.metadata.name,
            sets=wanted,
            labels={name: spec.label for name, spec in rendered.sets.items()},
            payloads={
                name: partial(set_lines, spec, name=temporary_name(name)) for name, spec in rendered.sets.items()
            },
            rulesets=rendered.rulesets,
            jumps=jumps(facts.families),
            facts=facts.firewall,
            enable_forwarding=resource.spec.enableForwarding,
            # the out counting set holds every allowed destination of its family: what leaves it is cut
            cut_from={f: counting_set_name(resource.metadata.name, f, COUNT_OUT) for f in facts.families}
            if resource.spec.cutEstablished
            else None,
            allowed_before=state.made,
        )
        return [_with_spec(target, rendered.sets) for target in targets]

    async def apply(self, resource: EgressGateway, target: TargetPlan[FirewallValue], state: GatewayState) -> None:
        key = target.target
        if isinstance(key, SetTarget):
            await asyncio.to_thread(self._apply_set, key, target, state)
        elif isinstance(key, RulesTarget):
            await asyncio.to_thread(self._apply_rules, target)
        elif isinstance(key, CutTarget):
            await asyncio.to_thread(self.applier.cut, key.family, [str(c.before) for c in target.changes])

    def _apply_set(self, key: SetTarget, target: TargetPlan[FirewallValue], state: GatewayState) -> None:
        name = key.set
        removed = {str(c.before) for c in target.changes if c.action is Action.REMOVE and c.member}
        added = {str(c.after) for c in target.changes if c.action is Action.ADD and c.member}
        spec = key.spec if isinstance(key, LoadSet) else None
        if key.stale or spec is None:
            self.applier.destroy_set(name)
            self.installed.pop(name, None)
            state.made.pop(name, None)
        else:
            before = self.installed.get(name)
            members = (before or frozenset()) - removed | added
            if before is not None and target.payload and not target.payload.startswith("create "):
                self.applier.edit_set(target.payload)
            else:
                lines = target.payload or set_lines(spec, sorted(members), name=temporary_name(name))
                self.applier.load_set(spec, lines, exists=before is not None)
            self.installed[name] = state.made[name] = members

    def _apply_rules(self, target: TargetPlan[FirewallValue]) -> None:
        for change in target.changes:
            value = change.after
            if isinstance(value, Ruleset):
                self.applier.restore(value)
        for change in target.changes:
            value = change.after
            if isinstance(value, Jump):
                self.applier.ensure_jump(value)
            elif isinstance(value, Forwarding):
                self.applier.enable_forwarding(value.family)

    async def removal(self, name: str) -> Sequence[Change[Any]]:
        return [Change(item, Action.REMOVE, before=item) for item in await asyncio.to_thread(self.applier.made)]

    async def forget(self, name: str, state: GatewayState | None) -> None:
        await asyncio.to_thread(self.applier.remove)
        self.installed.clear()

    # --- metrics and routes ------------------------------------------------------------------------------

    def _counting_sets(self) -> list[tuple[str, str, Mapping[str, str]]]:
        """(set, direction label, hostnames) of every counting set we installed, taken on the event loop so that
        reading the sets in a thread never iterates what the loop changes."""
        return [
            (name, label, state.hostnames)
            for gateway, state in sorted(self.states.items())
            for family in (4, 6)
            for direction, label in DIRECTIONS.items()
            if (name := counting_set_name(gateway, family, direction)) in self.installed
        ]

    async def _read_counters(self) -> list[tuple[str, str, str, int, int]]:
        """(network, direction, hostname, packets, bytes) for every destination of every gateway, read now from
        the kernel, in a thread: ``ipset list`` takes ~0.1 s per 100,000 members."""
        sets = self._counting_sets()

        def read() -> list[tuple[str, str, str, int, int]]:
            return [
                (network, label, hostnames.get(network, ""), packets, size)
                for name, label, hostnames in sets
                for network, (packets, size) in sorted(set_counters(self.runner, name).items())
            ]

        return await asyncio.to_thread(read)

    async def before_scrape(self) -> None:
        try:
            rows = await self._read_counters()
        except ReconcilerError:  # a kernel that cannot be read shows no counters this scrape
            rows = []
        # the samples are made in a thread too: 400,000 of them (100,000 addresses) take ~0.6 s
        self.scraped = await asyncio.to_thread(_destination_metrics, rows)

    def collectors(self) -> Sequence[Collector]:
        return (EgressCollector(self),)

    def routes(self) -> Sequence[web.RouteDef]:
        async def egress(_: web.Request) -> web.Response:
            rows = await self._read_counters()
            destinations = [
                {"ip": bare(network), "type": label, "hostname": host, "packets": packets, "bytes": size}
                for network, label, host, packets, size in rows
            ]
            return web.json_response({"destinations": destinations})

        return (web.get("/egress", egress),)


def _destination_metrics(rows: list[tuple[str, str, str, int, int]]) -> list[Metric]:
    """The old tool's names, which dashboards query: counters whose names end in _count, not _total."""
    size = Metric("iptables_bytes_count", "Bytes to (OUTPUT) and from (INPUT) a destination.", "counter")
    packets = Metric("iptables_packets_count", "Packets to (OUTPUT) and from (INPUT) a destination.", "counter")
    for network, label, host, count, total in rows:
        labels = {"ip": bare(network), "type": label, "hostname": host}
        size.add_sample("iptables_bytes_count", labels, total)
        packets.add_sample("iptables_packets_count", labels, count)
    return [size, packets]


class EgressCollector(Collector):
    """Per-destination counters read from the kernel at scrape time (by ``before_scrape``, in a thread, so a scrape
    never holds the event loop), and our own egress metrics."""

    def __init__(self, capability: EgressGatewayCapability) -> None:
        self.capability = capability

    def collect(self) -> Iterator[Metric]:
        yield from self.capability.scraped
        members = GaugeMetricFamily(
            "reconciler_egress_set_members", "Members of each of our sets in the kernel.", labels=["set"]
        )
        for name, known in sorted(self.capability.installed.items()):
            members.add_metric([name], len(known))
        failures = CounterMetricFamily("reconciler_egress_resolve_failures", "Domain resolutions that failed.")
        failures.add_metric([], self.capability.resolve_failures)
        refused = CounterMetricFamily(
            "reconciler_egress_refused_answers", "DNS answers dropped as internal addresses (rebinding)."
        )
        refused.add_metric([], self.capability.refused_answers)
        yield from (members, failures, refused)
