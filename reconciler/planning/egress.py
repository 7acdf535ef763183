"""Egress planning (pure): from allow-lists, a gateway, DNS answers, what was remembered and ``now``, the exact
members of every set the gateway enforces, and the memory to keep for next time.

- A set is one address family and one *port class* (protocol and ports): ``any`` with no ports, ``tcp 443``, ...
  An address is in a class's set while any entry of that class allows it (union: one entry leaving never breaks
  another that allows the same address).
- Addresses that leave a domain's answer stay for a grace period, max(TTL, resolveInterval) from when they were
  last seen, then go; a failed resolution keeps what the last good answer gave (a DNS outage never empties a set).
- Entries past ``expires`` are not enforced (and reported). Protected entries that disappear from git are still
  enforced, from memory, and reported. Wildcard domains cannot be resolved ahead of time: reported, not enforced.
- Answers inside internal ranges were dropped by the observer (DNS rebinding); they are reported here too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from reconciler.model.egress_allow_list import AllowEntry, EgressAllowList
from reconciler.model.egress_gateway import ALL_LISTS, EgressGateway
from reconciler.model.observed import NameFacts

Family = int  # 4 or 6


@dataclass(frozen=True, slots=True, order=True)
class PortClass:
    """What a set's rule matches besides the destination: a protocol and ports (none: every port)."""

    protocol: str  # tcp | udp | any
    ports: tuple[str, ...] = ()  # '443', '8000-8100', in the entry's order

    def __str__(self) -> str:
        return self.protocol + (f" {','.join(self.ports)}" if self.ports else "")


@dataclass(frozen=True, slots=True, order=True)
class SetKey:
    family: Family
    port_class: PortClass


@dataclass(frozen=True, slots=True)
class Member:
    """One address or network in a set, and which entries (``list/destination``) put it there."""

    network: str  # hash:net member: '203.0.113.7/32' or '198.51.100.0/28'
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Report:
    """Something an operator should know about one entry (status shows these)."""

    entry: str  # list/destination
    reason: str  # Expired | ProtectedKept | WildcardNotEnforced | RefusedAnswer | Unresolved | Capped
    message: str


@dataclass(frozen=True)
class Memory:
    """What planning keeps between reconciles (the capability's part of the state file)."""

    seen: Mapping[str, float] = field(default_factory=dict)  # 'list/domain|address' -> keep until (epoch s)
    protected: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # 'list/destination' -> entry JSON

    def as_json(self) -> dict[str, Any]:
        return {"seen": dict(sorted(self.seen.items())), "protected": dict(sorted(self.protected.items()))}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Memory:
        seen = {str(k): float(v) for k, v in dict(data.get("seen", {})).items()}
        protected = {str(k): dict(v) for k, v in dict(data.get("protected", {})).items()}
        return cls(seen, protected)


@dataclass(frozen=True)
class EgressPlan:
    """Every set's members, whether the gateway only logs (audit), the reports and the memory to keep."""

    sets: Mapping[SetKey, tuple[Member, ...]]
    audit: bool
    reports: tuple[Report, ...]
    memory: Memory


def selected_lists(gateway: EgressGateway, lists: Iterable[EgressAllowList]) -> list[EgressAllowList]:
    wanted = gateway.spec.allowLists
    return sorted((lst for lst in lists if ALL_LISTS in wanted or lst.metadata.name in wanted), key=_name)


def _name(allow_list: EgressAllowList) -> str:
    return allow_list.metadata.name


def port_classes(entry: AllowEntry) -> list[PortClass]:
    """``protocol: any`` with ports is both tcp and udp (a port needs a protocol to be matched)."""
    if not entry.ports:
        return [PortClass(entry.protocol)]
    ports = tuple(str(p) for p in entry.ports)
    protocols = ("tcp", "udp") if entry.protocol == "any" else (entry.protocol,)
    return [PortClass(protocol, ports) for protocol in protocols]


def _network(text: str) -> tuple[Family, str]:
    network = ipaddress.ip_network(text, strict=True)
    return network.version, str(network)


def _today(now: float) -> date:
    return datetime.fromtimestamp(now, UTC).date()


