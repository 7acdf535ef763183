"""The data path: one edge-triggered epoll, two small objects per relayed connection, splice(2) for bulk.

Chosen by measurement (bench/proxy.py and docs/decisions.md): asyncio Protocols, even on uvloop, cost about
160 us of CPU per short proxied connection here (transport and protocol objects, a dial task, futures), half of
HAProxy's rate; this loop does the same work in about half that, because each connection is a handful of
syscalls and a few attribute lookups. Bulk transfers move to ``splice`` through a pooled pipe after the first
full read (HAProxy's ``splice-auto``), so their bytes never enter Python.

Rules that each fixed a real defect of the old tools:
- data from the client before the backend is connected is buffered (bounded), never dropped;
- a half-close is passed on once everything before it was written, and the other direction stays open; the
  sockets are closed when both directions are done, or at once on an error: no descriptor leaks;
- flow control both ways: when one side cannot take more, the other side is not read;
- a descriptor number closed during one batch of events may be reused by an accept in the same batch, so the
  batch's remaining events for that number are dropped instead of reaching the new connection;
- one busy stream can't hold the loop: a side moves at most ``SPLICE_ROUNDS`` pipefuls (or as many bytes
  copied, where splice is off) per turn, then waits in the engine's ready queue behind the other connections'
  events (edge-triggered epoll would not report the data it left behind again).

The engine knows nothing about apps or backends: a ``Relay`` is given its client socket and, later, a connected
(or connecting) server socket by its owner, and tells the owner what happened through ``RelayOwner``.
"""

from __future__ import annotations

import _socket
import contextlib
import fcntl
import heapq
import logging
import os
import select
import socket
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

IN, OUT, RDHUP, HUP, ERR, ET = (
    select.EPOLLIN,
    select.EPOLLOUT,
    select.EPOLLRDHUP,
    select.EPOLLHUP,
    select.EPOLLERR,
    select.EPOLLET,
)
WATCH = IN | OUT | RDHUP | ET
MORE = 1 << 20  # not an epoll bit: set in the events the engine makes up itself
AGAIN = IN | MORE  # a yielded handler's next turn: read until EAGAIN, as it stopped with data (or EOF) left
READABLE = IN | RDHUP | HUP | ERR
ENDED = RDHUP | HUP | ERR
FIN = RDHUP | HUP  # the peer's FIN was in when epoll looked: what it sent before is all queued already
# ... and no error with it: after a reset the next read must raise, so the other side is reset too, not closed
FIN_ONLY = frozenset({RDHUP, HUP, RDHUP | HUP})
DONTWAIT = socket.MSG_DONTWAIT
CHUNK = 65536
PENDING_LIMIT = 256 * 1024  # client bytes buffered while the backend connects
SPLICE = hasattr(os, "splice")
SPLICE_FLAGS = 1 | 2  # SPLICE_F_MOVE | SPLICE_F_NONBLOCK
PIPE_SIZE = 256 * 1024  # measured: 64 KiB pipes cost 15-20 % of bulk throughput, 1 MiB gained nothing over this
SPLICE_ROUNDS = 16  # pipefuls a side moves per turn (up to 4 MiB) before the other connections get theirs
F_SETPIPE_SZ = 1031
LINGER_RESET = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # struct linger {on, 0 s}: close sends RST


# Relay sockets are the C type, not socket.socket: its Python-level __init__ and close cost about 2 us of
# every short connection here, and nothing of what they add (makefile, io refs) is used.
Sock = _socket.socket


class Handler(Protocol):
    def on_event(self, mask: int) -> None: ...

    def on_error(self) -> None:
        """``on_event`` raised (a defect): leave a safe state; the engine logs it and goes on."""


class Pipe:
    """A kernel pipe that carries one direction's bytes from socket to socket; ``held`` is what it holds."""

    __slots__ = ("held", "read", "write")

    def __init__(self) -> None:
        self.read, self.write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.held = 0
        # above /proc/sys/fs/pipe-max-size for an unprivileged user: keep the default size
        with contextlib.suppress(OSError):
            fcntl.fcntl(self.write, F_SETPIPE_SZ, PIPE_SIZE)

    def close(self) -> None:
        os.close(self.read)
        os.close(self.write)


