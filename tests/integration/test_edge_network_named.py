"""An EdgeNetwork in-process against ten local HTTP edges on loopback aliases (delays 0.1, 0.2, 1 ... 8 s; timeout
5 s, goodEnough 0.7 s, liveCount 4) and a real named: the first four edges are live, named answers exactly their
A records, named-checkzone passed; a fast canary in its own zone only, canaryKiller; a round with nothing new rewrites
nothing (same serial, afterChange not run again); a template that breaks the zone keeps the old one."""

from __future__ import annotations

import asyncio
import hashlib
import re
import subprocess
import time
from pathlib import Path

import dns.asyncresolver
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, generate_latest

from reconciler.capabilities.edge_network import EdgeNetworkCapability
from reconciler.cli import main
from reconciler.errors import ApplyError
from reconciler.model import DesiredState, EdgeNetwork
from reconciler.status.state_file import SavedState
from reconciler.system.clock import SystemClock
from reconciler.system.commands import SubprocessRunner
from reconciler.system.http import HttpxFetcher
from reconciler.testing import Driven, FakeResolver
from tests.conftest import require_root
from tests.integration.agents import free_port

pytestmark = pytest.mark.integration

BODY = b"edgemanage object\n"
DELAYS = {f"127.0.0.{40 + i}": d for i, d in enumerate([0.1, 0.2, 1, 2, 3, 4, 5, 6, 7, 8])}
CANARY, REFUSING = "127.0.0.50", "127.0.0.51"  # a fast canary; an address where nothing listens


def _network(
    output: Path, port: int, marker: Path, template: str | None = None, canaries: dict[str, str] | None = None
) -> EdgeNetwork:
    zone: dict[str, object] = {"name": "example.org", "labels": ["@", "www"]}
    if template is not None:
        zone["template"] = template
    return EdgeNetwork.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "EdgeNetwork",
            "metadata": {"name": "edges"},
            "spec": {
                "edges": list(DELAYS),
                "object": {
                    "url": f"http://{{host}}:{port}/edgemanage.txt",
                    "host": "example.org",
                    "sha256": hashlib.sha256(BODY).hexdigest(),
                },
                "timeout": "5s",
                "goodEnough": "700ms",
                "liveCount": 4,
                "zones": [zone, {"name": "example.net", "labels": ["www"]}],
                "canaries": canaries if canaries is not None else {"example.net": CANARY},
                "canaryKiller": 1,
                "soa": {"mname": "ns1.example.org.", "rname": "hostmaster.example.org."},
                "nameservers": ["ns.example.com."],  # out of both zones: no glue needed
                "output": {"dir": str(output), "afterChange": ["touch", str(marker)]},
            },
        }
    )


async def _pass(capability: Driven[EdgeNetworkCapability], network: EdgeNetwork) -> int:
    observed = await capability.observe(network)
    applied = 0
    for target in capability.plan(network, observed.facts, now=time.time()):
        if target.changes:
            await capability.apply(network, target)
            applied += 1
    return applied


