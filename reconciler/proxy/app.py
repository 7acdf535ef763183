"""One proxy app: its listeners, its backend set, and how a client connection gets a backend.

A client is accepted, waits for a slot under the app's connection limit (back-pressure, not refusal), then is
dialled to a backend chosen by the balancer; a failed or timed-out connect moves on to the next healthy backend
(``retries`` more times) so the client never notices. With no backend left the client gets what ``on_empty``
says: a plain close, or the old IP-pool tool's ``HTTP/1.1 502`` line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from reconciler.proxy.backends import Backend, Balance, balancer
from reconciler.proxy.relay import Relay, new_client_protocol

log = logging.getLogger(__name__)

BAD_GATEWAY = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
OnEmpty = Literal["close", "http-502"]


@dataclass
class AppStats:
    connections: int = 0
    active: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    connect_failures: int = 0
    retries: int = 0
    no_backend: int = 0
    waiting: int = 0


@dataclass(frozen=True)
class AppSettings:
    balance: Balance = "round-robin"
    connect_timeout: float = 3.0
    retries: int = 2
    idle_timeout: float | None = None
    max_connections: int = 10_000
    on_empty: OnEmpty = "close"


class ProxyApp:
    """Listeners of one app and the relays they accepted."""

    def __init__(self, name: str, settings: AppSettings, backends: Iterable[Backend]) -> None:
        self.name = name
        self.settings = settings
        self.backends = list(backends)
        self.balancer = balancer(settings.balance)
        self.stats = AppStats()
        self.loop = asyncio.get_running_loop()
        self.listeners: dict[tuple[str, int], asyncio.Server] = {}
        self.relays: set[Relay] = set()
        self.slots = asyncio.Semaphore(settings.max_connections)
        self._tasks: set[asyncio.Task[None]] = set()
        self._dial_name = f"dial-{name}"  # built once: accepted() is on the per-connection hot path
        self._sweeper: asyncio.Task[None] | None = None
        if settings.idle_timeout:
            self._sweeper = self.loop.create_task(self._sweep_idle(settings.idle_timeout), name=f"idle-{name}")

    # --- configuration ---------------------------------------------------------------------------------------

    def reconfigure(self, settings: AppSettings, backends: list[Backend]) -> None:
        """New settings and backends for new connections; established connections are left alone."""
        if settings.balance != self.settings.balance:
            self.balancer = balancer(settings.balance)
        if settings.max_connections != self.settings.max_connections:
            in_use = self.stats.active
            self.slots = asyncio.Semaphore(max(0, settings.max_connections - in_use))
        self.settings = settings
        self.backends = backends

    async def listen(self, host: str, port: int) -> None:
        """Start accepting on host:port (SO_REUSEPORT, so several processes may share a port)."""
        if (host, port) in self.listeners:
            return
        server = await self.loop.create_server(
            lambda: new_client_protocol(self), host, port, reuse_port=True, backlog=4096, start_serving=True
        )
        self.listeners[(host, port)] = server
        log.info("listening app=%s address=%s:%d", self.name, host, port)

    async def stop_listening(self, host: str, port: int) -> None:
        server = self.listeners.pop((host, port), None)
        if server is not None:
            server.close()
            log.info("stopped listening app=%s address=%s:%d", self.name, host, port)

    async def close(self, *, drain: float) -> None:
        """Stop accepting, let established connections finish for up to ``drain`` seconds, then cut them."""
        for host, port in list(self.listeners):
            await self.stop_listening(host, port)
        deadline = self.loop.time() + drain
        while self.relays and self.loop.time() < deadline:
            await asyncio.sleep(0.05)
        for relay in list(self.relays):
            relay.abort()
        for task in [*self._tasks, *([self._sweeper] if self._sweeper else [])]:
            task.cancel()

    # --- connections -----------------------------------------------------------------------------------------

    def accepted(self, relay: Relay) -> None:
        self.relays.add(relay)
        self.stats.connections += 1
        self.stats.active += 1
        task = self.loop.create_task(self._dial(relay), name=self._dial_name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def client_gone(self, relay: Relay) -> None:
        if not relay.connected:
            self.finished(relay)

    def finished(self, relay: Relay) -> None:
        if relay not in self.relays:
            return
        self.relays.discard(relay)
        self.stats.active -= 1
        if relay.backend is not None:
            relay.backend.active -= 1
        if relay.slot is not None:
            relay.slot.release()
            relay.slot = None

    async def _dial(self, relay: Relay) -> None:
        self.stats.waiting += 1
        slots = self.slots
        try:
            await slots.acquire()
        finally:
            self.stats.waiting -= 1
        relay.slot = slots
        if relay.downstream.lost:
            self.finished(relay)
            return
        try:
            await self._connect(relay)
        except asyncio.CancelledError:
            relay.abort()
            raise
        except Exception:  # never leave a client hanging on an unexpected error: log it and turn it away
            log.exception("dial failed app=%s", self.name)
            self._refuse(relay)

    async def _connect(self, relay: Relay) -> None:
        tried: set[int] = set()
        for attempt in range(self.settings.retries + 1):
            backend = self.balancer.pick(self.backends, frozenset(tried))
            if backend is None:
                break
            tried.add(id(backend))
            if attempt:
                self.stats.retries += 1
            assert backend.resolved is not None
            if relay.downstream.lost:
                return
            try:
                async with asyncio.timeout(self.settings.connect_timeout):
                    await self.loop.create_connection(lambda: relay.upstream, *backend.resolved)
            except (OSError, TimeoutError) as exc:
                backend.failures += 1
                self.stats.connect_failures += 1
                log.debug("connect failed app=%s backend=%s error=%s", self.name, backend.address, exc)
                continue
            backend.active += 1
            backend.connections += 1
            relay.backend = backend
            assert relay.upstream.transport is not None
            relay.attach(relay.upstream.transport)
            return
        self._refuse(relay)

    def _refuse(self, relay: Relay) -> None:
        """No backend: answer as configured, then end the connection with a FIN, not a reset.

        Closing a socket whose client data was never read makes the kernel send RST, which can destroy the
        answer in flight; so the rest of the client's data is read and dropped until it closes (or 2 s pass).
        """
        self.stats.no_backend += 1
        relay.refuse()
        client = relay.downstream.transport
        if client is not None and not client.is_closing():
            if self.settings.on_empty == "http-502":
                client.write(BAD_GATEWAY)
            if client.can_write_eof():
                client.write_eof()
            client.resume_reading()
            self.loop.call_later(2.0, client.close)
        self.finished(relay)

    async def _sweep_idle(self, idle: float) -> None:
        while True:
            await asyncio.sleep(min(1.0, idle / 2))
            cutoff = self.loop.time() - idle
            for relay in [r for r in self.relays if r.last_activity < cutoff]:
                relay.abort()
