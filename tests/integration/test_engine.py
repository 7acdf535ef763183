"""The epoll engine on real sockets, below the apps: how much one stream may move per turn."""

from __future__ import annotations

import contextlib
import socket
import time
from typing import TypeVar

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


def _read_to_end(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(100):
        received += chunk
    return received


class CountingSocket(socket.socket):
    """A TCP socket that counts the reads the relay makes on it."""

    reads = 0

    def recv(self, size: int, flags: int = 0) -> bytes:
        self.reads += 1
        return super().recv(size, flags)


Ours = TypeVar("Ours", bound=socket.socket)


def _tcp_pair(ours_type: type[Ours]) -> tuple[Ours, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        theirs = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
    ours = ours_type(accepted.family, accepted.type, accepted.proto, fileno=accepted.detach())
    return ours, theirs


def test_an_answer_that_ends_its_connection_is_relayed_with_one_read() -> None:
    """The backend answers and closes, and one epoll event reports both: the read that takes the answer is short,
    so the FIN already in is the next thing (TCP keeps order) and is passed on without a read that returns
    nothing. The client gets the answer, then EOF."""
    engine = Engine(time.monotonic)
    client, user = _tcp_pair(socket.socket)
    server, backend = _tcp_pair(CountingSocket)
    owner = Owner()
    relay = Relay(engine, owner, client)
    relay.dial(server)
    engine.run_ready(0)  # attached
    backend.sendall(b"HTTP/1.0 200 OK\r\n\r\nok")
    backend.shutdown(socket.SHUT_WR)
    time.sleep(0.05)  # loopback: both in before the engine looks
    engine.run_ready(0)
    assert server.reads == 1
    user.settimeout(2)
    assert _read_to_end(user) == b"HTTP/1.0 200 OK\r\n\r\nok"  # and then EOF, not a reset
    relay.close()
    for sock in (user, backend):
        sock.close()
    engine.close()


def test_a_backend_reset_after_its_answer_resets_the_client() -> None:
    """A backend that answers and then resets (a crash, SO_LINGER 0) must not look like one that finished: the
    client is reset too, not given a clean EOF, whatever epoll reported with the reset."""
    engine = Engine(time.monotonic)
    client, user = _tcp_pair(socket.socket)
    server, backend = _tcp_pair(socket.socket)
    relay = Relay(engine, Owner(), client)
    relay.dial(server)
    engine.run_ready(0)  # attached
    backend.sendall(b"half an answ")
    backend.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    backend.close()
    time.sleep(0.05)
    engine.run_ready(0)
    assert relay.closed
    user.settimeout(2)
    with pytest.raises(ConnectionResetError):
        _read_to_end(user)  # what the backend sent may come first; then the reset, not b""
    user.close()
    engine.close()
