"""HTTP edges on loopback aliases (127.0.0.x), served from a thread of the test process, so that a test can run the
real agent as a child process against them and change each edge's delay and body while it runs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from types import TracebackType

from aiohttp import web

PATH = "/edgemanage.txt"


class EdgeServers:
    """``with EdgeServers(addresses, port, body) as edges``: ``edges.delays[address]`` and ``edges.bodies[address]``
    may be changed at any time; an address without a delay answers at once."""

    def __init__(self, addresses: Iterable[str], port: int, body: bytes) -> None:
        self.addresses = list(addresses)
        self.port = port
        self.delays: dict[str, float] = {}
        self.bodies: dict[str, bytes] = dict.fromkeys(self.addresses, body)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="edge-servers", daemon=True)
        self.runner: web.AppRunner | None = None

    async def _handler(self, request: web.Request) -> web.Response:
        local = request.transport.get_extra_info("sockname")[0] if request.transport else ""
        await asyncio.sleep(self.delays.get(local, 0.0))
        return web.Response(body=self.bodies.get(local, b""))

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get(PATH, self._handler)
        self.runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self.runner.setup()
        for address in self.addresses:
            await web.TCPSite(self.runner, address, self.port).start()

    def __enter__(self) -> EdgeServers:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=10)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
