"""Helpers for the egress tests that drive the gateway capability in-process against a namespace's kernel."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from typing import Any

from reconciler.capabilities.egress_gateway import EgressGatewayCapability
from reconciler.model import DesiredState, EgressAllowList, EgressGateway
from reconciler.planning.plan import TargetPlan
from reconciler.testing import Driven

NOW = 1_800_000_000.0


def gateway(name: str = "gw", **spec: Any) -> EgressGateway:
    body = {"clients": ["10.88.0.0/24", "fd00:88::/64"], "masquerade": True, **spec}
    return EgressGateway.model_validate(
        {"apiVersion": "reconciler/v1", "kind": "EgressGateway", "metadata": {"name": name}, "spec": body}
    )


def allow_list(*entries: dict[str, Any], name: str = "a", **spec: Any) -> EgressAllowList:
    return EgressAllowList.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "EgressAllowList",
            "metadata": {"name": name},
            "spec": {"entries": list(entries), **spec},
        }
    )


def desired(*lists: EgressAllowList) -> DesiredState:
    return DesiredState({"EgressAllowList": {lst.metadata.name: lst for lst in lists}})


async def converge(capability: Driven[EgressGatewayCapability], resource: EgressGateway) -> list[TargetPlan[Any]]:
    """One pass as the agent runs it (observe, plan, apply the targets with changes); the targets applied."""
    return [t for t in await capability.cycle(resource, now=NOW) if t.changes]


def run_in(namespace: str, *argv: str) -> str:
    done = subprocess.run(["ip", "netns", "exec", namespace, *argv], capture_output=True, text=True, check=True)
    return done.stdout


def kernel_state(namespace: str, families: Sequence[int] = (4, 6)) -> str:
    """iptables-save and ipset save, counters aside (a swapped-in set also has a new hash seed)."""
    parts = []
    for family in families:
        saved = run_in(namespace, "iptables-save" if family == 4 else "ip6tables-save")
        lines = [line for line in saved.splitlines() if not line.startswith("#")]
        parts.append("\n".join(line.split(" [", 1)[0] if line.startswith(":") else line for line in lines))
    sets = re.sub(r" initval 0x[0-9a-f]+", "", run_in(namespace, "ipset", "save"))
    parts.append("\n".join(sorted(re.sub(r" packets \d+ bytes \d+", "", sets).splitlines())))  # hash order varies
    return "\n".join(parts)
