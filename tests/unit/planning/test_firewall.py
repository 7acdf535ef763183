"""Firewall planning: members added and removed per set, chains rewritten only when they differ from what was
rendered, exactly one jump rule, forwarding only when asked, stale sets last."""

from __future__ import annotations

from typing import Any

from reconciler.model.observed import ChainFacts, FirewallFacts
from reconciler.planning.firewall import STALE, Forwarding, Jump, Ruleset, plan_firewall
from reconciler.planning.plan import Action, TargetPlan

RULES = Ruleset("filter", 4, "RECON-EGRESS", "*filter\n...", "abc123", 3)
JUMP = Jump("filter", 4, "FORWARD", "RECON-EGRESS")


def _plan(facts: FirewallFacts, *, forwarding: bool = False) -> dict[str, list[tuple[str, Action]]]:
    targets = plan_firewall(
        "EgressGateway",
        "gw",
        sets={"RECON-a-4": frozenset({"203.0.113.10/32", "203.0.113.20/32"})},
        rulesets=[RULES],
        jumps=[JUMP],
        facts=facts,
        enable_forwarding=forwarding,
    )
    return {str(t.target).split(" (")[0]: [(c.key, c.action) for c in t.changes] for t in targets}


def test_an_empty_kernel_gets_everything_in_order() -> None:
    planned = _plan(FirewallFacts())
    assert list(planned) == ["set RECON-a-4", "rules ipv4"]
    assert planned["set RECON-a-4"] == [("203.0.113.10/32", Action.ADD), ("203.0.113.20/32", Action.ADD)]
    assert planned["rules ipv4"] == [("filter RECON-EGRESS", Action.ADD), ("jump FORWARD", Action.ADD)]


def test_what_matches_is_left_alone_and_drift_is_planned() -> None:
    rules = ('-m comment --comment "reconciler abc123"', "-j ACCEPT", "-j DROP")
    good = FirewallFacts(
        entries={"RECON-a-4": 2, "RECON-old-4": 1},
        members={"RECON-a-4": frozenset({"203.0.113.10/32", "203.0.113.20/32"}), "RECON-old-4": frozenset({"1/32"})},
        chains={"filter 4": ChainFacts(True, rules, 1)},
        forwarding={4: False},
    )
    planned = _plan(good)
    assert planned["set RECON-a-4"] == []
    assert planned["rules ipv4"] == []
    assert planned["set RECON-old-4"] == [(STALE, Action.REMOVE), ("1/32", Action.REMOVE)]
    assert list(planned)[-1] == "set RECON-old-4"  # after the rules that stopped naming it

    edited = FirewallFacts(
        entries={"RECON-a-4": 2},
        members={"RECON-a-4": frozenset({"203.0.113.10/32", "198.51.100.1/32"})},
        chains={"filter 4": ChainFacts(True, rules[:2], 2)},
        forwarding={4: False},
    )
    planned = _plan(edited, forwarding=True)
    assert planned["set RECON-a-4"] == [("198.51.100.1/32", Action.REMOVE), ("203.0.113.20/32", Action.ADD)]
    assert planned["rules ipv4"] == [
        ("filter RECON-EGRESS", Action.CHANGE),
        ("forwarding", Action.CHANGE),
        ("jump FORWARD", Action.CHANGE),
    ]
    forwarding = plan_firewall(
        "EgressGateway", "gw", sets={}, rulesets=[], jumps=[JUMP], facts=edited, enable_forwarding=True
    )
    assert any(isinstance(c.after, Forwarding) for t in forwarding for c in t.changes)


def test_a_small_change_edits_the_live_set_and_a_large_one_reloads_it() -> None:
    current = frozenset(f"203.0.113.{i}/32" for i in range(200))
    facts = FirewallFacts(entries={"RECON-a-4": 200}, members={"RECON-a-4": current})

    def payload(wanted: frozenset[str]) -> str:
        (target, _rules) = plan_firewall(
            "EgressGateway",
            "gw",
            sets={"RECON-a-4": wanted},
            payloads={"RECON-a-4": lambda members: f"create RECON-a-4-new ({len(members)} members)\n"},
            rulesets=[],
            jumps=[JUMP],
            facts=facts,
            enable_forwarding=False,
        )
        return target.payload

    small = current - {"203.0.113.5/32"} | {"198.51.100.1/32"}
    assert payload(small) == "add RECON-a-4 198.51.100.1/32\ndel RECON-a-4 203.0.113.5/32\n"
    large = frozenset(list(current)[:100])
    assert payload(large) == "create RECON-a-4-new (100 members)\n"
    assert payload(current) == ""


def _keep_only_10(facts: FirewallFacts, **extra: Any) -> list[TargetPlan[Any]]:
    """The plan that leaves 203.0.113.10 alone allowed (its set and the counting set), cutting what else went."""
    only = frozenset({"203.0.113.10/32"})
    return plan_firewall(
        "EgressGateway",
        "gw",
        sets={"RECON-a-4": only, "RECON-out-4": only},
        rulesets=[RULES],
        jumps=[JUMP],
        facts=facts,
        enable_forwarding=False,
        cut_from={4: "RECON-out-4"},
        **extra,
    )


def test_connections_are_cut_last_for_what_left_the_set_of_everything_allowed() -> None:
    facts = FirewallFacts(
        entries={"RECON-a-4": 2, "RECON-out-4": 2},
        members={
            "RECON-a-4": frozenset({"203.0.113.10/32", "203.0.113.20/32"}),
            "RECON-out-4": frozenset({"203.0.113.10/32", "203.0.113.20/32"}),
        },
    )
    targets = _keep_only_10(facts)
    assert str(targets[-1].target) == "connections ipv4"  # after every set and rule: nothing lets it back in between
    assert [(c.key, c.action) for c in targets[-1].changes] == [("203.0.113.20/32", Action.REMOVE)]
    assert not any(c.member for c in targets[-1].changes)


def test_what_was_allowed_before_a_hand_flush_is_still_cut() -> None:
    """The counting set was flushed by hand and is not back yet when 203.0.113.20 leaves the list: its connections
    are cut all the same, from what the set was last made to hold."""
    facts = FirewallFacts(
        entries={"RECON-a-4": 0, "RECON-out-4": 0},
        members={"RECON-a-4": frozenset(), "RECON-out-4": frozenset()},
    )
    made = frozenset({"203.0.113.10/32", "203.0.113.20/32"})
    targets = _keep_only_10(facts, allowed_before={"RECON-a-4": made, "RECON-out-4": made})
    assert str(targets[-1].target) == "connections ipv4"
    assert [c.key for c in targets[-1].changes] == ["203.0.113.20/32"]
