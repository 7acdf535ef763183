"""Route planning (pure): the public address space as a minimal prefix list, and the route changes that make a
client's table send it via the gateway.

The public space is everything outside the internal ranges and the route's ``exclude``: the complement within
0.0.0.0/0 for IPv4 and within 2000::/3 (global unicast) for IPv6. It is computed, never a table typed in: the old
tool's table missed 172.64.0.0/10 and 172.128.0.0/9, between 172.16.0.0/12 and the next internal range.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from reconciler.model.values import IPAddress, IPNetwork
from reconciler.planning.plan import Action, Change, Target, TargetPlan

UNIVERSE: Mapping[int, IPNetwork] = {4: ipaddress.ip_network("0.0.0.0/0"), 6: ipaddress.ip_network("2000::/3")}


@dataclass(frozen=True, slots=True)
class RoutesTarget(Target):
    """Our routes of one address family."""

    family: int

    def __str__(self) -> str:
        return f"routes ipv{self.family}"


def public_prefixes(family: int, kept_off: Iterable[IPNetwork]) -> list[IPNetwork]:
    """The fewest prefixes that cover ``UNIVERSE[family]`` minus every network of ``kept_off``."""
    # Integers, not ipaddress objects: one address family at a time, without the union type's friction.
    bits = UNIVERSE[family].max_prefixlen
    holes = sorted((int(n.network_address), int(n.broadcast_address)) for n in kept_off if n.version == family)
    start, end = int(UNIVERSE[family].network_address), int(UNIVERSE[family].broadcast_address)
    free: list[tuple[int, int]] = []
    cursor = start
    for low, high in holes:
        if high < cursor or low > end:
            continue
        if low > cursor:
            free.append((cursor, low - 1))
        cursor = max(cursor, high + 1)
    if cursor <= end:
        free.append((cursor, end))
    return [net for low, high in free for net in _cover(low, high, bits, family)]


def _cover(low: int, high: int, bits: int, family: int) -> list[IPNetwork]:
    """The fewest aligned prefixes covering [low, high]."""
    found: list[IPNetwork] = []
    while low <= high:
        size = (low & -low).bit_length() - 1 if low else bits  # the largest block aligned at low
        while low + (1 << size) - 1 > high:
            size -= 1
        found.append(
            ipaddress.ip_network((low, bits - size)) if family == 4 else ipaddress.IPv6Network((low, bits - size))
        )
        low += 1 << size
    return found


@dataclass(frozen=True, slots=True, order=True)
class Route:
    prefix: str
    via: str

    def __str__(self) -> str:
        return f"{self.prefix} via {self.via}"


def plan_routes(
    kind: str,
    name: str,
    *,
    hops: Mapping[int, IPAddress],
    kept_off: Iterable[IPNetwork],
    installed: Mapping[str, str],
) -> list[TargetPlan[Route]]:
    """Per family with a next hop: routes added, changed (another next hop) and removed; ``installed``: our
    routes in the kernel, prefix -> next hop. Our routes of a family with no next hop any more are removed."""
    kept = list(kept_off)
    targets = []
    for family in (4, 6):
        hop = hops.get(family)
        wanted = {str(p): str(hop) for p in public_prefixes(family, kept)} if hop is not None else {}
        current = {p: v for p, v in installed.items() if ipaddress.ip_network(p).version == family}
        if not wanted and not current:
            continue
        changes: list[Change[Route]] = []
        for prefix, via in sorted(wanted.items()):
            if prefix not in current:
                changes.append(Change(prefix, Action.ADD, after=Route(prefix, via)))
            elif current[prefix] != via:
                changes.append(Change(prefix, Action.CHANGE, Route(prefix, current[prefix]), Route(prefix, via)))
        changes += [Change(p, Action.REMOVE, before=Route(p, v)) for p, v in sorted(current.items()) if p not in wanted]
        targets.append(TargetPlan(kind, name, RoutesTarget(family), len(current), tuple(changes)))
    return targets
