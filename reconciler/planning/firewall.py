"""Firewall plans (pure): from the sets and chains a gateway should have and what the kernel holds, the target
plans the applier carries out, in the order it must: changed sets first (a rule must never name a missing set),
then each family's chains, jump rules and forwarding, then the sets nothing uses any more.

Members are counted by the safety gate (a set losing a third of its members at once is held); chains, jump rules
and forwarding are settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from reconciler.model.observed import ChainFacts, FirewallFacts
from reconciler.planning.plan import Action, Change, Target, TargetPlan

STALE = "(whole set)"


@dataclass(frozen=True, slots=True)
class SetTarget(Target):
    """One of our ipsets; ``stale``: nothing uses it any more (it is destroyed)."""

    set: str
    label: str = ""
    stale: bool = False

    def __str__(self) -> str:
        return f"set {self.set}" + (f" ({self.label})" if self.label else "")


@dataclass(frozen=True, slots=True)
class RulesTarget(Target):
    """One family's chains, jump rules and forwarding."""

    family: int

    def __str__(self) -> str:
        return f"rules ipv{self.family}"


@dataclass(frozen=True, slots=True)
class CutTarget(Target):
    """The tracked connections of one family to addresses no longer allowed."""

    family: int

    def __str__(self) -> str:
        return f"connections ipv{self.family}"


@dataclass(frozen=True, slots=True)
class Ruleset:
    """One of our chains as rendered: what ``iptables-restore --noflush`` reads, and how to recognise it in the
    kernel (its first rule carries ``digest``; it has ``rules`` rules)."""

    table: str
    family: int
    chain: str
    text: str
    digest: str
    rules: int

    def __str__(self) -> str:
        return f"{self.chain} with {self.rules} rules ({self.digest})"

    def matches(self, facts: ChainFacts) -> bool:
        return facts.exists and len(facts.rules) == self.rules and bool(facts.rules) and self.digest in facts.rules[0]


@dataclass(frozen=True, slots=True)
class Jump:
    """The one rule that sends a built-in chain's traffic to ours."""

    table: str
    family: int
    builtin: str
    chain: str

    def __str__(self) -> str:
        return f"one jump {self.builtin} -> {self.chain}"


@dataclass(frozen=True, slots=True)
class Forwarding:
    family: int

    def __str__(self) -> str:
        return f"IPv{self.family} forwarding on"


FirewallValue = str | Ruleset | Jump | Forwarding


def _shown(facts: ChainFacts | None) -> str:
    if facts is None or not facts.exists:
        return "missing"
    return f"{len(facts.rules)} rules, not as rendered"


DELTA_SHARE = 0.25  # a set changed by at most this share of its members is edited in place, not reloaded
DELTA_MIN = 64


def delta_lines(name: str, changes: Sequence[Change[FirewallValue]]) -> str:
    """``ipset restore`` lines that edit a live set: adds first, then deletes. Each line is atomic for its
    member; a payload that starts with ``create`` is a whole set, loaded beside and swapped in instead."""
    adds = [f"add {name} {c.key}\n" for c in changes if c.action is Action.ADD]
    return "".join(adds + [f"del {name} {c.key}\n" for c in changes if c.action is Action.REMOVE])


