"""The IPPool capability in-process, with a real log file and real targets on loopback: members judged from the
log by their strategy, the pool proxy sending new connections only to available members, a cool-down ending, a
manual ban, and the state (health and log positions) surviving a restart without counting a line twice."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from reconciler.capabilities.ip_pool import IPPoolCapability, app_key
from reconciler.model import DesiredState, HealthStrategy, IPPool
from reconciler.observers.nginx_members import NginxMember
from reconciler.proxy.manager import ProxyManager
from reconciler.testing import Driven, FakeClock
from tests.integration.agents import free_port
from tests.integration.test_proxy import Echo

NOW = 1_800_000_000.0  # 15/Jan/2027:08:00:00 +0000
STAMP = "15/Jan/2027:08:00:00 +0000"


def _pool(log: Path, ports: tuple[int, int], listen: int, **spec: Any) -> IPPool:
    return IPPool.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "IPPool",
            "metadata": {"name": "egress"},
            "spec": {
                "members": {
                    "static": [{"ip": "203.0.113.5", "port": ports[0]}, {"ip": "203.0.113.6", "port": ports[1]}]
                },
                "accessLog": {"path": str(log), "from": "start"},
                "strategy": "two-in-a-row",
                "proxy": {"listen": f"127.0.0.1:{listen}", "balance": "round-robin", "emptyPool": "http-502"},
                **spec,
            },
        }
    )


STRATEGY = HealthStrategy.model_validate(
    {
        "apiVersion": "reconciler/v1",
        "kind": "HealthStrategy",
        "metadata": {"name": "two-in-a-row"},
        "spec": {"type": "consecutive", "consecutive": {"failures": 2, "within": "1m", "cooldown": "5s"}},
    }
)


def _line(port: int, status: int) -> str:
    return f'198.51.100.7 - [{STAMP}] "CONNECT x:443 HTTP/1.1" {status} {port} 127.0.0.1:{port} 0.010\n'


async def _pass(capability: Driven[IPPoolCapability], pool: IPPool) -> dict[str, Any]:
    observed = await capability.observe(pool)
    for target in capability.plan(pool, observed.facts, now=0.0):
        if target.changes:
            await capability.apply(pool, target)
    return dict(observed.summary)


async def _ask(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write_eof()
    answer = await asyncio.wait_for(reader.read(), 3)
    writer.close()
    return answer


def test_members_judged_from_the_log_drive_the_pool_proxy(tmp_path: Path) -> None:
    log = tmp_path / "access.log"

    async def scenario() -> None:
        first, second = await Echo("five").start(), await Echo("six").start()
        listen = free_port()
        pool = _pool(log, (first.port, second.port), listen)
        clock = FakeClock(wall=NOW)
        capability = Driven(IPPoolCapability(ProxyManager(workers=0), clock))
        capability.capability.use(
            DesiredState({"HealthStrategy": {"two-in-a-row": STRATEGY}, "IPPool": {"egress": pool}})
        )
        log.write_text(
            _line(first.port, 200) + _line(first.port, 502) + _line(first.port, 502) + _line(second.port, 200)
        )
        summary = await _pass(capability, pool)
        assert [(m["ip"], m["available"]) for m in summary["members"]] == [
            ("203.0.113.5", False),
            ("203.0.113.6", True),
        ]
        assert "2 failures in a row" in summary["members"][0]["reason"]
        assert {await _ask(listen) for _ in range(4)} == {b"six:"}  # only the available member

        clock.wall += 6  # the cool-down is over
        await _pass(capability, pool)
        assert {await _ask(listen) for _ in range(4)} == {b"five:", b"six:"}

        banned = _pool(log, (first.port, second.port), listen, banned=["203.0.113.5", "203.0.113.6"])
        summary = await _pass(capability, banned)
        assert [m["reason"] for m in summary["members"]] == ["Banned: listed in spec.banned"] * 2
        assert (await _ask(listen)).startswith(b"HTTP/1.1 502")  # an empty pool answers as configured

        saved = capability.saved()
        assert saved is not None
        await capability.capability.close(asyncio.get_running_loop().time() + 5)
        with log.open("a") as out:
            out.write(_line(second.port, 502))
        again = Driven(IPPoolCapability(ProxyManager(workers=0), clock))
        again.restore(saved)
        again.capability.use(DesiredState({"HealthStrategy": {"two-in-a-row": STRATEGY}, "IPPool": {"egress": pool}}))
        await _pass(again, pool)
        health = again.state("egress").health
        assert health["203.0.113.6"].requests == {"2xx": 1, "5xx": 1}  # the old line was not counted again
        assert health["203.0.113.5"].requests == {"2xx": 1, "5xx": 2}
        assert again.capability.manager.snapshot()[app_key("egress")].targets
        await again.capability.close(asyncio.get_running_loop().time() + 5)
        await first.stop()
        await second.stop()

    asyncio.run(scenario())


def test_the_pool_route_answers_503_until_the_first_scan_has_judged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the first scan reads the log, GET /pools/NAME says so instead of answering a pool without members."""
    log = tmp_path / "access.log"
    log.write_text(_line(19001, 200))
    pool = _pool(log, (19001, 19002), free_port())
    capability = Driven(IPPoolCapability(ProxyManager(workers=0), FakeClock(wall=NOW)))
    capability.capability.use(DesiredState({"HealthStrategy": {"two-in-a-row": STRATEGY}, "IPPool": {"egress": pool}}))
    reading, release = threading.Event(), threading.Event()
    members = capability.capability._members

    def slow_members(resource: IPPool) -> tuple[tuple[NginxMember, ...], tuple[str, ...]]:
        reading.set()
        release.wait(5)
        return members(resource)

    monkeypatch.setattr(capability.capability, "_members", slow_members)

    async def scenario() -> Sequence[tuple[int, dict[str, Any]]]:
        app = web.Application()
        app.add_routes(capability.capability.routes())
        answers = []
        async with TestClient(TestServer(app)) as client:
            scan = asyncio.create_task(capability.observe(pool))
            assert await asyncio.to_thread(reading.wait, 5)
            for _ in range(2):
                response = await client.get("/pools/egress")
                answers.append((response.status, await response.json()))
                release.set()
                await scan
        return answers

    (during, body), (after, scanned) = asyncio.run(scenario())
    assert (during, body["error"]) == (503, "the first scan of IP pool egress has not finished")
    assert after == 200
    assert scanned["members"]["203.0.113.5"]["requests"] == {"2xx": 1}
    assert set(scanned["members"]) == {"203.0.113.5", "203.0.113.6"}
