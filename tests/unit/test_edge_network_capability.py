"""The EdgeNetwork capability through fakes (no root, no named): its part of the state file saves back unchanged
after a restore, forget drops every piece of a network's state, and its routes and metrics show every edge."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from reconciler.capabilities.edge_network import EdgeNetworkCapability
from reconciler.model import DesiredState, EdgeNetwork
from reconciler.testing import FakeClock, FakeCommandRunner, FakeFetcher, FakeResolver


def _network(output: Path) -> EdgeNetwork:
    return EdgeNetwork.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "EdgeNetwork",
            "metadata": {"name": "edges"},
            "spec": {
                "edges": ["192.0.2.21", "192.0.2.22", "192.0.2.23"],
                "object": {"url": "http://{host}/edgemanage.txt", "sha256": hashlib.sha256(b"object").hexdigest()},
                "liveCount": 2,
                "rotation": {"maxChanges": 3, "per": "30m"},
                "zones": [{"name": "example.org"}],
                "soa": {"mname": "ns.example.net.", "rname": "hostmaster.example.org."},
                "nameservers": ["ns.example.net."],
                "output": {"dir": str(output), "check": False},
            },
        }
    )


def _capability() -> EdgeNetworkCapability:
    return EdgeNetworkCapability(FakeFetcher(), FakeResolver(), FakeCommandRunner(), FakeClock())


async def _pass(capability: EdgeNetworkCapability, network: EdgeNetwork) -> None:
    observed = await capability.observe(network)
    for target in capability.plan(network, observed.facts, now=time.time()):
        await capability.apply(network, target)


def test_a_restored_state_saves_back_unchanged_and_forget_drops_all_of_it(tmp_path: Path) -> None:
    """The rotation window (30m) was written back as the default 600 s after a restore until the first observation,
    and forget kept it: a restored state is now saved byte for byte as it was read, and forget leaves nothing."""
    network = _network(tmp_path / "zones")
    first = _capability()
    first.use(DesiredState({"EdgeNetwork": {"edges": network}}))
    asyncio.run(_pass(first, network))
    saved = json.dumps(first.saved(), sort_keys=True)
    assert '"per": 1800.0' in saved

    restored = _capability()
    restored.restore(json.loads(saved))
    assert json.dumps(restored.saved(), sort_keys=True) == saved
    assert restored.rotation_windows == {"edges": 1800.0}

    asyncio.run(restored.forget("edges"))
    assert (restored.networks, restored.rotation_windows, restored.live_wanted) == ({}, {}, {})
    assert restored.saved() == {"networks": {}}


def test_the_routes_and_metrics_show_each_edge(tmp_path: Path) -> None:
    """GET /edges/NAME filters as edgemanage's edge_query did; /edges/NAME/EDGE adds the hourly means and recent
    probes; the metrics give every edge its times, live and failed; an unknown network or edge is a 404."""
    network = _network(tmp_path / "zones")
    capability = _capability()
    capability.use(DesiredState({"EdgeNetwork": {"edges": network}}))
    asyncio.run(_pass(capability, network))
    live = capability.networks["edges"].live
    assert len(live) == 2

    async def ask() -> dict[str, Any]:
        app = web.Application()
        app.add_routes(capability.routes())
        async with TestClient(TestServer(app)) as client:
            return {
                "all": await (await client.get("/edges/edges")).json(),
                "live": await (await client.get("/edges/edges?live=true")).json(),
                "one": await (await client.get(f"/edges/edges/{live[0]}")).json(),
                "unknown": (await client.get("/edges/other")).status,
                "no edge": (await client.get("/edges/edges/192.0.2.99")).status,
            }

    answers = asyncio.run(ask())
    assert sorted(answers["all"]["edges"]) == ["192.0.2.21", "192.0.2.22", "192.0.2.23"]
    assert sorted(answers["live"]["edges"]) == sorted(live)
    assert answers["all"]["serials"]["example.org"] >= 2026010100
    one = answers["one"]
    assert (one["edge"], one["live"], one["mode"]) == (live[0], True, "available")
    assert one["recent"][0]["ok"] is True
    assert one["hourly"][0]["probes"] >= 1
    assert (answers["unknown"], answers["no edge"]) == (404, 404)

    registry = CollectorRegistry()
    for collector in capability.collectors():
        registry.register(collector)
    for host in ("192.0.2.21", "192.0.2.22", "192.0.2.23"):
        labels = {"network": "edges", "edge": host}
        assert registry.get_sample_value("reconciler_edge_live", labels) == (1.0 if host in live else 0.0)
        assert registry.get_sample_value("reconciler_edge_failed", labels) == 0.0
        seconds = registry.get_sample_value("reconciler_edge_probe_seconds", labels)
        assert seconds is not None
        assert 0.02 <= seconds <= 0.3  # FakeFetcher's range
    assert registry.get_sample_value("reconciler_edge_live_wanted", {"network": "edges"}) == 2.0