def _named(folder: Path, zones: Path, port: int) -> subprocess.Popen[bytes]:
    conf = folder / "named.conf"
    conf.write_text(
        f'options {{ directory "{folder}"; listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};\n'
        f'  pid-file "{folder}/named.pid"; recursion no; }};\n'
        f'zone "example.org" {{ type primary; file "{zones}/example.org.zone"; }};\n'
        f'zone "example.net" {{ type primary; file "{zones}/example.net.zone"; }};\n'
    )
    return subprocess.Popen(
        ["named", "-g", "-u", "root", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


async def _query(capability: EdgeNetworkCapability, query: str) -> set[str]:
    """The edges GET /edges/edges?<query> lists (the old edge_query's filters)."""
    app = web.Application()
    app.add_routes(capability.routes())
    async with TestClient(TestServer(app)) as client:
        response = await client.get(f"/edges/edges?{query}")
        assert response.status == 200
        return set((await response.json())["edges"])


def _registry(capability: EdgeNetworkCapability) -> CollectorRegistry:
    registry = CollectorRegistry()
    for collector in capability.collectors():
        registry.register(collector)
    return registry


async def _published(folder: Path, zones: Path, port: int) -> dict[str, set[str]]:
    """What a real named serving the zones in ``zones`` answers for www.example.org and www.example.net."""
    named = _named(folder, zones, port)
    try:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers, resolver.port = ["127.0.0.1"], port
        for _ in range(50):
            try:
                return {
                    name: {r.address for r in await resolver.resolve(f"www.{name}", "A")}
                    for name in ("example.org", "example.net")
                }
            except Exception:
                await asyncio.sleep(0.1)
        raise AssertionError("named did not answer")
    finally:
        named.terminate()
        named.wait(timeout=10)
        if named.stderr is not None:
            named.stderr.close()


async def _canary_killer(capability: Driven[EdgeNetworkCapability], network: EdgeNetwork) -> None:
    """canaryKiller 1: a refusing canary turns canaries off for the round; the other is cancelled or unused."""
    await _pass(capability, network)
    state = capability.state("edges")
    assert re.match(r"[12] canary probes failed \(canaryKiller 1\)", state.canaries_off), state.canaries_off
    assert not any(canary["used"] for canary in state.canaries.values())
    output = Path(network.spec.output.dir)
    assert (output / "example.net.zone").read_text().count(" IN A ") == 4  # the live set, no canary
    assert (output / "example.org.zone").read_text().count(" IN A ") == 8  # @ and www: the live set


async def _introspection(
    capability: Driven[EdgeNetworkCapability], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """GET /edges filters, metrics, and the latency check reading the saved state."""
    saved = capability.saved()
    assert saved is not None
    (tmp_path / "state.json").write_bytes(SavedState(capabilities={"EdgeNetwork": saved}).encode())
    assert await _query(capability.capability, "live=true") == set(capability.state("edges").live)
    assert await _query(capability.capability, "tier=fail") == {f"127.0.0.{n}" for n in range(46, 50)}  # 5 s and more
    assert await _query(capability.capability, "tier=pass_threshold&live=true") == {"127.0.0.40", "127.0.0.41"}
    metrics = generate_latest(_registry(capability.capability)).decode()
    assert 'reconciler_edge_live{edge="127.0.0.40",network="edges"} 1.0' in metrics
    assert 'reconciler_edge_live_wanted{network="edges"} 4.0' in metrics
    assert 'reconciler_edge_live{edge="127.0.0.49",network="edges"} 0.0' in metrics
    capsys.readouterr()
    latency = ["check", "edges-latency", "edges", "--state-dir", str(tmp_path)]
    assert main(latency) == 2  # the slowest live edge takes 2 s: critical at the default 2 s
    assert capsys.readouterr().out.startswith("ACTIVE_EDGE_LATENCY CRITICAL - edges: slowest live edge 127.0.0.43")
    assert main([*latency, "--warning", "2.5", "--critical", "4"]) == 0


def test_the_fastest_edges_published_through_a_real_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_root("named", "named-checkzone")
    port, dns_port = free_port(), free_port()
    output, marker = tmp_path / "zones", tmp_path / "after-change"

    async def handler(request: web.Request) -> web.Response:
        local = request.transport.get_extra_info("sockname")[0] if request.transport else ""
        await asyncio.sleep(DELAYS.get(local, 0.0))
        return web.Response(body=BODY)

    async def scenario() -> None:
        app = web.Application()
        app.router.add_get("/edgemanage.txt", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        for address in [*DELAYS, CANARY]:
            await web.TCPSite(runner, address, port).start()
        capability = Driven(
            EdgeNetworkCapability(HttpxFetcher(SystemClock()), FakeResolver(), SubprocessRunner(), SystemClock())
        )
        network = _network(output, port, marker)
        capability.capability.use(DesiredState({"EdgeNetwork": {"edges": network}}))
        assert await _pass(capability, network) == 1
        zone_file = output / "example.org.zone"
        first = zone_file.read_text()
        assert marker.exists()
        state = capability.state("edges")
        assert state.live == ("127.0.0.40", "127.0.0.41", "127.0.0.42", "127.0.0.43")

        # the fast canary takes the place of the slowest live edge in its own zone only
        assert await _published(tmp_path, output, dns_port) == {
            "example.org": set(state.live),
            "example.net": {*state.live[:3], CANARY},
        }
        assert state.canaries["example.net"] == {"address": CANARY, "tier": "pass_threshold", "used": True}
        await _introspection(capability, tmp_path, capsys)

        marker.unlink()
        mtime = zone_file.stat().st_mtime_ns
        assert await _pass(capability, network) == 0  # nothing new: no rewrite, no serial, no afterChange
        assert zone_file.stat().st_mtime_ns == mtime
        assert not marker.exists()

        await _canary_killer(
            capability, _network(output, port, marker, canaries={"example.net": REFUSING, "example.org": CANARY})
        )

        (tmp_path / "broken.j2").write_text("$ORIGIN {{ zone }}\n@ IN A 192.0.2.1\n")  # no SOA: not a zone
        broken = _network(output, port, marker, template=str(tmp_path / "broken.j2"))
        with pytest.raises(ApplyError, match="fails named-checkzone, the old zone stays"):
            await _pass(capability, broken)
        assert zone_file.read_text() == first
        await capability.capability.close(asyncio.get_running_loop().time() + 5)
        await runner.cleanup()

    asyncio.run(scenario())
