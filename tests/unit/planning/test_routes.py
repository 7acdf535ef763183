"""Route planning: the public space is exactly the complement of the internal ranges (the old tool's table
missed 172.64.0.0/10 and 172.128.0.0/9), minimal, and the plan changes only what differs."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from reconciler.model.internal_ranges import DEFAULT_RANGES
from reconciler.planning.plan import Action
from reconciler.planning.routes import plan_routes, public_prefixes

INTERNAL = list(DEFAULT_RANGES.networks)


def _minimal(prefixes: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """Nothing to merge: collapsing gives as many prefixes."""
    return len(prefixes) == len(list(ipaddress.collapse_addresses(prefixes)))  # type: ignore[type-var]


def _routed(address: str, prefixes: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    parsed = ipaddress.ip_address(address)
    return any(parsed in p for p in prefixes)


def test_the_ranges_the_old_table_missed_are_routed_and_internal_ones_are_not() -> None:
    public = public_prefixes(4, INTERNAL)
    for address in ("172.64.0.1", "172.200.0.1", "8.8.8.8", "203.0.113.10", "1.1.1.1"):
        assert _routed(address, public), address
    for address in ("10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "127.0.0.1", "100.64.0.1"):
        assert not _routed(address, public), address
    assert _minimal(public)


def test_ipv6_is_global_unicast_minus_exclusions() -> None:
    public = public_prefixes(6, [*INTERNAL, ipaddress.ip_network("2001:db8:1::/48")])
    assert _routed("2001:db8::10", public)
    assert not _routed("2001:db8:1::1", public)
    assert not _routed("fd00::1", public)
    assert not _routed("fe80::1", public)


@given(st.integers(0, 2**32 - 1), st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(8, 32)), max_size=8))
def test_an_address_is_routed_exactly_when_no_kept_off_range_holds_it(
    address: int, holes: list[tuple[int, int]]
) -> None:
    kept_off = [ipaddress.ip_network((base, length), strict=False) for base, length in holes]
    public = public_prefixes(4, kept_off)
    parsed = ipaddress.IPv4Address(address)
    assert (parsed in ipaddress.ip_network("0.0.0.0/0") and not any(parsed in n for n in kept_off)) == any(
        parsed in p for p in public
    )
    assert _minimal(public)


def test_plan_adds_what_is_missing_changes_the_next_hop_and_removes_the_rest() -> None:
    hop = ipaddress.ip_address("10.88.0.1")
    (fresh,) = plan_routes("EgressRoute", "r", hops={4: hop}, kept_off=INTERNAL, installed={})
    assert str(fresh.target) == "routes ipv4"
    assert len(fresh.changes) == len(public_prefixes(4, INTERNAL))
    assert all(c.action is Action.ADD for c in fresh.changes)
    installed = {str(c.after.prefix): "10.88.0.1" for c in fresh.changes if c.after is not None}
    assert plan_routes("EgressRoute", "r", hops={4: hop}, kept_off=INTERNAL, installed=installed)[0].changes == ()
    moved = dict(installed, **{"172.64.0.0/10": "10.88.0.9", "2000::/3": "fd88::1"})
    targets = plan_routes("EgressRoute", "r", hops={4: hop}, kept_off=INTERNAL, installed=moved)
    changes = {(str(t.target), c.key, c.action) for t in targets for c in t.changes}
    assert changes == {("routes ipv4", "172.64.0.0/10", Action.CHANGE), ("routes ipv6", "2000::/3", Action.REMOVE)}
