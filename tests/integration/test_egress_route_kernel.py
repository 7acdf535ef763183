"""The route capability against the real kernel, in a namespace this test creates: routes installed via the
gateway, a hand-deleted and a hand-changed route put back, a next-hop change applied, someone else's route left
alone, and removal taking exactly ours."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.capabilities.egress_route import EgressRouteCapability
from reconciler.model import EgressRoute
from reconciler.planning.plan import TargetPlan
from reconciler.system.routes import NetlinkRouteTable
from reconciler.testing import Driven
from tests.conftest import require_root

pytestmark = pytest.mark.integration


@pytest.fixture
def namespace() -> Iterator[str]:
    require_root("ip")
    name = f"recon-rt-{os.getpid()}"
    peer = f"recon-rp-{os.getpid()}"
    for created in (name, peer):
        subprocess.run(["ip", "netns", "add", created], check=True)
    try:
        subprocess.run(
            ["ip", "link", "add", "c0", "netns", name, "type", "veth", "peer", "name", "g0", "netns", peer], check=True
        )
        for command in (
            ["addr", "add", "10.88.0.2/24", "dev", "c0"],
            ["addr", "add", "fd88::2/64", "dev", "c0", "nodad"],
            ["link", "set", "c0", "up"],
        ):
            subprocess.run(["ip", "-n", name, *command], check=True)
        subprocess.run(["ip", "-n", peer, "link", "set", "g0", "up"], check=True)
        yield name
    finally:
        for created in (name, peer):
            subprocess.run(["ip", "netns", "delete", created], check=False)


def _route(gateway: str = "10.88.0.1") -> EgressRoute:
    return EgressRoute.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "EgressRoute",
            "metadata": {"name": "via-gw"},
            "spec": {"gateway": gateway, "gateway6": "fd88::1", "exclude": ["198.51.100.0/24"]},
        }
    )


async def _converge(capability: Driven[EgressRouteCapability], resource: EgressRoute) -> list[TargetPlan[Any]]:
    observed = await capability.observe(resource)
    targets = [t for t in capability.plan(resource, observed.facts, now=0.0) if t.changes]
    for target in targets:
        await capability.apply(resource, target)
    return targets


def _via(namespace: str, address: str) -> str:
    argv = ["ip", "-n", namespace, "route", "get", address]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    fields = done.stdout.split()
    return fields[fields.index("via") + 1] if "via" in fields else ""


def test_routes_are_installed_repaired_and_removed(namespace: str) -> None:
    subprocess.run(["ip", "-n", namespace, "route", "add", "192.0.2.0/24", "via", "10.88.0.9"], check=True)
    capability = Driven(EgressRouteCapability(NetlinkRouteTable(namespace)))

    async def scenario() -> None:
        first = await _converge(capability, _route())
        assert {str(t.target) for t in first} == {"routes ipv4", "routes ipv6"}
        assert _via(namespace, "172.64.0.1") == "10.88.0.1"
        assert _via(namespace, "172.200.0.1") == "10.88.0.1"
        assert _via(namespace, "2001:db8::1") == "fd88::1"
        assert _via(namespace, "10.1.2.3") == ""
        assert _via(namespace, "198.51.100.1") == ""  # excluded
        assert _via(namespace, "192.0.2.1") == "10.88.0.9"  # someone else's, more specific: untouched
        assert await _converge(capability, _route()) == []

        subprocess.run(["ip", "-n", namespace, "route", "del", "172.64.0.0/10"], check=True)
        subprocess.run(
            ["ip", "-n", namespace, "route", "replace", "8.0.0.0/7", "via", "10.88.0.7", "proto", "213"], check=True
        )
        repaired = await _converge(capability, _route())
        assert [(c.key, c.action.value) for t in repaired for c in t.changes] == [
            ("172.64.0.0/10", "add"),
            ("8.0.0.0/7", "change"),
        ]
        assert _via(namespace, "172.64.0.1") == "10.88.0.1"
        assert _via(namespace, "8.8.8.8") == "10.88.0.1"

        moved = await _converge(capability, _route("10.88.0.3"))
        assert (
            len(moved[0].changes) == len(await capability.capability.table.ours()) - 1
        )  # every IPv4 route, not the IPv6 one
        assert _via(namespace, "172.64.0.1") == "10.88.0.3"

        await capability.forget("via-gw")
        assert await capability.capability.table.ours() == {}
        assert _via(namespace, "172.64.0.1") == ""
        assert _via(namespace, "192.0.2.1") == "10.88.0.9"

    asyncio.run(scenario())
