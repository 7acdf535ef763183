"""The firewall applier against the real kernel, in a network namespace this test creates: applied twice with
nothing duplicated, drift repaired (a deleted jump rule, a flushed set), a changed plan swapped in, and removal
that takes everything of ours and nothing else."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.appliers.firewall import FirewallApplier, FirewallPayload
from reconciler.model import EgressAllowList, EgressGateway
from reconciler.planning.egress import Memory, plan_egress
from reconciler.render.firewall import render_filter, render_nat, render_sets
from reconciler.system.commands import NamespaceRunner, SubprocessRunner
from tests.conftest import require_root

pytestmark = pytest.mark.integration


@pytest.fixture
def namespace() -> Iterator[str]:
    require_root("ip", "ipset", "iptables-restore")
    name = f"recon-fw-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def _in(namespace: str, *argv: str) -> str:
    done = subprocess.run(["ip", "netns", "exec", namespace, *argv], capture_output=True, text=True, check=True)
    return done.stdout


def _state(namespace: str) -> tuple[str, str]:
    rules = "\n".join(line for line in _in(namespace, "iptables-save").splitlines() if not line.startswith("#"))
    rules = "\n".join(line.split(" [", 1)[0] if line.startswith(":") else line for line in rules.splitlines())
    # a swapped-in set has a new hash seed; what matters is what is in it
    sets = re.sub(r" initval 0x[0-9a-f]+", "", _in(namespace, "ipset", "save"))
    return rules, sets


def _payloads(*ips: str) -> list[FirewallPayload]:
    gateway = EgressGateway.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "EgressGateway",
            "metadata": {"name": "gw"},
            "spec": {"clients": ["10.88.0.0/24", "fd00:88::/64"], "masquerade": True},
        }
    )
    entries: list[dict[str, Any]] = [{"ip": ip} for ip in ips] + [{"ip": "2001:db8::10"}]
    allow = EgressAllowList.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "EgressAllowList",
            "metadata": {"name": "a"},
            "spec": {"entries": entries},
        }
    )
    plan = plan_egress(gateway, [allow], {}, Memory(), now=1_800_000_000.0)
    return [
        FirewallPayload(f, render_sets("gw", plan, f), render_filter(gateway, plan, f), render_nat(gateway, plan, f))
        for f in (4, 6)
    ]


def test_apply_repair_change_and_remove(namespace: str) -> None:
    _in(namespace, "iptables", "-A", "FORWARD", "-s", "192.0.2.99", "-j", "ACCEPT")
    _in(namespace, "ipset", "create", "unrelated", "hash:ip")
    applier = FirewallApplier(NamespaceRunner(SubprocessRunner(), namespace))

    applier.apply(_payloads("203.0.113.10"))
    first = _state(namespace)
    assert "-A FORWARD -j RECON-EGRESS" in first[0]
    assert "-A POSTROUTING -j RECON-EGRESS-NAT" in first[0]
    assert "203.0.113.10" in first[1]
    [v4_set] = [n for n in applier.our_sets() if n.endswith("-4")]
    _in(namespace, "ipset", "-exist", "add", v4_set, "203.0.113.10", "packets", "5", "bytes", "500")
    counted = _state(namespace)
    applier.apply(_payloads("203.0.113.10"))
    assert _state(namespace) == counted  # idempotent: no duplicate rule or member, and the counters are kept
    assert "203.0.113.10 packets 5 bytes 500" in counted[1]

    _in(namespace, "iptables", "-D", "FORWARD", "-j", "RECON-EGRESS")
    _in(namespace, "ipset", "flush", v4_set)
    applier.apply(_payloads("203.0.113.10"))
    assert _state(namespace) == first  # drift repaired

    applier.apply(_payloads("203.0.113.20"))
    changed = _state(namespace)
    assert "203.0.113.20" in changed[1]
    assert "203.0.113.10" not in changed[1]
    assert not [n for n in applier.our_sets() if n.endswith("-new")]

    applier.remove()
    rules, sets = _state(namespace)
    assert "RECON-" not in rules
    assert "RECON-" not in sets
    assert "-A FORWARD -s 192.0.2.99/32 -j ACCEPT" in rules
    assert "create unrelated hash:ip" in sets
