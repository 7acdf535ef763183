"""The IPPool capability without root or a proxy: members judged from an access log in a temporary folder, the
status summary, the metrics (ours and ipmanager's names), its part of the state file, and the old tool's routes
(/ping, /api/config, /api/ip/history, /api/ip/renew) with their shapes."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from reconciler.capabilities.context import PassRequests
from reconciler.capabilities.ip_pool import IPPoolCapability
from reconciler.model import DesiredState, HealthStrategy, IPPool
from reconciler.proxy.manager import ProxyManager
from reconciler.testing import Driven, FakeClock

NOW = 1_800_000_000.0  # 15/Jan/2027:08:00:00 +0000
STAMP = "15/Jan/2027:08:00:00 +0000"
STRATEGY = HealthStrategy.model_validate(
    {
        "apiVersion": "reconciler/v1",
        "kind": "HealthStrategy",
        "metadata": {"name": "two-in-a-row"},
        "spec": {"type": "consecutive", "consecutive": {"failures": 2, "within": "1m", "cooldown": "10m"}},
    }
)


def _pool(log: Path) -> IPPool:
    return IPPool.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "IPPool",
            "metadata": {"name": "egress"},
            "spec": {
                "members": {"static": [{"ip": "203.0.113.5", "port": 19001}, {"ip": "203.0.113.6", "port": 19002}]},
                "accessLog": {"path": str(log), "from": "start"},
                "strategy": "two-in-a-row",
            },
        }
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _line(port: int, status: int) -> str:
    return f'198.51.100.7 - [{STAMP}] "CONNECT x:443 HTTP/1.1" {status} {port} 127.0.0.1:{port} 0.010\n'


def _capability(passes: PassRequests | None = None) -> IPPoolCapability:
    capability = IPPoolCapability(ProxyManager(workers=0), FakeClock(wall=NOW), passes=passes, api_port="9900")
    capability.use(DesiredState({"HealthStrategy": {"two-in-a-row": STRATEGY}}))
    return capability


async def _routes(capability: IPPoolCapability, calls: list[tuple[str, str]]) -> dict[str, Any]:
    app = web.Application()
    app.add_routes(capability.routes())
    async with TestClient(TestServer(app)) as client:
        answers: dict[str, Any] = {"ping": await (await client.get("/ping")).text()}
        answers["config"] = await (await client.get("/api/config")).json()
        answers["history"] = await (await client.get("/api/ip/history")).json()
        answers["renew"] = await (await client.post("/api/ip/renew")).text()
        other = await client.get("/api/config?pool=other")
        answers["other"] = (other.status, (await other.json())["error"])
    return answers


def test_members_judged_shown_counted_saved_and_served_in_the_old_shapes(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(_line(19001, 200) + _line(19001, 502) + _line(19001, 502) + _line(19002, 200))
    calls: list[tuple[str, str]] = []
    driven = Driven(_capability(PassRequests(lambda kind, name: calls.append((kind, name)))))
    capability = driven.capability
    pool = _pool(log)

    observed = asyncio.run(driven.observe(pool))
    members = {m["ip"]: m for m in observed.summary["members"]}
    assert (members["203.0.113.5"]["available"], members["203.0.113.6"]["available"]) == (False, True)
    assert "2 failures in a row" in members["203.0.113.5"]["reason"]
    assert observed.degraded is None

    registry = CollectorRegistry()
    for collector in capability.collectors():
        registry.register(collector)
    ours = {"pool": "egress", "ip": "203.0.113.5", "port": "19001"}
    assert registry.get_sample_value("reconciler_pool_member_available", ours) == 0.0
    old = {"ip": "203.0.113.5", "port": "19001"}
    assert registry.get_sample_value("ipmanager_available_list", old) == 0.0
    assert registry.get_sample_value("ipmanager_cooldown_list", old) == 1.0

    answers = asyncio.run(_routes(capability, calls))
    assert answers["ping"] == "pong"
    # ipmanager banned once the count exceeded consecutive_failure: banning at the 2nd is its 1
    assert (answers["config"]["strategy"], answers["config"]["consecutive_failure"]) == ("consecutive", 1)
    assert (answers["config"]["cool_down_min"], answers["config"]["probe_port"]) == (10, "9900")
    assert answers["history"]["AvailableIP"] == ["203.0.113.6"]
    banned = answers["history"]["IPHistory"]["203.0.113.5"]
    assert (banned["Banned"], banned["Port"], banned["Failure"]) == (True, "19001", 2)  # the count that banned it
    assert [entry["StatusCode"] for entry in banned["History"]] == ["200", "502", "502"]
    assert banned["CoolDowns"] == [["2027-01-15T08:00:00Z", "2027-01-15T08:10:00Z"]]
    assert (answers["renew"], calls) == ("Renewed", [("IPPool", "egress")])
    assert answers["other"] == (404, "no IP pool other on this node")

    saved = driven.saved()
    assert saved is not None
    assert set(saved.state["resources"]["egress"]) == {"health", "logs"}  # open files and counts stay in memory
    again = Driven(_capability())
    again.restore(saved)
    assert again.saved() == saved  # health and log positions, as read
    with log.open("a") as out:
        out.write(_line(19002, 502))
    judged = asyncio.run(again.observe(pool))
    shown = {m["ip"]: m["available"] for m in judged.summary["members"]}
    assert shown == {"203.0.113.5": False, "203.0.113.6": True}  # one new failure; the old lines not counted again
    assert again.state("egress").health["203.0.113.6"].requests == {"2xx": 1, "5xx": 1}
    tails = list(again.state("egress").tails.values())
    assert tails
    assert all(tail.current is not None for tail in tails)
    asyncio.run(again.forget("egress"))
    assert dict(again.capability.states) == {}
    assert all(tail.current is None for tail in tails)  # forget closed the open log


def test_the_pool_proxy_is_planned_with_each_members_health_and_served_on_its_routes(tmp_path: Path) -> None:
    """With a proxy, the plan makes the pool's app (nginx on each member's port) and carries each member's
    verdict; applied, the running app holds the banned member as unavailable; /pools/NAME shows it, a rescan is
    asked for, an unknown pool is a 404; forget removes the app."""
    log = tmp_path / "access.log"
    log.write_text(_line(19001, 502) + _line(19001, 502) + _line(19002, 200))
    port = _free_port()
    pool = IPPool.model_validate(
        {
            **_pool(log).model_dump(mode="json", by_alias=True),
            "spec": {
                **_pool(log).spec.model_dump(mode="json", by_alias=True, exclude_none=True),
                "proxy": {"listen": f"127.0.0.1:{port}", "next": "127.0.0.1", "emptyPool": "http-502"},
            },
        }
    )
    calls: list[tuple[str, str]] = []
    driven = Driven(_capability(PassRequests(lambda kind, name: calls.append((kind, name)))))
    capability = driven.capability

    async def scenario() -> dict[str, Any]:
        observed = await driven.observe(pool)
        [target] = driven.plan(pool, observed.facts, now=NOW)
        assert str(target.target) == "app:pool:egress"
        availability = {c.key: str(c.after) for c in target.changes if c.key.startswith("member ")}
        assert set(availability) == {"member 127.0.0.1:19001", "member 127.0.0.1:19002"}
        await driven.apply(pool, target)
        running = {t.address: t.health for t in capability.manager.snapshot()["pool:egress"].targets}
        assert running == {"127.0.0.1:19001": "down", "127.0.0.1:19002": "up"}
        again = await driven.observe(pool)
        assert [t.changes for t in driven.plan(pool, again.facts, now=NOW)] == [()]  # converged
        app = web.Application()
        app.add_routes(capability.routes())
        async with TestClient(TestServer(app)) as client:
            shown = await (await client.get("/pools/egress")).json()
            rescan = (await client.post("/pools/egress/rescan")).status
            unknown = (await client.get("/pools/other")).status
        await driven.forget("egress")
        assert "pool:egress" not in capability.manager.snapshot()
        await capability.manager.close()
        return {"shown": shown, "rescan": rescan, "unknown": unknown}

    answers = asyncio.run(scenario())
    assert answers["shown"]["members"]["203.0.113.5"]["available"] is False
    assert answers["shown"]["members"]["203.0.113.6"]["requests"] == {"2xx": 1}
    assert (answers["rescan"], answers["unknown"], calls) == (202, 404, [("IPPool", "egress")])
