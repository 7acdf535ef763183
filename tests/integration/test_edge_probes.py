"""Edge probes against local HTTP edges on loopback aliases (127.0.0.x) whose delay, content and status the test
sets: times to the full body, failures (slow, wrong checksum, HTTP 404, refused, a name that does not resolve)
recorded at the timeout value, the Host header naming the site while the connection is pinned to each edge, and
a whole round bounded by the timeout whatever the number of edges."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace

from aiohttp import web

from reconciler.observers.http_probe import ProbeSpec, probe_all, probe_canaries
from reconciler.system.clock import SystemClock
from reconciler.system.http import HttpxFetcher
from reconciler.testing import FakeResolver
from tests.integration.agents import free_port

BODY = b"edgemanage object\n"
DELAYS = {f"127.0.0.{10 + i}": d for i, d in enumerate([0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0, 1.2, 3.0, 3.0])}
WRONG, MISSING, CLOSED = "127.0.0.30", "127.0.0.31", "127.0.0.32"


@contextlib.asynccontextmanager
async def _edges(hosts_seen: dict[str, str]) -> AsyncIterator[tuple[HttpxFetcher, ProbeSpec, FakeResolver]]:
    """The local edges (DELAYS, WRONG answers another body, MISSING 404), a fetcher and the probe's spec."""
    port = free_port()

    async def handler(request: web.Request) -> web.Response:
        local = request.transport.get_extra_info("sockname")[0] if request.transport else ""
        hosts_seen[local] = request.headers.get("Host", "")
        if local == MISSING:
            return web.Response(status=404)
        await asyncio.sleep(DELAYS.get(local, 0.0))
        return web.Response(body=b"tampered\n" if local == WRONG else BODY)

    app = web.Application()
    app.router.add_get("/edgemanage.txt", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    for address in [*DELAYS, WRONG, MISSING]:
        await web.TCPSite(runner, address, port).start()
    fetcher = HttpxFetcher(SystemClock())
    spec = ProbeSpec(
        url=f"http://{{host}}:{port}/edgemanage.txt",
        host="example.org",
        sha256=hashlib.sha256(BODY).hexdigest(),
        timeout=2.0,
    )
    try:
        yield fetcher, spec, FakeResolver({"edge-by-name.test": ("127.0.0.10",)})
    finally:
        await fetcher.close()
        await runner.cleanup()


def test_a_round_of_probes() -> None:
    hosts_seen: dict[str, str] = {}

    async def scenario() -> None:
        async with _edges(hosts_seen) as (fetcher, spec, resolver):
            edges = [*DELAYS, WRONG, MISSING, CLOSED, "edge-by-name.test", "gone.test"]
            started = time.monotonic()
            results = await probe_all(fetcher, resolver, edges, spec, limit=50)
            took = time.monotonic() - started

        assert took < spec.timeout + 1.0
        for address, delay in DELAYS.items():
            found = results[address]
            if delay < spec.timeout:
                assert found.ok, found
                assert delay <= found.seconds < delay + 0.5
                assert found.headers_seconds is not None
            else:
                assert not found.ok
                assert found.seconds == spec.timeout
        assert "checksum" in results[WRONG].error
        assert results[MISSING].error == "HTTP 404"
        assert not results[CLOSED].ok
        assert results[CLOSED].seconds == spec.timeout
        assert results["edge-by-name.test"].ok
        assert results["edge-by-name.test"].address == "127.0.0.10"
        assert results["gone.test"].address is None
        assert "NXDOMAIN" in results["gone.test"].error
        port = spec.url.rsplit(":", 1)[1].split("/")[0]
        assert set(hosts_seen.values()) == {f"example.org:{port}"}  # the site's name, on every edge

    asyncio.run(scenario())


def test_md5_for_migration_and_the_canary_killer() -> None:
    """md5 is checked like sha256 (both must match when both are given); canaryKiller 2: two refused canaries end
    the round at once, the slow ones are cancelled, not waited for, and count as failed."""

    async def scenario() -> None:
        async with _edges({}) as (fetcher, spec, resolver):
            # the old tool's md5 (migration): checked like sha256, with both given both must match
            md5 = replace(spec, md5=hashlib.md5(BODY, usedforsecurity=False).hexdigest())
            by_md5 = await probe_all(fetcher, resolver, ["127.0.0.10", WRONG], replace(md5, sha256=None))
            assert by_md5["127.0.0.10"].ok
            assert by_md5[WRONG].error.startswith("md5 ")
            assert (await probe_all(fetcher, resolver, ["127.0.0.10"], replace(md5, md5="0" * 32)))["127.0.0.10"].error
            # canaryKiller 2: two refused canaries end the round; the slow ones are not waited for, and count as failed
            started = time.monotonic()
            canaries = await probe_canaries(
                fetcher, resolver, [CLOSED, "127.0.0.33", "127.0.0.18", "127.0.0.19"], spec, killer=2
            )
            assert time.monotonic() - started < 1.0
            assert [canaries[c].error for c in ("127.0.0.18", "127.0.0.19")] == ["not probed: canaryKiller"] * 2
            assert not any(found.ok for found in canaries.values())
            everything = await probe_canaries(fetcher, resolver, ["127.0.0.10", "127.0.0.11", CLOSED], spec, killer=2)
            assert [everything[c].ok for c in ("127.0.0.10", "127.0.0.11", CLOSED)] == [True, True, False]

    asyncio.run(scenario())
