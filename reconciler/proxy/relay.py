"""The data path: one client connection relayed to one backend with asyncio Protocols (uvloop when installed).

Rules that each fixed a real defect of the old tools:
- reading from the client is paused until the backend is connected, and anything that still arrives (uvloop
  delivers data after ``pause_reading`` in ``connection_made``) is buffered, never dropped;
- a half-close is passed on (``write_eof``) and the connection stays open the other way; once both directions
  have seen EOF, or either side is lost, both transports are closed: no descriptor leaks;
- flow control both ways: when one side's write buffer is full, the other side stops reading.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from reconciler.proxy.app import ProxyApp
    from reconciler.proxy.backends import Backend


class _Side(asyncio.Protocol):
    """One end of a relayed connection."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.transport: asyncio.Transport | None = None
        self.eof = False
        self.lost = False

    def peer(self) -> _Side:
        return self.relay.upstream if self is self.relay.downstream else self.relay.downstream

    def pause_writing(self) -> None:
        peer = self.peer().transport
        if peer is not None and not peer.is_closing():
            peer.pause_reading()

    def resume_writing(self) -> None:
        peer = self.peer().transport
        if peer is not None and not peer.is_closing():
            peer.resume_reading()

    def data_received(self, data: bytes) -> None:
        self.relay.forward(self, data)

    def eof_received(self) -> bool:
        self.eof = True
        self.relay.half_closed(self)
        return True  # keep the transport open for the other direction

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.relay.side_lost(self, exc)


class Relay:
    """A client connection and, once dialled, its backend connection."""

    def __init__(self, app: ProxyApp) -> None:
        self.app = app
        self.downstream = _Downstream(self)
        self.upstream: _Side = Upstream(self)
        self.pending: list[bytes] = []
        self.last_activity = 0.0
        self.connected = False
        self.finished = False
        self.backend: Backend | None = None
        self.refused = False
        self.slot: asyncio.Semaphore | None = None

    def forward(self, side: _Side, data: bytes) -> None:
        if self.refused:
            return
        self.last_activity = self.app.loop.time()
        if side is self.downstream:
            self.app.stats.bytes_in += len(data)
            target = self.upstream.transport
            if target is None or not self.connected:
                self.pending.append(data)
                return
        else:
            self.app.stats.bytes_out += len(data)
            target = self.downstream.transport
        if target is not None and not target.is_closing():
            target.write(data)

    def refuse(self) -> None:
        """No backend will come: drop what the client sent and what it still sends."""
        self.refused = True
        self.connected = True
        self.pending.clear()

    def half_closed(self, side: _Side) -> None:
        if self.refused:
            if side.transport is not None:
                side.transport.close()
            return
        peer = side.peer()
        if side is self.downstream and not self.connected:
            return  # passed on when the backend connects
        if peer.transport is not None and not peer.transport.is_closing() and peer.transport.can_write_eof():
            peer.transport.write_eof()
        if side.eof and peer.eof:
            self.close()

    def side_lost(self, side: _Side, exc: Exception | None) -> None:
        peer = side.peer().transport
        if peer is not None and not peer.is_closing():
            if exc is not None:
                peer.abort()
            else:
                peer.close()  # flushes what is still buffered
        self.finish()

    def attach(self, transport: asyncio.Transport) -> None:
        """The backend is connected: send what the client already sent, then relay both ways."""
        self.connected = True
        for data in self.pending:
            transport.write(data)
        self.pending.clear()
        client = self.downstream.transport
        if client is None or client.is_closing():
            transport.close()
            return
        if self.downstream.eof and transport.can_write_eof():
            transport.write_eof()
        client.resume_reading()

    def close(self) -> None:
        for side in (self.downstream, self.upstream):
            if side.transport is not None and not side.transport.is_closing():
                side.transport.close()

    def abort(self) -> None:
        for side in (self.downstream, self.upstream):
            if side.transport is not None:
                side.transport.abort()

    def finish(self) -> None:
        if not self.finished and (self.downstream.lost and (self.upstream.lost or self.upstream.transport is None)):
            self.finished = True
            self.app.finished(self)


class _Downstream(_Side):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, but have its methods.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.pause_reading()
        self.relay.last_activity = self.relay.app.loop.time()
        self.relay.app.accepted(self.relay)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.relay.app.client_gone(self.relay)


class Upstream(_Side):
    """The backend end; created by ``loop.create_connection``."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, but have its methods.
        self.transport = cast(asyncio.Transport, transport)


def new_client_protocol(app: ProxyApp) -> asyncio.Protocol:
    return Relay(app).downstream
