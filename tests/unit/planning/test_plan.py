"""Plans: deterministic order and checksum, renderings, and the safety gate's thresholds."""

from __future__ import annotations

import json

import pytest

from reconciler.model.proxy_config import AppSettings, AppTuning, CheckSettings
from reconciler.planning import gate
from reconciler.planning.plan import Action, Change, Plan, TargetPlan, Whole
from reconciler.planning.tcp_proxy import ListenOn, TargetWeight
from reconciler.render.plan import render_json, render_markdown, render_text
from tests.golden import assert_golden


def _target(size: int, removed: int = 0, changed: int = 0, added: int = 0, name: str = "partners") -> TargetPlan[str]:
    changes = [Change(f"r{i}", Action.REMOVE, before=f"203.0.113.{i}") for i in range(removed)]
    changes += [Change(f"c{i}", Action.CHANGE, before="a", after="b") for i in range(changed)]
    changes += [Change(f"a{i}", Action.ADD, after=f"198.51.100.{i}") for i in range(added)]
    return TargetPlan("EgressAllowList", name, Whole("ipset:RECON-partners-v4"), size, tuple(changes))


def test_order_and_checksum_do_not_depend_on_input_order() -> None:
    """The same changes in any order make the same plan and the same checksum."""
    first = Plan("abc", "gw-1", (_target(5, added=2, name="b"), _target(5, removed=1, name="a")))
    second = Plan("abc", "gw-1", (_target(5, removed=1, name="a"), _target(5, added=2, name="b")))
    assert first == second
    assert first.checksum == second.checksum
    assert [t.name for t in first.targets] == ["a", "b"]
    assert Plan("abd", "gw-1", first.targets).checksum != first.checksum


def test_renderings() -> None:
    """Text and Markdown show every change with its sign; JSON carries the checksum."""
    plan = Plan("0123456789abcdef", "gw-1", (_target(3, removed=1, changed=1, added=1),))
    text = render_text(plan)
    assert text.splitlines() == [
        "plan for node gw-1 at 0123456789ab: 3 change(s)",
        "  EgressAllowList/partners ipset:RECON-partners-v4 (3 now)",
        "    + a0: 198.51.100.0",
        "    ~ c0: a -> b",
        "    - r0: 203.0.113.0",
    ]
    markdown = render_markdown(plan)
    assert "| EgressAllowList/partners | ipset:RECON-partners-v4 | - | `r0` | 203.0.113.0 |" in markdown
    assert f"`{plan.checksum[:16]}`" in markdown
    assert json.loads(render_json(plan))["checksum"] == plan.checksum
    assert "No changes." in render_markdown(Plan("x", "gw-1"))


def _proxy_plan() -> Plan:
    changes = (
        Change("listen 127.0.0.1:15400", Action.ADD, after=ListenOn("127.0.0.1", 15400)),
        Change("listen [::1]:15401", Action.REMOVE, before=ListenOn("::1", 15401)),
        Change("target web:80", Action.CHANGE, TargetWeight("web:80", 1), TargetWeight("web:80", 3)),
        Change(
            "settings",
            Action.CHANGE,
            AppTuning(AppSettings(), CheckSettings()),
            AppTuning(AppSettings(retries=4), CheckSettings(send=b"PING", expect=b"PONG")),
            member=False,
        ),
    )
    return Plan("0123456789abcdef", "proxy-1", (TargetPlan("TCPProxy", "apps", Whole("app:apps/web"), 2, changes),))


def test_plan_renderings_match_their_golden_files() -> None:
    """Typed values render through str(); a key that already names the value is not repeated."""
    plan = Plan("0123456789abcdef", "gw-1", (_target(3, removed=1, changed=1, added=1),))
    proxy = _proxy_plan()
    assert_golden("plan.txt", render_text(plan) + "\n\n" + render_text(proxy) + "\n")
    assert_golden("plan.md", render_markdown(plan) + "\n" + render_markdown(proxy))
    assert "+ listen 127.0.0.1:15400\n" in render_text(proxy) + "\n"


@pytest.mark.parametrize(
    ("size", "removed", "changed", "allowed"),
    [
        (20, 6, 0, True),  # 30 %: at the limit
        (20, 7, 0, False),  # 35 %
        (20, 3, 4, False),  # changes count like removals
        (9, 9, 0, True),  # small targets are never gated
        (10, 4, 0, False),  # 10 members is "at least 10"
    ],
)
def test_gate_thresholds(size: int, removed: int, changed: int, allowed: bool) -> None:
    """More than 30 % removed or changed of a target of 10 or more members is refused."""
    assert gate.check(_target(size, removed=removed, changed=changed, added=50)).allowed is allowed


def test_gate_message_says_how_to_proceed() -> None:
    """The refusal names the numbers and both ways forward."""
    decision = gate.check(_target(20, removed=12))
    assert not decision.allowed
    assert "would remove or change 12 of 20 members" in decision.message
    assert "60% > 30%" in decision.message
    assert "--force" in decision.message
    assert "spec.safety.maxChangePercent" in decision.message


def test_gate_can_be_forced_or_raised() -> None:
    """--force and a per-resource limit of 100 % both let a large change through; additions never count."""
    target = _target(20, removed=20)
    assert gate.check(target, forced=True).allowed
    assert gate.check(target, max_percent=100).allowed
    assert gate.check(_target(20, added=100)).allowed