class Engine:
    """One epoll and a heap of timers. Not thread-safe: one engine per event loop or worker process."""

    def __init__(
        self, clock: Callable[[], float], *, splice: bool = SPLICE, splice_rounds: int = SPLICE_ROUNDS
    ) -> None:
        self.epoll = select.epoll()
        self.clock = clock
        self.now = clock()
        self.splice = splice
        self.splice_rounds = splice_rounds
        self.copy_reads = splice_rounds * (PIPE_SIZE // CHUNK)  # the same bytes per turn where splice is off
        self.handlers: dict[int, Handler] = {}
        self._again: list[Handler] = []  # handlers that stopped before their work was done: run next turn
        self.closed_in_batch: set[int] = set()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._sequence = 0
        self._pipes: list[Pipe] = []
        self.on_earlier_deadline: Callable[[float], None] | None = None

    def fileno(self) -> int:
        return self.epoll.fileno()

    # --- descriptors -----------------------------------------------------------------------------------------

    def watch(self, fd: int, handler: Handler, mask: int = WATCH) -> None:
        self.handlers[fd] = handler
        self.epoll.register(fd, mask)

    def unwatch(self, fd: int) -> None:
        """Stop handling ``fd`` without closing it."""
        if self.handlers.pop(fd, None) is not None:
            self.epoll.unregister(fd)

    def modify(self, fd: int, mask: int) -> None:
        self.epoll.modify(fd, mask)

    def close_socket(self, sock: Sock, *, reset: bool = False) -> None:
        """Close ``sock`` (leaving epoll with it); with ``reset`` the peer gets RST instead of FIN."""
        fd = sock.fileno()
        if fd < 0:
            return
        self.handlers.pop(fd, None)
        self.closed_in_batch.add(fd)
        if reset:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
        sock.close()

    # --- pipes -----------------------------------------------------------------------------------------------

    def take_pipe(self) -> Pipe:
        return self._pipes.pop() if self._pipes else Pipe()

    def give_pipe(self, pipe: Pipe) -> None:
        if pipe.held == 0 and len(self._pipes) < 64:
            self._pipes.append(pipe)
        else:
            pipe.close()

    # --- timers ----------------------------------------------------------------------------------------------

    def call_at(self, deadline: float, callback: Callable[[], None]) -> None:
        self._sequence += 1
        heapq.heappush(self._timers, (deadline, self._sequence, callback))
        if self._timers[0][2] is callback and self.on_earlier_deadline is not None:
            self.on_earlier_deadline(deadline)

    def next_deadline(self) -> float | None:
        if self._again:
            return self.now
        return self._timers[0][0] if self._timers else None

    def run_timers(self) -> None:
        """Run the timers that are due, then give the handlers that yielded their next turn."""
        self._run_due()
        if self._again:
            again, self._again = self._again, []
            self._run_again(again)

    def _run_due(self) -> None:
        self.now = now = self.clock()
        timers = self._timers
        while timers and timers[0][0] <= now:
            callback = heapq.heappop(timers)[2]
            try:
                callback()
            except Exception:
                log.exception("proxy timer failed callback=%r", callback)

    # --- turns -----------------------------------------------------------------------------------------------

    def again(self, handler: Handler) -> None:
        """``handler`` has more to do but yields: it gets an ``AGAIN`` event after the events that are ready now."""
        self._again.append(handler)
        if len(self._again) == 1 and self.on_earlier_deadline is not None:
            self.on_earlier_deadline(self.now)

    def _run_again(self, again: list[Handler]) -> None:
        for handler in again:
            try:
                handler.on_event(AGAIN)
            except Exception:
                self._failed(handler)

    def _failed(self, handler: Handler) -> None:
        """A defect in one handler costs that connection (or nothing), never the loop and every other one."""
        log.exception("proxy event handler failed handler=%r", handler)
        try:
            handler.on_error()
        except Exception:
            log.exception("proxy event handler failed to recover handler=%r", handler)

    # --- the loop --------------------------------------------------------------------------------------------

    def run_ready(self, timeout: float = 0) -> None:
        """Handle what epoll has ready (waiting up to ``timeout`` seconds, not at all when a handler yielded),
        then give the handlers that yielded before this their next turn, then run the timers that are due."""
        again: list[Handler] | None = None
        if self._again:  # those that yielded before this turn (not those that yield during it)
            again, self._again = self._again, []
        events = self.epoll.poll(0 if again else timeout)
        self.now = self.clock()
        handlers = self.handlers
        closed = self.closed_in_batch
        closed.clear()
        for fd, mask in events:
            if fd in closed:
                continue
            handler = handlers.get(fd)
            if handler is not None:
                try:
                    handler.on_event(mask)
                except Exception:
                    self._failed(handler)
        if again:
            self._run_again(again)
        self._run_due()

    def close(self) -> None:
        for pipe in self._pipes:
            pipe.close()
        self._pipes.clear()
        self.epoll.close()


class RelayOwner(Protocol):
    """What a relay reports to whoever made it (the app)."""

    def connect_event(self, relay: Relay, mask: int) -> None: ...

    def relay_closed(self, relay: Relay) -> None: ...

    def relayed(self, relay: Relay, upstream: bool, count: int) -> None: ...


class Side:
    """One socket of a relay. ``pending`` and ``pipe`` hold what was read from it and not yet written on."""

    __slots__ = ("connected", "eof", "eof_passed", "fd", "peer", "pending", "pipe", "relay", "sock", "upstream")

    def __init__(self, relay: Relay, sock: Sock, *, connected: bool, upstream: bool) -> None:
        self.relay: Relay | None = relay  # None once closed: no cycle left for the garbage collector
        self.sock = sock
        self.fd = sock.fileno()
        self.peer: Side | None = None
        self.connected = connected
        self.eof = False  # read EOF from this socket
        self.eof_passed = False  # and passed it on to the peer (shutdown of its write side)
        self.pending = b""
        self.pipe: Pipe | None = None
        self.upstream = upstream  # True for the client socket: what it sends goes up to the backend

    def on_error(self) -> None:
        if self.relay is not None:
            self.relay.close(reset=True)

    def on_event(self, mask: int) -> None:
        relay = self.relay
        if relay is None:
            return
        if not self.connected:
            relay.owner.connect_event(relay, mask)
            return
        peer = self.peer
        if peer is None:  # no backend (yet): buffer, or drop when refused
            relay.read_unpaired(self, mask)
            return
        if mask & OUT and (peer.pending or peer.pipe is not None):
            relay.pump(peer, self, True)
            if relay.closed:
                return
        if mask & READABLE:
            relay.pump(self, peer, bool(mask & (ENDED | MORE)), mask & (FIN | ERR) in FIN_ONLY)


class Relay:
    """A client connection and, once its owner dialled one, a backend connection."""

    __slots__ = (
        "backend",
        "client",
        "closed",
        "engine",
        "last_activity",
        "owner",
        "refused",
        "server",
        "started",
        "tried",
    )

    def __init__(self, engine: Engine, owner: RelayOwner, sock: Sock) -> None:
        self.engine = engine
        self.owner = owner
        self.client = Side(self, sock, connected=True, upstream=True)
        self.server: Side | None = None
        self.closed = False
        self.refused = False
        self.last_activity = self.started = engine.now
        self.backend: Any = None  # the owner's bookkeeping: the backend being dialled or connected
        self.tried: list[Any] = []
        engine.watch(self.client.fd, self.client)

    # --- the backend side ------------------------------------------------------------------------------------

    def dial(self, sock: Sock) -> None:
        """``sock`` is connecting to the backend: its first event goes to the owner's ``connect_event``."""
        self.server = Side(self, sock, connected=False, upstream=False)
        self.engine.watch(self.server.fd, self.server)

    def drop_server(self) -> None:
        """A connect failed: close that socket; the owner dials another or refuses."""
        if self.server is not None:
            self.engine.close_socket(self.server.sock, reset=True)
            self.server = None

    def attach(self, mask: int) -> None:
        """The backend is connected (``mask``: its event): send what the client already sent, relay both ways.

        No read is tried where no data can be: the client was read until a short read (new data raises a new
        event), and the backend only if this event says it is readable.
        """
        client, server = self.client, self.server
        assert server is not None
        server.connected = True
        client.peer, server.peer = server, client
        if len(client.pending) >= PENDING_LIMIT:
            self.pump(client, server, True)  # reading was paused at the limit: no new event will come
        else:
            self._flush(client, server)
        if mask & READABLE and not self.closed:
            self.pump(server, client, bool(mask & ENDED), mask & (FIN | ERR) in FIN_ONLY)

    def refuse(self, answer: bytes, linger: float) -> None:
        """No backend will come: answer, end our side with FIN, drop what the client still sends."""
        self.refused = True
        client = self.client
        client.pending = b""
        try:
            if answer:
                client.sock.send(answer, DONTWAIT)
            client.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close(reset=True)
            return
        self.read_unpaired(client, IN)
        if not self.closed:
            self.engine.call_at(self.engine.now + linger, self.close)

    def read_unpaired(self, side: Side, mask: int) -> None:
        """Client data with no backend connected: kept for it (bounded), or dropped when refused."""
        while len(side.pending) < PENDING_LIMIT or self.refused:
            data = self._receive(side)
            if data is None:
                return
            if not data:
                side.eof = True
                if self.refused:
                    self.close()
                return
            self.last_activity = self.engine.now
            if not self.refused:
                side.pending += data
            if len(data) < CHUNK and not mask & ENDED:
                return  # drained (edge-triggered: more data raises a new event)

    def _receive(self, side: Side) -> bytes | None:
        """One read: the bytes, b"" at EOF, None when there are none now (or an error closed the relay)."""
        try:
            return side.sock.recv(CHUNK, DONTWAIT)
        except BlockingIOError:
            return None
        except OSError:
            self.close(reset=True)
            return None

    # --- relaying --------------------------------------------------------------------------------------------

    def pump(self, src: Side, dst: Side, more: bool, fin: bool = False) -> None:  # noqa: PLR0911, PLR0912
        """Move bytes from ``src`` to ``dst`` until ``src`` has none, ``dst`` takes none, or EOF.

        ``more``: read until EAGAIN; otherwise a short read ends the turn (edge-triggered: new data raises a new
        event, and the event that carries EOF has RDHUP set, which sets ``more``). ``fin``: the event said the
        peer's FIN had arrived, so a short read took the last bytes before it: that is EOF, without one more read
        to be told so (one system call less for every response that ends with its connection).
        """
        if not self._flush(src, dst):
            return
        if src.eof:
            return
        if src.pipe is not None:
            self._splice(src, dst)
            return
        owner = self.owner
        send = dst.sock.send
        reads = 0
        while True:
            data = self._receive(src)
            if data is None:
                return
            if not data:
                src.eof = True
                self._flush(src, dst)
                return
            count = len(data)
            self.last_activity = self.engine.now
            owner.relayed(self, src.upstream, count)
            try:
                sent = send(data, DONTWAIT)
            except BlockingIOError:
                sent = 0
            except OSError:
                self.close(reset=True)
                return
            if sent < count:
                src.pending = data[sent:]
                return  # dst's OUT event resumes this direction
            if count == CHUNK and self.engine.splice:
                self._start_splice(src, dst)
                return
            if count < CHUNK:
                if fin:
                    src.eof = True
                    self._flush(src, dst)
                    return
                if not more:
                    return
            reads += 1
            if reads == self.engine.copy_reads:
                self.engine.again(src)
                return

    def _flush(self, src: Side, dst: Side) -> bool:  # noqa: PLR0911 - one exit per socket outcome
        """Write what ``src`` left for ``dst``; pass on ``src``'s EOF once all is written. False: ``dst`` is full."""
        if src.pending:
            try:
                sent = dst.sock.send(src.pending, DONTWAIT)
            except BlockingIOError:
                return False
            except OSError:
                self.close(reset=True)
                return False
            src.pending = src.pending[sent:]
            if src.pending:
                return False
        pipe = src.pipe
        if pipe is not None and pipe.held:
            try:
                while pipe.held:
                    pipe.held -= os.splice(pipe.read, dst.fd, pipe.held, flags=SPLICE_FLAGS)
            except BlockingIOError:
                return False
            except OSError:
                self.close(reset=True)
                return False
        if src.eof and not src.eof_passed:
            src.eof_passed = True
            if dst.eof_passed:  # both directions are done: close sends the FIN a shutdown would
                self.close()
                return False
            try:
                dst.sock.shutdown(socket.SHUT_WR)
            except OSError:
                self.close(reset=True)
                return False
        return True

    def _start_splice(self, src: Side, dst: Side) -> None:
        # splice(2) on a socket honours only the socket's own O_NONBLOCK; accepted sockets are blocking
        # (their reads pass MSG_DONTWAIT instead), so both are switched once here.
        src.sock.setblocking(False)
        dst.sock.setblocking(False)
        src.pipe = self.engine.take_pipe()
        self._splice(src, dst)

    def _splice(self, src: Side, dst: Side) -> None:
        pipe = src.pipe
        assert pipe is not None
        owner = self.owner
        for _ in range(self.engine.splice_rounds):
            try:
                count = os.splice(src.fd, pipe.write, PIPE_SIZE, flags=SPLICE_FLAGS)
            except BlockingIOError:
                return
            except OSError:
                self.close(reset=True)
                return
            if count == 0:
                src.eof = True
                self._flush(src, dst)
                return
            pipe.held += count
            self.last_activity = self.engine.now
            owner.relayed(self, src.upstream, count)
            if not self._flush(src, dst):
                return
        self.engine.again(src)

    # --- the end ---------------------------------------------------------------------------------------------

    def close(self, *, reset: bool = False) -> None:
        """Close both sockets (RST with ``reset``: an error on one side is not hidden from the other).

        The links between relay and sides are cut afterwards, so both are freed by reference counting at once
        instead of waiting, with every other connection's objects, for the cyclic garbage collector.
        """
        if self.closed:
            return
        self.closed = True
        engine = self.engine
        sides = (self.client, self.server)
        for side in sides:
            if side is None:
                continue
            engine.close_socket(side.sock, reset=reset)
            if side.pipe is not None:
                engine.give_pipe(side.pipe)
                side.pipe = None
        self.owner.relay_closed(self)
        for side in sides:
            if side is not None:
                side.relay = side.peer = None
