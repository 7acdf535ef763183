"""Edge probes against local HTTP edges on loopback aliases (127.0.0.x) whose delay, content and status the test
sets: times to the full body, failures (slow, wrong checksum, HTTP 404, refused, a name that does not resolve)
recorded at the timeout value, the Host header naming the site while the connection is pinned to each edge, and
a whole round bounded by the timeout whatever the number of edges."""

from __future__ import annotations

import asyncio
import hashlib
import time

from aiohttp import web

from reconciler.observers.http_probe import ProbeSpec, probe_all
from reconciler.system.clock import SystemClock
from reconciler.system.http import HttpxFetcher
from reconciler.testing import FakeResolver
from tests.integration.agents import free_port

BODY = b"edgemanage object\n"
DELAYS = {f"127.0.0.{10 + i}": d for i, d in enumerate([0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0, 1.2, 3.0, 3.0])}
WRONG, MISSING, CLOSED = "127.0.0.30", "127.0.0.31", "127.0.0.32"


def test_a_round_of_probes() -> None:
    port = free_port()
    hosts_seen: dict[str, str] = {}

    async def handler(request: web.Request) -> web.Response:
        local = request.transport.get_extra_info("sockname")[0] if request.transport else ""
        hosts_seen[local] = request.headers.get("Host", "")
        if local == MISSING:
            return web.Response(status=404)
        await asyncio.sleep(DELAYS.get(local, 0.0))
        return web.Response(body=b"tampered\n" if local == WRONG else BODY)

    async def scenario() -> None:
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
        resolver = FakeResolver({"edge-by-name.test": ("127.0.0.10",)})
        edges = [*DELAYS, WRONG, MISSING, CLOSED, "edge-by-name.test", "gone.test"]
        started = time.monotonic()
        results = await probe_all(fetcher, resolver, edges, spec, limit=50)
        took = time.monotonic() - started
        await fetcher.close()
        await runner.cleanup()

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
        assert set(hosts_seen.values()) == {f"example.org:{port}"}  # the site's name, on every edge

    asyncio.run(scenario())
