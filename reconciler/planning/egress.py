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


Members = Mapping[str, frozenset[str]]  # network ('203.0.113.7/32') -> the entries ('list/destination') allowing it


@dataclass(frozen=True)
class EgressPlan:
    """Every set's members, whether the gateway only logs (audit), the reports and the memory to keep."""

    sets: Mapping[SetKey, Members]
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


def _host(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> tuple[Family, str]:
    return address.version, f"{address}/{address.max_prefixlen}"


def _today(now: float) -> date:
    return datetime.fromtimestamp(now, UTC).date()


@dataclass
class ListPart:
    """What one allow-list contributes on one day, apart from DNS answers: computed once per list and day (a
    revision's lists never change), because re-deriving 100,000 static entries on every observation is what would
    make a no-change reconcile slow."""

    static: dict[SetKey, dict[str, frozenset[str]]] = field(default_factory=dict)
    domains: list[tuple[str, AllowEntry, list[PortClass]]] = field(default_factory=list)  # (source, entry, classes)
    reports: list[Report] = field(default_factory=list)
    protected: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    present: set[str] = field(default_factory=set)


PartCache = dict[tuple[int, date], tuple[EgressAllowList, ListPart]]


def _text(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """An address as text; IPv4 from its integer, ~6x faster than ipaddress's own str() (100,000 entries)."""
    if address.version == 4:
        n = int(address)
        return f"{n >> 24}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
    return str(address)


def list_part(allow_list: EgressAllowList, today: date) -> ListPart:
    part = ListPart()
    name = allow_list.metadata.name
    classes_of: dict[tuple[str, tuple[str, ...] | None], list[PortClass]] = {}
    keys: dict[tuple[int, PortClass], SetKey] = {}
    for entry in allow_list.spec.entries:
        address = _text(entry.ip) if entry.ip is not None else None
        source = f"{name}/ip:{address}" if address is not None else f"{name}/{entry.destination}"
        part.present.add(source)
        if entry.expires is not None and entry.expires < today:
            part.reports.append(Report(source, "Expired", f"expired on {entry.expires.isoformat()}: not enforced"))
            continue
        if entry.protected:
            part.protected[source] = entry.model_dump(mode="json")
        shape = (entry.protocol, tuple(str(p) for p in entry.ports) if entry.ports else None)
        classes = classes_of.get(shape)
        if classes is None:
            classes = classes_of[shape] = port_classes(entry)
        if entry.domain is not None:
            domain = str(entry.domain)
            if domain.startswith("*."):
                message = f"{domain} cannot be resolved ahead of time: not enforced"
                part.reports.append(Report(source, "WildcardNotEnforced", message))
            else:
                part.domains.append((source, entry, classes))
            continue
        family: int
        if entry.cidr is not None:
            family, network = entry.cidr.version, str(entry.cidr)
        else:
            assert entry.ip is not None
            family, network = entry.ip.version, f"{address}/{entry.ip.max_prefixlen}"
        for port_class in classes:
            key = keys.get((family, port_class))
            if key is None:
                key = keys[(family, port_class)] = SetKey(family, port_class)
            nets = part.static.setdefault(key, {})
            known = nets.get(network)
            nets[network] = frozenset((source,)) if known is None else known | {source}
    return part


def _part(allow_list: EgressAllowList, today: date, cache: PartCache | None) -> ListPart:
    if cache is None:
        return list_part(allow_list, today)
    key = (id(allow_list), today)
    hit = cache.get(key)
    if hit is not None and hit[0] is allow_list:  # the id of a list that is gone may be reused
        return hit[1]
    part = list_part(allow_list, today)
    cache[key] = (allow_list, part)
    return part


def plan_egress(
    gateway: EgressGateway,
    lists: Iterable[EgressAllowList],
    answers: Mapping[str, NameFacts],
    memory: Memory,
    *,
    now: float,
    refused: Mapping[str, tuple[str, ...]] | None = None,
    cache: PartCache | None = None,
) -> EgressPlan:
    """``answers``: domain -> what the observer resolved (internal addresses already dropped, listed in
    ``refused``: domain -> the dropped addresses). ``cache``: kept by the caller between calls, so that each
    list's static entries are derived once."""
    members: dict[SetKey, dict[str, frozenset[str]]] = {}
    reports: list[Report] = []
    seen: dict[str, float] = {}
    protected: dict[str, Mapping[str, Any]] = {}
    today = _today(now)
    present: set[str] = set()
    remembered = _by_prefix(memory.seen)

    def allow(key: SetKey, network: str, source: str) -> None:
        nets = members.setdefault(key, {})
        known = nets.get(network)
        nets[network] = frozenset((source,)) if known is None else known | {source}

    def merge(static: Mapping[SetKey, Mapping[str, frozenset[str]]]) -> None:
        for key, nets in static.items():
            if key not in members:
                members[key] = dict(nets)  # one list: a copy at C speed
                continue
            target = members[key]
            for network, sources in nets.items():
                known = target.get(network)
                target[network] = sources if known is None else known | sources

    def resolve(source: str, entry: AllowEntry, classes: list[PortClass], resolve_interval: float, cap: int) -> None:
        domain = str(entry.domain)
        facts = answers.get(domain)
        if facts is not None and len(facts.addresses) > cap:
            reports.append(
                Report(
                    source, "Capped", f"{domain} answered {len(facts.addresses)} addresses; the first {cap} are kept"
                )
            )
            facts = NameFacts(facts.name, facts.addresses[:cap], facts.cnames, facts.error)
        prefix = f"{source.split('/', 1)[0]}/{domain}|"
        earlier = remembered.get(prefix, ())
        for address in _addresses(prefix, facts, earlier, now=now, resolve_interval=resolve_interval, seen=seen):
            family, network = _host(ipaddress.ip_address(address))
            for port_class in classes:
                allow(SetKey(family, port_class), network, source)
        if facts is not None and facts.error:
            reports.append(Report(source, "Unresolved", f"{facts.error}; the last known addresses stay"))
        for dropped in (refused or {}).get(domain, ()):
            reports.append(
                Report(source, "RefusedAnswer", f"{domain} answered {dropped}, an internal address: refused")
            )

    def enforce(part: ListPart, resolve_interval: float, cap: int) -> None:
        merge(part.static)
        reports.extend(part.reports)
        protected.update(part.protected)
        for source, entry, classes in part.domains:
            resolve(source, entry, classes, resolve_interval, cap)

    for allow_list in selected_lists(gateway, lists):
        part = _part(allow_list, today, cache)
        present |= part.present
        enforce(part, allow_list.spec.resolveInterval.total_seconds(), allow_list.spec.maxAddressesPerDomain)
    for source, kept_entry in sorted(memory.protected.items()):
        if source in present:
            continue
        list_name = source.split("/", 1)[0]
        reports.append(Report(source, "ProtectedKept", "a protected entry was removed from git: it is still enforced"))
        kept = EgressAllowList.model_validate(
            {
                "apiVersion": "reconciler/v1",
                "kind": "EgressAllowList",
                "metadata": {"name": list_name},
                "spec": {"entries": [kept_entry]},
            }
        )
        enforce(list_part(kept, today), 60.0, 64)
    audit = gateway.spec.defaultAction == "log"
    return EgressPlan({key: members[key] for key in sorted(members)}, audit, tuple(reports), Memory(seen, protected))


def _by_prefix(seen: Mapping[str, float]) -> dict[str, list[tuple[str, float]]]:
    """Remembered addresses grouped by entry ('list/domain|' -> [(address, keep until)]): looked up per domain,
    not scanned per domain (10,000 domains would make that quadratic)."""
    grouped: dict[str, list[tuple[str, float]]] = {}
    for key, until in seen.items():
        prefix, _, address = key.rpartition("|")
        grouped.setdefault(prefix + "|", []).append((address, until))
    return grouped


def _addresses(
    prefix: str,
    facts: NameFacts | None,
    remembered: Iterable[tuple[str, float]],
    *,
    now: float,
    resolve_interval: float,
    seen: dict[str, float],
) -> list[str]:
    """The addresses a domain entry (``prefix``: 'list/domain|') allows now: the current answer, and earlier ones
    still within their grace. Records in ``seen`` until when each is kept."""
    current: set[str] = set()
    if facts is not None and not facts.error:
        for answer in facts.addresses:
            address = str(answer.address)
            current.add(address)
            seen[prefix + address] = now + max(float(answer.ttl), resolve_interval)
    kept = set(current)
    for address, until in remembered:
        if address in current:
            continue
        if facts is None or facts.error:
            seen[prefix + address] = max(until, now + resolve_interval)  # no answer to go by: keep what was known
            kept.add(address)
        elif until > now:
            seen[prefix + address] = until  # left the answer: kept until its grace is over
            kept.add(address)
    return sorted(kept)