def plan_firewall(
    kind: str,
    name: str,
    *,
    sets: Mapping[str, frozenset[str]],
    labels: Mapping[str, str] | None = None,
    payloads: Mapping[str, Callable[[Sequence[str]], str]] | None = None,
    cut_from: Mapping[int, str] | None = None,
    allowed_before: Mapping[str, frozenset[str]] | None = None,
    rulesets: Sequence[Ruleset],
    jumps: Sequence[Jump],
    facts: FirewallFacts,
    enable_forwarding: bool,
) -> list[TargetPlan[FirewallValue]]:
    """``sets``: set name -> the members it should have (``labels``: what people call it; ``payloads``: renders
    a set's restore input from its members in order; ``cut_from``: per family, the set holding every allowed
    address: connections to what leaves it are cut, last, once no set allows it any more; ``allowed_before``:
    what each set was last made to hold, so that what left it is cut even when the kernel's copy was flushed by
    hand meanwhile); ``rulesets`` and ``jumps``: every family's chains."""
    targets: list[TargetPlan[FirewallValue]] = []
    ordered: dict[frozenset[str], list[str]] = {}  # sets of a family usually hold the same members: sort once
    same: dict[tuple[frozenset[str], frozenset[str]], list[Change[FirewallValue]]] = {}
    for set_name, wanted in sorted(sets.items()):
        current = facts.members.get(set_name, frozenset())
        difference = wanted ^ current if current else wanted
        if difference not in ordered:
            ordered[difference] = sorted(difference)
        # in key order already, so that TargetPlan need not sort 100,000 changes again; the counting sets have the
        # same changes as their family's set: made once (300,000 changes cost ~0.5 s)
        made = same.get((difference, wanted))
        if made is None:
            made = same[(difference, wanted)] = [
                Change(m, Action.ADD, after=m) if m in wanted else Change(m, Action.REMOVE, before=m)
                for m in ordered[difference]
            ]
        changes: list[Change[FirewallValue]] = list(made)
        shown = (labels or {}).get(set_name, "")
        payload = ""
        if changes and set_name in facts.entries and len(changes) <= max(DELTA_MIN, DELTA_SHARE * len(current)):
            payload = delta_lines(set_name, changes)
        elif changes and (render := (payloads or {}).get(set_name)) is not None:
            payload = render(ordered[difference] if not current else sorted(wanted))
        targets.append(TargetPlan(kind, name, SetTarget(set_name, shown), len(current), tuple(changes), payload))
    for family in sorted({r.family for r in rulesets} | {j.family for j in jumps}):
        targets.append(
            _rules(kind, name, family, rulesets=rulesets, jumps=jumps, facts=facts, enable_forwarding=enable_forwarding)
        )
    for set_name in sorted(set(facts.entries) - set(sets)):
        current = facts.members.get(set_name, frozenset())
        stale: list[Change[FirewallValue]] = [Change(m, Action.REMOVE, before=m) for m in sorted(current)]
        stale.append(Change(STALE, Action.REMOVE, before=set_name, member=False))
        stale_set = SetTarget(set_name, "no longer used", stale=True)
        targets.append(TargetPlan(kind, name, stale_set, len(current), tuple(stale)))
    for family, allowed in sorted((cut_from or {}).items()):
        current = facts.members.get(allowed, frozenset()) | (allowed_before or {}).get(allowed, frozenset())
        gone = sorted(current - sets.get(allowed, frozenset()))
        if gone:  # after every set and rule changed: a packet in between would open the connection again
            cuts: list[Change[FirewallValue]] = [Change(a, Action.REMOVE, before=a, member=False) for a in gone]
            targets.append(TargetPlan(kind, name, CutTarget(family), len(current), tuple(cuts)))
    return targets


def _rules(
    kind: str,
    name: str,
    family: int,
    *,
    rulesets: Sequence[Ruleset],
    jumps: Sequence[Jump],
    facts: FirewallFacts,
    enable_forwarding: bool,
) -> TargetPlan[FirewallValue]:
    changes: list[Change[FirewallValue]] = []
    for ruleset in (r for r in rulesets if r.family == family):
        chain = facts.chains.get(f"{ruleset.table} {family}")
        if chain is None or not ruleset.matches(chain):
            action = Action.CHANGE if chain is not None and chain.exists else Action.ADD
            changes.append(Change(f"{ruleset.table} {ruleset.chain}", action, _shown(chain), ruleset, member=False))
    for jump in (j for j in jumps if j.family == family):
        chain = facts.chains.get(f"{jump.table} {family}")
        count = chain.jumps if chain is not None else 0
        if count != 1:
            action = Action.ADD if count == 0 else Action.CHANGE
            changes.append(Change(f"jump {jump.builtin}", action, f"{count} jump rules", jump, member=False))
    if enable_forwarding and not facts.forwarding.get(family, False):
        changes.append(Change("forwarding", Action.CHANGE, "off", Forwarding(family), member=False))
    payload = "".join(c.after.text for c in changes if isinstance(c.after, Ruleset))
    present = sum(len(chain.rules) for key, chain in facts.chains.items() if key.endswith(f" {family}"))
    return TargetPlan(kind, name, RulesTarget(family), present, tuple(changes), payload)
