"""The epoll engine on real sockets, below the apps: how much one stream may move per turn."""

from __future__ import annotations

import contextlib
import socket
import time

import pytest

from reconciler.proxy.engine import OUT, Engine, Relay

pytestmark = pytest.mark.integration


class Owner:
    """A relay owner that attaches the backend at its first event and counts what was relayed."""

    def __init__(self) -> None:
        self.moved = 0
        self.closed = False

    def connect_event(self, relay: Relay, mask: int) -> None:
        relay.attach(mask | OUT)

    def relay_closed(self, relay: Relay) -> None:
        self.closed = True

    def relayed(self, relay: Relay, upstream: bool, count: int) -> None:
        self.moved += count


def _pair(buffer: int) -> tuple[socket.socket, socket.socket]:
    ours, theirs = socket.socketpair()
    for sock in (ours, theirs):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
    return ours, theirs


@pytest.mark.parametrize("splice", [True, False], ids=["splice", "copy"])
def test_a_busy_stream_yields_after_its_rounds_and_finishes_later(splice: bool) -> None:
    """With one pipeful per turn, a source holding more than that is not drained in one turn; it gets its next
    turn from the ready queue (no new epoll event would come for data already there, nor for the EOF after it)
    and all of it arrives, then the EOF."""
    engine = Engine(time.monotonic, splice=splice, splice_rounds=1)
    client, sender = _pair(1 << 20)
    server, receiver = _pair(1 << 20)
    owner = Owner()
    relay = Relay(engine, owner, client)
    relay.dial(server)
    engine.run_ready(0)  # the backend side's first event: attached
    payload = bytes(range(256)) * 1600  # 400 KiB: a full first read, then more than one 256 KiB pipeful
    sender.setblocking(False)
    sent = sender.send(payload)
    assert sent > 64 * 1024 + 256 * 1024, f"the socket buffer took only {sent} bytes"
    sender.shutdown(socket.SHUT_WR)
    engine.run_ready(0)
    first_turn = owner.moved
    assert 64 * 1024 < first_turn < sent, "one turn moved everything: no yield"
    assert engine.next_deadline() == engine.now, "the yielded stream is not queued for its next turn"
    engine.run_timers()  # how the agent's loop gives the next turn (in-process data plane: a loop timer)
    assert owner.moved > first_turn, "the timer path gave the yielded stream no turn"
    received, ended = b"", False
    receiver.setblocking(False)
    deadline = time.monotonic() + 5
    while not ended and time.monotonic() < deadline:
        engine.run_ready(0)
        with contextlib.suppress(BlockingIOError):
            chunk = receiver.recv(1 << 20)
            received += chunk
            ended = not chunk
    assert received == payload[:sent]
    assert ended, "the EOF behind the data was not passed on"
    relay.close()
    for sock in (sender, receiver):
        sock.close()
    engine.close()


class FaultyOwner(Owner):
    """Raises on the first connect event it sees, as a defect would."""

    def __init__(self) -> None:
        super().__init__()
        self.faults = 1

    def connect_event(self, relay: Relay, mask: int) -> None:
        if self.faults:
            self.faults -= 1
            raise RuntimeError("a defect")
        super().connect_event(relay, mask)


def test_a_failing_handler_costs_its_connection_not_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    """The exception is logged, that relay is reset, and the next connection on the same engine is relayed."""
    engine = Engine(time.monotonic)
    owner = FaultyOwner()
    relays = []
    for _ in range(2):
        client, sender = _pair(1 << 16)
        server, receiver = _pair(1 << 16)
        relay = Relay(engine, owner, client)
        relay.dial(server)
        relays.append((relay, sender, receiver))
    engine.run_ready(0)  # both backend sides report: the first raises, the second attaches
    (broken, broken_sender, _), (working, sender, receiver) = relays
    assert broken.closed
    assert owner.closed
    assert "a defect" in caplog.text
    assert not working.closed
    sender.send(b"still relaying")
    receiver.settimeout(2)
    deadline = time.monotonic() + 2
    received = b""
    while received != b"still relaying" and time.monotonic() < deadline:
        engine.run_ready(0.05)
        with contextlib.suppress(BlockingIOError, TimeoutError):
            receiver.setblocking(False)
            received += receiver.recv(100)
    assert received == b"still relaying"
    broken_sender.settimeout(2)
    assert broken_sender.recv(1) == b"", "the broken relay's client was left hanging"
    working.close()
    for _, ours, theirs in relays:
        ours.close()
        theirs.close()
    engine.close()
