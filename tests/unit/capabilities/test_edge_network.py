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

from reconciler.capabilities.edge_network import EdgeNetworkCapability, saved_networks
from reconciler.model import DesiredState, EdgeNetwork
from reconciler.status.state_file import CapabilityState
from reconciler.testing import Driven, FakeClock, FakeCommandRunner, FakeFetcher, FakeResolver


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


def _after_one_round(tmp_path: Path) -> tuple[Driven[EdgeNetworkCapability], CapabilityState]:
    """A capability that made one round over ``edges`` and its part of the state file."""
    network = _network(tmp_path / "zones")
    first = Driven(_capability())
    first.capability.use(DesiredState({"EdgeNetwork": {"edges": network}}))
    asyncio.run(first.cycle(network, now=time.time()))
    part = first.saved()
    assert part is not None
    return first, part


def test_a_restored_state_saves_back_unchanged_and_forget_drops_all_of_it(tmp_path: Path) -> None:
    """The rotation window (30m) was written back as the default 600 s after a restore until the first observation,
    and forget kept it: a restored state is now saved byte for byte as it was read, and forget leaves nothing."""
    _, part = _after_one_round(tmp_path)
    saved = json.dumps(part.state, sort_keys=True)
    assert '"per": 1800.0' in saved
    assert len(part.state["resources"]["edges"]["live"]) == 2

    restored = Driven(_capability())
    restored.restore(part)
    again = restored.saved()
    assert again is not None
    assert json.dumps(again.state, sort_keys=True) == saved
    assert restored.state("edges").per == 1800.0

    asyncio.run(restored.forget("edges"))
    assert dict(restored.capability.states) == {}
    assert again.version == 2
    assert restored.saved() == CapabilityState(2, {"resources": {}})


def test_a_version_1_part_is_read_as_it_was_written(tmp_path: Path) -> None:
    """The state file of the agent before per-resource states kept every network under ``networks``: an upgrade
    keeps the histories, the live set and the rotation window."""
    first, part = _after_one_round(tmp_path)
    old = CapabilityState(1, {"networks": part.state["resources"]})
    upgraded = Driven(_capability())
    upgraded.restore(old)
    assert upgraded.saved() == part
    assert saved_networks(1, old.state)["edges"].live == first.state("edges").live


def test_the_routes_and_metrics_show_each_edge(tmp_path: Path) -> None:
    """GET /edges/NAME filters as edgemanage's edge_query did; /edges/NAME/EDGE adds the hourly means and recent
    probes; the metrics give every edge its times, live and failed; an unknown network or edge is a 404."""
    network = _network(tmp_path / "zones")
    driven = Driven(_capability())
    capability = driven.capability
    capability.use(DesiredState({"EdgeNetwork": {"edges": network}}))
    asyncio.run(driven.cycle(network, now=time.time()))
    live = driven.state("edges").live
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


def test_a_first_start_with_no_answering_edge_leaves_the_zone_file_as_it_was(tmp_path: Path) -> None:
    """edgemanage writes nothing when no edge has answered (a first start, a lost state file, a wrong checksum
    while migrating): a zone with no address never replaces a working one, nor is a first one written; the
    network is Degraded (NoLiveEdge), status lists the zone and a metric says so until an edge answers."""
    network = _network(tmp_path / "zones")
    (tmp_path / "zones").mkdir()
    working = tmp_path / "zones" / "example.org.zone"
    before = b"$TTL 60\n@ IN SOA ns.example.net. hostmaster.example.org. 2026120701 1 1 1 1\n@ IN A 192.0.2.9\n"
    working.write_bytes(before)
    fetcher = FakeFetcher(body=b"not the object")  # every probe fails its checksum
    capability = Driven(EdgeNetworkCapability(fetcher, FakeResolver(), FakeCommandRunner(), FakeClock()))
    capability.capability.use(DesiredState({"EdgeNetwork": {"edges": network}}))

    async def scenario() -> None:
        observed = await capability.observe(network)
        assert observed.degraded is not None
        assert observed.degraded[0] == "NoLiveEdge"
        assert "example.org" in observed.degraded[1]
        assert observed.summary["unpublished"] == ["example.org"]
        assert capability.plan(network, observed.facts, now=time.time()) == []
        await capability.cycle(network, now=time.time())
        assert working.read_bytes() == before
        registry = CollectorRegistry()
        for collector in capability.capability.collectors():
            registry.register(collector)
        held = registry.get_sample_value(
            "reconciler_edge_zone_unpublished", {"network": "edges", "zone": "example.org"}
        )
        assert held == 1.0

        fetcher.body = b"object"  # the edges answer again: the zone is written with their addresses
        await capability.cycle(network, now=time.time())
        assert working.read_bytes() != before
        assert b"192.0.2.21" in working.read_bytes()
        assert capability.state("edges").unpublished == ()

    asyncio.run(scenario())

    fresh = tmp_path / "fresh"
    first = Driven(EdgeNetworkCapability(FakeFetcher(body=b"wrong"), FakeResolver(), FakeCommandRunner(), FakeClock()))
    asyncio.run(first.cycle(_network(fresh), now=time.time()))
    assert not (fresh / "example.org.zone").exists()  # nor is a first zone written without an address
