"""Egress planning, pure: set members per family and port class, union of entries, grace for addresses that left
an answer, DNS failures, expiry, protected entries kept from memory, wildcards, refused answers, audit mode."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reconciler.model import EgressAllowList, EgressGateway
from reconciler.model.internal_ranges import DEFAULT_RANGES
from reconciler.model.observed import NameFacts, ResolvedAddress
from reconciler.observers.dns import resolve_public
from reconciler.planning.egress import EgressPlan, Memory, PortClass, SetKey, plan_egress
from reconciler.testing import FakeResolver

NOW = 1_800_000_000.0  # 2027-01-15
ANY = PortClass("any")
V4_ANY = SetKey(4, ANY)


def _list(name: str, *entries: dict[str, Any], interval: str = "60s", cap: int = 64) -> EgressAllowList:
    return EgressAllowList.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "EgressAllowList",
            "metadata": {"name": name},
            "spec": {"resolveInterval": interval, "maxAddressesPerDomain": cap, "entries": list(entries)},
        }
    )


def _gateway(lists: list[str] | None = None, action: str = "drop") -> EgressGateway:
    return EgressGateway.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "EgressGateway",
            "metadata": {"name": "gw"},
            "spec": {"allowLists": lists or ["*"], "clients": ["10.88.0.0/24"], "defaultAction": action},
        }
    )


def _answer(name: str, *addresses: str, ttl: int = 30) -> NameFacts:
    return NameFacts(name, tuple(ResolvedAddress(ipaddress.ip_address(a), ttl) for a in addresses))


def _members(plan: EgressPlan, key: SetKey = V4_ANY) -> dict[str, tuple[str, ...]]:
    return {network: tuple(sorted(sources)) for network, sources in plan.sets.get(key, {}).items()}


def test_addresses_networks_and_port_classes() -> None:
    lists = [
        _list(
            "a",
            {"ip": "203.0.113.7"},
            {"cidr": "198.51.100.0/28", "ports": [443], "protocol": "tcp"},
            {"ip": "2001:db8::7", "ports": ["8000-8100"]},
        )
    ]
    plan = plan_egress(_gateway(), lists, {}, Memory(), now=NOW)
    assert _members(plan) == {"203.0.113.7/32": ("a/ip:203.0.113.7",)}
    assert _members(plan, SetKey(4, PortClass("tcp", ("443",)))) == {"198.51.100.0/28": ("a/cidr:198.51.100.0/28",)}
    # 'any' with ports is both tcp and udp
    assert set(_members(plan, SetKey(6, PortClass("tcp", ("8000-8100",))))) == {"2001:db8::7/128"}
    assert set(_members(plan, SetKey(6, PortClass("udp", ("8000-8100",))))) == {"2001:db8::7/128"}


def test_an_address_stays_while_any_entry_allows_it() -> None:
    both = [_list("a", {"ip": "203.0.113.7"}), _list("b", {"domain": "api.partner.example"})]
    answers = {"api.partner.example": _answer("api.partner.example", "203.0.113.7")}
    plan = plan_egress(_gateway(), both, answers, Memory(), now=NOW)
    assert _members(plan) == {"203.0.113.7/32": ("a/ip:203.0.113.7", "b/domain:api.partner.example")}
    only_b = plan_egress(_gateway(), both[1:], answers, plan.memory, now=NOW + 1)
    assert "203.0.113.7/32" in _members(only_b)


def test_addresses_that_leave_an_answer_stay_for_their_grace_then_go() -> None:
    lists = [_list("a", {"domain": "api.partner.example"}, interval="60s")]
    first = plan_egress(
        _gateway(),
        lists,
        {"api.partner.example": _answer("api.partner.example", "203.0.113.1", ttl=300)},
        Memory(),
        now=NOW,
    )
    moved = {"api.partner.example": _answer("api.partner.example", "203.0.113.2")}
    during = plan_egress(_gateway(), lists, moved, first.memory, now=NOW + 299)
    assert set(_members(during)) == {"203.0.113.1/32", "203.0.113.2/32"}  # grace max(TTL 300, interval 60)
    after = plan_egress(_gateway(), lists, moved, during.memory, now=NOW + 301)
    assert set(_members(after)) == {"203.0.113.2/32"}


def test_a_failed_resolution_keeps_the_last_known_addresses() -> None:
    lists = [_list("a", {"domain": "api.partner.example"})]
    first = plan_egress(
        _gateway(), lists, {"api.partner.example": _answer("api.partner.example", "203.0.113.1")}, Memory(), now=NOW
    )
    failed = {"api.partner.example": NameFacts("api.partner.example", error="timed out after 2s")}
    much_later = plan_egress(_gateway(), lists, failed, first.memory, now=NOW + 3600)
    assert set(_members(much_later)) == {"203.0.113.1/32"}
    assert [r.reason for r in much_later.reports] == ["Unresolved"]


def test_expired_wildcard_refused_and_capped_entries_are_reported() -> None:
    lists = [
        _list(
            "a",
            {"ip": "203.0.113.9", "expires": "2027-01-01"},
            {"domain": "*.cdn.partner.example"},
            {"domain": "many.partner.example"},
            cap=2,
        )
    ]
    answers = {"many.partner.example": _answer("many.partner.example", "203.0.113.1", "203.0.113.2", "203.0.113.3")}
    plan = plan_egress(_gateway(), lists, answers, Memory(), now=NOW, refused={"many.partner.example": ("10.1.2.3",)})
    assert set(_members(plan)) == {"203.0.113.1/32", "203.0.113.2/32"}
    reasons = {r.reason: r for r in plan.reports}
    assert set(reasons) == {"Expired", "WildcardNotEnforced", "Capped", "RefusedAnswer"}
    assert "10.1.2.3, an internal address" in reasons["RefusedAnswer"].message


def test_protected_entries_are_kept_when_git_drops_them() -> None:
    kept = [_list("a", {"ip": "203.0.113.5", "protected": True}, {"ip": "203.0.113.6"})]
    first = plan_egress(_gateway(), kept, {}, Memory(), now=NOW)
    dropped = plan_egress(_gateway(), [_list("a")], {}, Memory.from_json(first.memory.as_json()), now=NOW + 60)
    assert set(_members(dropped)) == {"203.0.113.5/32"}
    assert [(r.entry, r.reason) for r in dropped.reports] == [("a/ip:203.0.113.5", "ProtectedKept")]
    assert "a/ip:203.0.113.5" in dropped.memory.protected


def test_the_gateway_selects_lists_and_log_is_audit_mode() -> None:
    lists = [_list("a", {"ip": "203.0.113.1"}), _list("b", {"ip": "203.0.113.2"})]
    plan = plan_egress(_gateway(["b"], action="log"), lists, {}, Memory(), now=NOW)
    assert set(_members(plan)) == {"203.0.113.2/32"}
    assert plan.audit


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(1, 6)), max_size=20))
def test_members_are_exactly_the_union_of_what_entries_allow(entries: list[tuple[str, int]]) -> None:
    """Whatever lists hold which addresses: an address is in the set iff some entry allows it, with every such
    entry as a source."""
    by_list: dict[str, set[str]] = {}
    for name, last in entries:
        by_list.setdefault(name, set()).add(f"203.0.113.{last}")
    lists = [_list(name, *({"ip": ip} for ip in sorted(ips))) for name, ips in by_list.items()]
    plan = plan_egress(_gateway(), lists, {}, Memory(), now=NOW)
    expected: dict[str, set[str]] = {}
    for name, ips in by_list.items():
        for ip in ips:
            expected.setdefault(f"{ip}/32", set()).add(f"{name}/ip:{ip}")
    assert {net: set(sources) for net, sources in _members(plan).items()} == expected


def test_internal_answers_are_dropped_and_reported_before_planning() -> None:
    """A name that answers an internal address (DNS rebinding) keeps only its public answers; one that answers
    only internal addresses counts as unresolved (its last known public addresses stay)."""
    resolver = FakeResolver(
        {"mixed.partner.example": ("203.0.113.4", "10.1.2.3"), "evil.partner.example": ("127.0.0.1",)}
    )
    answers = asyncio.run(resolve_public(resolver, ["mixed.partner.example", "evil.partner.example"], DEFAULT_RANGES))
    assert [str(a.address) for a in answers.facts["mixed.partner.example"].addresses] == ["203.0.113.4"]
    assert answers.refused == {"mixed.partner.example": ("10.1.2.3",), "evil.partner.example": ("127.0.0.1",)}
    assert answers.facts["evil.partner.example"].error == "every answer was an internal address"
    lists = [_list("a", {"domain": "mixed.partner.example"}, {"domain": "evil.partner.example"})]
    plan = plan_egress(_gateway(), lists, answers.facts, Memory(), now=NOW, refused=answers.refused)
    assert set(_members(plan)) == {"203.0.113.4/32"}
    assert sorted(r.reason for r in plan.reports) == ["RefusedAnswer", "RefusedAnswer", "Unresolved"]