def plan_egress(
    gateway: EgressGateway,
    lists: Iterable[EgressAllowList],
    answers: Mapping[str, NameFacts],
    memory: Memory,
    *,
    now: float,
    refused: Mapping[str, tuple[str, ...]] | None = None,
) -> EgressPlan:
    """``answers``: domain -> what the observer resolved (internal addresses already dropped, listed in
    ``refused``: domain -> the dropped addresses)."""
    members: dict[SetKey, dict[str, set[str]]] = {}
    reports: list[Report] = []
    seen: dict[str, float] = {}
    protected: dict[str, Mapping[str, Any]] = {}
    today = _today(now)
    present: set[str] = set()

    def allow(key: SetKey, network: str, source: str) -> None:
        members.setdefault(key, {}).setdefault(network, set()).add(source)

    def enforce(list_name: str, entry: AllowEntry, resolve_interval: float, cap: int) -> None:
        source = f"{list_name}/{entry.destination}"
        if entry.expires is not None and entry.expires < today:
            reports.append(Report(source, "Expired", f"expired on {entry.expires.isoformat()}: not enforced"))
            return
        if entry.protected:
            protected[source] = entry.model_dump(mode="json")
        classes = port_classes(entry)
        if entry.ip is not None or entry.cidr is not None:
            family, network = _network(str(entry.cidr if entry.cidr is not None else entry.ip))
            for port_class in classes:
                allow(SetKey(family, port_class), network, source)
            return
        domain = str(entry.domain)
        if domain.startswith("*."):
            reports.append(
                Report(source, "WildcardNotEnforced", f"{domain} cannot be resolved ahead of time: not enforced")
            )
            return
        facts = answers.get(domain)
        if facts is not None and len(facts.addresses) > cap:
            reports.append(
                Report(
                    source, "Capped", f"{domain} answered {len(facts.addresses)} addresses; the first {cap} are kept"
                )
            )
            facts = NameFacts(facts.name, facts.addresses[:cap], facts.cnames, facts.error)
        prefix = f"{list_name}/{domain}|"
        for address in _addresses(prefix, facts, memory, now=now, resolve_interval=resolve_interval, seen=seen):
            family, network = _network(address)
            for port_class in classes:
                allow(SetKey(family, port_class), network, source)
        if facts is not None and facts.error:
            reports.append(Report(source, "Unresolved", f"{facts.error}; the last known addresses stay"))
        for dropped in (refused or {}).get(domain, ()):
            reports.append(
                Report(source, "RefusedAnswer", f"{domain} answered {dropped}, an internal address: refused")
            )

    for allow_list in selected_lists(gateway, lists):
        interval = allow_list.spec.resolveInterval.total_seconds()
        for entry in allow_list.spec.entries:
            present.add(f"{allow_list.metadata.name}/{entry.destination}")
            enforce(allow_list.metadata.name, entry, interval, allow_list.spec.maxAddressesPerDomain)
    for source, remembered in sorted(memory.protected.items()):
        if source in present:
            continue
        list_name = source.split("/", 1)[0]
        entry = AllowEntry.model_validate(remembered)
        reports.append(Report(source, "ProtectedKept", "a protected entry was removed from git: it is still enforced"))
        enforce(list_name, entry, 60.0, 64)
    sets = {
        key: tuple(Member(net, tuple(sorted(sources))) for net, sources in sorted(nets.items(), key=_by_address))
        for key, nets in sorted(members.items())
    }
    audit = gateway.spec.defaultAction == "log"
    return EgressPlan(sets, audit, tuple(reports), Memory(seen, protected))


def _by_address(item: tuple[str, set[str]]) -> tuple[int, int, int]:
    network = ipaddress.ip_network(item[0])
    return network.version, int(network.network_address), network.prefixlen


def _addresses(
    prefix: str, facts: NameFacts | None, memory: Memory, *, now: float, resolve_interval: float, seen: dict[str, float]
) -> list[str]:
    """The addresses a domain entry (``prefix``: 'list/domain|') allows now: the current answer, and earlier ones
    still within their grace. Records in ``seen`` until when each is kept."""
    current = set()
    if facts is not None and not facts.error:
        for answer in facts.addresses:
            address = str(answer.address)
            current.add(address)
            seen[prefix + address] = now + max(float(answer.ttl), resolve_interval)
    for key, until in memory.seen.items():
        if not key.startswith(prefix):
            continue
        address = key[len(prefix) :]
        if address in current:
            continue
        if facts is None or facts.error:
            seen[key] = max(until, now + resolve_interval)  # no answer to go by: keep what was known
        elif until > now:
            seen[key] = until  # left the answer: kept until its grace is over
    return sorted({key[len(prefix) :] for key in seen if key.startswith(prefix)})
