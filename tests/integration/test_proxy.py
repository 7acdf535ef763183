"""The TCP proxy on loopback with our own echo servers: layout, failover, hot reload, half-close, descriptors."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
import uvloop

from reconciler.model import TCPProxy
from reconciler.model.proxy_config import AppConfig, AppSettings, CheckSettings
from reconciler.planning.tcp_proxy import desired_apps
from reconciler.proxy.engine import Relay, Side
from reconciler.proxy.manager import ProxyManager
from reconciler.proxy.workers import WorkerProcesses, worker_main
from reconciler.testing import FakeResolver
from tests.integration.agents import free_port, free_ports

pytestmark = pytest.mark.integration

FAST_CHECKS = CheckSettings(interval=0.2, timeout=0.2, rise=2, fall=3)


class Echo:
    """A target that answers ``<tag>:<everything received>`` once the client half-closes."""

    def __init__(self, tag: str, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.tag = tag.encode()
        self.host = host
        self.port = port or free_port()
        self.server: asyncio.Server | None = None
        self.accepted = 0

    async def start(self) -> Echo:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.accepted += 1
            try:
                data = await reader.read()
                writer.write(self.tag + b":" + data)
                await writer.drain()
            except ConnectionError:
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(handle, self.host, self.port, reuse_address=True)
        return self

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class Streamer:
    """A target that echoes every chunk as it arrives (for long-lived streams)."""

    def __init__(self) -> None:
        self.port = free_port()

    async def start(self) -> asyncio.Server:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            writer.close()

        return await asyncio.start_server(handle, "127.0.0.1", self.port)


@contextlib.contextmanager
def unanswered_port() -> Iterator[str]:
    """A listener whose accept queue is full: connects to it hang (Linux drops the SYN) until they time out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)  # the queue holds one connection
    filler = socket.create_connection(listener.getsockname(), timeout=2)
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        filler.close()
        listener.close()


async def ask(port: int, payload: bytes = b"ping", timeout: float = 5.0, host: str = "127.0.0.1") -> bytes:
    """Send, half-close, read to EOF."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    writer.write(payload)
    writer.write_eof()
    answer = await asyncio.wait_for(reader.read(), timeout)
    writer.close()
    return answer


class Run:
    """Runs a scenario on one event loop, with managers whose data plane is in-process or in workers."""

    def __init__(self, loop: str, workers: int) -> None:
        self.loop = loop
        self.workers = workers
        self.managers: list[ProxyManager] = []

    def __call__(self, scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
        factory = uvloop.new_event_loop if self.loop == "uvloop" else None
        with asyncio.Runner(loop_factory=factory) as loop:
            loop.run(self._closing_managers(scenario))

    async def _closing_managers(self, scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """A failed scenario still stops its managers (worker processes left running would hang the loop)."""
        try:
            await scenario()
        finally:
            for manager in self.managers:
                await manager.close()

    def manager(self, **settings: Any) -> ProxyManager:
        settings.setdefault("resolver", FakeResolver())  # names in these tests are unknown: never ask a real DNS
        manager = ProxyManager(drain=1, workers=self.workers, **settings)
        self.managers.append(manager)
        return manager

    async def one_app(
        self,
        key: str,
        targets: tuple[tuple[str, int], ...],
        settings: AppSettings | None = None,
        host: str = "127.0.0.1",
    ) -> tuple[ProxyManager, int]:
        """A manager running one app ``key`` on a free port of ``host``, without health checks."""
        port = free_port()
        manager = self.manager()
        config = AppConfig(key, ((host, port),), targets, settings or AppSettings(), None)
        await manager.apply({key: config})
        return manager, port

    def descriptors(self, manager: ProxyManager) -> int:
        """Open descriptors of the processes that carry the traffic."""
        if isinstance(manager.data_path, WorkerProcesses):
            return sum(len(os.listdir(f"/proc/{pid}/fd")) for pid in manager.data_path.pids())
        return len(os.listdir("/proc/self/fd"))


@pytest.fixture(params=[("asyncio", 0), ("uvloop", 0), ("uvloop", 2)], ids=["asyncio", "uvloop", "uvloop-2-workers"])
def run(request: pytest.FixtureRequest) -> Run:
    """Every scenario on asyncio's own loop and on uvloop (what the agent uses), and with two worker processes."""
    return Run(*request.param)


@pytest.fixture(params=["asyncio", "uvloop"])
def run_in_process(request: pytest.FixtureRequest) -> Run:
    return Run(request.param, 0)


async def eventually(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Worker processes report counters every half second: wait for them."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def _proxy_document(apps: list[dict[str, Any]]) -> TCPProxy:
    return TCPProxy.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "TCPProxy",
            "metadata": {"name": "challenge"},
            "spec": {"apps": apps, "healthCheck": {"interval": "200ms", "timeout": "200ms", "rise": 2, "fall": 3}},
        }
    )


def test_the_challenge_layout(run: Run) -> None:
    """Three apps with four ports each: every port accepts, each app reaches only its own targets, in
    round-robin order; an unresolvable target is excluded and reported."""

    async def scenario() -> None:
        targets = {name: [await Echo(f"{name}{i}").start() for i in range(2)] for name in ("a", "b", "c")}
        distinct = iter(free_ports(4 * len(targets)))
        ports = {name: [next(distinct) for _ in range(4)] for name in targets}
        apps = [
            {
                "name": f"app-{name}",
                "listen": [f"127.0.0.1:{port}" for port in ports[name]],
                "targets": [echo.address for echo in echoes] + (["nonexistent.invalid:7000"] if name == "c" else []),
            }
            for name, echoes in targets.items()
        ]
        manager = run.manager()
        await manager.apply(desired_apps(_proxy_document(apps)))
        await asyncio.sleep(0.5)  # one check round resolves (or fails to resolve) every target
        for name in targets:
            answers = [await ask(port) for port in ports[name] for _ in range(2)]
            tags = [answer.split(b":")[0].decode() for answer in answers]
            if run.workers:  # each worker keeps its own round-robin: the kernel picks the worker
                assert set(tags) == {f"{name}0", f"{name}1"}, tags
                assert abs(tags.count(f"{name}0") - tags.count(f"{name}1")) <= run.workers, tags
            else:
                assert tags == [f"{name}0", f"{name}1"] * 4, tags
        snapshot = manager.snapshot()
        [unresolvable] = [t for t in snapshot["challenge/app-c"].targets if t.address.startswith("nonexistent")]
        assert unresolvable.health == "down"
        assert unresolvable.reason.startswith("unresolvable")
        assert unresolvable.connections == 0
        assert sorted(snapshot["challenge/app-a"].listen) == sorted(f"127.0.0.1:{p}" for p in ports["a"])
        await manager.close()
        for echoes in targets.values():
            for echo in echoes:
                await echo.stop()

    run(scenario)


def test_ipv6_listeners_and_targets(run: Run) -> None:
    """An app on [::1] relays to an IPv6 target and to an IPv4 one; the IPv4 port of the same number is not taken."""

    async def scenario() -> None:
        six, four = await Echo("six", host="::1").start(), await Echo("four").start()
        manager, port = await run.one_app("v/app", ((six.address, 1), (four.address, 1)), host="::1")
        answers = {await ask(port, host="::1") for _ in range(4)}
        assert answers == {b"six:ping", b"four:ping"}
        with pytest.raises(ConnectionRefusedError):  # IPV6_V6ONLY: the listener is IPv6 only
            await ask(port, host="127.0.0.1")
        await manager.close()
        await six.stop()
        await four.stop()

    run(scenario)


def test_a_killed_target_costs_no_client_a_failure(run: Run) -> None:
    """One of two targets dies during 10 s of new connections: no client sees an error (retries); it is marked
    down within fall x interval and up again within rise x interval after it returns."""

    async def scenario() -> None:
        first, second = await Echo("one").start(), await Echo("two").start()
        port = free_port()
        config = AppConfig(
            "t/app",
            (("127.0.0.1", port),),
            ((first.address, 1), (second.address, 1)),
            AppSettings(retries=2),
            FAST_CHECKS,
        )
        manager = run.manager()
        await manager.apply({"t/app": config})
        backend = next(b for b in manager.running["t/app"].backends if b.address == second.address)
        failures, answers = 0, 0
        killed_at = returned_at = down_after = up_after = None
        started = time.monotonic()
        while time.monotonic() - started < 10:
            elapsed = time.monotonic() - started
            if killed_at is None and elapsed > 2:
                await second.stop()
                killed_at = time.monotonic()
            if killed_at and down_after is None and not backend.up:
                down_after = time.monotonic() - killed_at
            if returned_at is None and elapsed > 6:
                second = await Echo("two", second.port).start()
                returned_at = time.monotonic()
            if returned_at and up_after is None and backend.up:
                up_after = time.monotonic() - returned_at
            try:
                answer = await ask(port, timeout=2)
                answers += 1
                failures += 0 if answer.endswith(b":ping") else 1
            except (OSError, TimeoutError):
                failures += 1
            await asyncio.sleep(0.01)
        assert answers > 300
        assert failures == 0
        # fall x interval (jittered up to +10 %), plus the failing check's own timeout and scheduling slack
        assert down_after is not None
        assert down_after <= 3 * 0.2 * 1.1 + 0.2 + 0.3, down_after
        assert up_after is not None
        assert up_after <= 2 * 0.2 * 1.1 + 0.3, up_after
        await eventually(lambda: manager.snapshot()["t/app"].counters.retries > 0)
        await manager.close()
        await first.stop()
        await second.stop()

    run(scenario)


def test_hot_reload_keeps_established_streams(run: Run) -> None:
    """A target and a port are added while 100 long-lived connections stream: none is dropped; the new port serves."""

    async def scenario() -> None:
        streamer = Streamer()
        server = await streamer.start()
        extra = await Echo("new").start()
        port, new_port = free_port(), free_port()
        base = AppConfig("r/app", (("127.0.0.1", port),), ((f"127.0.0.1:{streamer.port}", 1),), AppSettings(), None)
        manager = run.manager()
        await manager.apply({"r/app": base})
        streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(100)]
        stop = asyncio.Event()
        errors: list[BaseException] = []

        async def stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> int:
            rounds = 0
            payload = f"stream {number} ".encode() * 20
            try:
                while not stop.is_set():
                    writer.write(payload)
                    await writer.drain()
                    assert await asyncio.wait_for(reader.readexactly(len(payload)), 2) == payload
                    rounds += 1
                    await asyncio.sleep(0.02)
            except BaseException as exc:
                errors.append(exc)
                raise
            return rounds

        tasks = [asyncio.create_task(stream(r, w, i)) for i, (r, w) in enumerate(streams)]
        await asyncio.sleep(1)
        reloaded = AppConfig(
            "r/app",
            (("127.0.0.1", port), ("127.0.0.1", new_port)),
            ((f"127.0.0.1:{streamer.port}", 1), (extra.address, 1)),
            AppSettings(),
            None,
        )
        await manager.apply({"r/app": reloaded})
        answers = {await ask(new_port) for _ in range(4)}
        await asyncio.sleep(1)
        stop.set()
        rounds = await asyncio.gather(*tasks)
        assert errors == []
        assert min(rounds) > 10
        assert b"new:ping" in answers
        for _, writer in streams:
            writer.close()
        await manager.close()
        server.close()
        await extra.stop()

    run(scenario)


def test_half_close_delivers_the_whole_answer(run: Run) -> None:
    """A client that shuts down its write side still receives the complete (large) response."""

    async def scenario() -> None:
        echo = await Echo("big").start()
        manager, port = await run.one_app("h/app", ((echo.address, 1),))
        payload = os.urandom(4 << 20)
        answer = await ask(port, payload, timeout=20)
        assert answer == b"big:" + payload
        await manager.close()
        await echo.stop()

    run(scenario)


def test_ten_thousand_connections_leak_no_descriptor(run: Run) -> None:
    """After 10,000 proxied connections (some with early half-close), the process holds no more descriptors."""

    async def scenario() -> None:
        echo = await Echo("fd").start()
        manager, port = await run.one_app("f/app", ((echo.address, 1),))
        await ask(port)
        before = run.descriptors(manager)
        semaphore = asyncio.Semaphore(64)

        async def one() -> None:
            async with semaphore:
                assert await ask(port) == b"fd:ping"

        await asyncio.gather(*(one() for _ in range(10_000)))
        await eventually(lambda: manager.snapshot()["f/app"].counters.connections == 10_001)
        await eventually(lambda: manager.snapshot()["f/app"].counters.active == 0)
        assert run.descriptors(manager) <= before
        await manager.close()
        await echo.stop()

    run(scenario)


def test_a_target_failing_its_connects_is_ejected_then_readmitted(run_in_process: Run) -> None:
    """Outlier detection: after ``eject_after`` failed connects in a row (no health check to notice) the target is
    out of the choice, and back after ``eject_for``. In-process: the per-worker round-robin order is exact."""
    run = run_in_process

    async def scenario() -> None:
        echo = await Echo("alive").start()
        dead = f"127.0.0.1:{free_port()}"
        settings = AppSettings(retries=1, eject_after=3, eject_for=1.0)
        manager, port = await run.one_app("o/app", ((dead, 1), (echo.address, 1)), settings)

        def state() -> tuple[int, int, bool]:
            app = manager.snapshot()["o/app"]
            return app.counters.connect_failures, app.counters.ejections, app.targets[0].ejected

        assert [await ask(port) for _ in range(12)] == [b"alive:ping"] * 12
        assert state() == (3, 1, True)  # the first six connections tried it every other time; then never
        await asyncio.sleep(1.2)
        assert state() == (3, 1, False)  # readmitted
        assert [await ask(port) for _ in range(2)] == [b"alive:ping"] * 2
        assert state()[0] == 4  # tried again
        await manager.close()
        await echo.stop()

    run(scenario)


def test_the_last_target_is_never_ejected(run_in_process: Run) -> None:
    """With no other usable target, taking the failing one out would only turn every client away."""
    run = run_in_process

    async def scenario() -> None:
        dead = f"127.0.0.1:{free_port()}"
        manager, port = await run.one_app("n/app", ((dead, 1),), AppSettings(retries=0, eject_after=2))
        for _ in range(5):
            assert await ask(port) == b""
        stats = manager.snapshot()["n/app"].counters
        assert (stats.connect_failures, stats.ejections, stats.no_backend) == (5, 0, 5)
        await manager.close()

    run(scenario)


def test_an_empty_pool_answers_as_configured(run: Run) -> None:
    """No usable backend: the client is closed, or gets the old tool's 502 line; the proxy keeps running."""

    async def scenario() -> None:
        dead = f"127.0.0.1:{free_port()}"
        settings = AppSettings(on_empty="http-502", connect_timeout=0.5)
        manager, port = await run.one_app("e/app", ((dead, 1),), settings)
        assert (await ask(port)).startswith(b"HTTP/1.1 502 Bad Gateway")
        assert (await ask(port)).startswith(b"HTTP/1.1 502")
        await eventually(lambda: manager.snapshot()["e/app"].counters.no_backend == 2)
        await manager.close()

    run(scenario)


def test_a_hanging_connect_fails_over_after_the_connect_timeout(run: Run) -> None:
    """A target that never answers the SYN: after ``connectTimeout`` the connection goes to the next target."""

    async def scenario() -> None:
        echo = await Echo("alive").start()
        settings = AppSettings(connect_timeout=0.3, retries=1)
        with unanswered_port() as silent:
            # listed first: the first connection of every worker tries it (round-robin starts at the first)
            manager, port = await run.one_app("t/app", ((silent, 1), (echo.address, 1)), settings)
            started = time.monotonic()
            answers = await asyncio.gather(*(ask(port) for _ in range(4)))
            assert answers == [b"alive:ping"] * 4
            assert time.monotonic() - started >= 0.3  # at least one waited for the timeout
            await eventually(lambda: manager.snapshot()["t/app"].counters.connect_failures >= 1)
            stats = manager.snapshot()["t/app"].counters
            assert stats.retries == stats.connect_failures
            if run.workers == 0:
                assert stats.connect_failures == 2  # round-robin alternates: every other one
            assert stats.no_backend == 0
        await manager.close()
        await echo.stop()

    run(scenario)


def test_closed_connections_leave_nothing_to_the_garbage_collector(run_in_process: Run) -> None:
    """Relays are freed when they close, not by the cyclic collector: measured, a cycle per connection made the
    collector a fifth of the proxy's own CPU time and capped the connection rate."""
    run = run_in_process

    async def scenario() -> None:
        echo = await Echo("gc").start()
        manager, port = await run.one_app("g/app", ((echo.address, 1),))
        gc.collect()
        gc.disable()
        try:
            for _ in range(50):
                assert await ask(port) == b"gc:ping"
            await eventually(lambda: manager.snapshot()["g/app"].counters.active == 0)
            alive = [o for o in gc.get_objects() if isinstance(o, (Relay, Side))]
        finally:
            gc.enable()
        assert alive == []
        await manager.close()
        await echo.stop()

    run(scenario)


def test_removed_ports_and_targets_drain(run: Run) -> None:
    """Removing a port and the target in use: new connections are refused on the port, established ones finish."""

    async def scenario() -> None:
        streamer, other = Streamer(), await Echo("other").start()
        server = await streamer.start()
        port, kept = free_port(), free_port()
        manager = run.manager()
        both = AppConfig(
            "d/app",
            (("127.0.0.1", port), ("127.0.0.1", kept)),
            ((f"127.0.0.1:{streamer.port}", 1),),
            AppSettings(),
            None,
        )
        await manager.apply({"d/app": both})
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"before")
        assert await reader.readexactly(6) == b"before"
        after = AppConfig("d/app", (("127.0.0.1", kept),), ((other.address, 1),), AppSettings(), None)
        await manager.apply({"d/app": after})
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"still here")
        assert await reader.readexactly(10) == b"still here"
        assert await ask(kept) == b"other:ping"
        writer.close()
        await manager.close()
        server.close()
        await other.stop()

    run(scenario)


def test_the_connection_limit_queues_instead_of_failing(run_in_process: Run) -> None:
    run = run_in_process
    """With maxConnections 2, a third client waits for a slot and is then served.

    In-process only: worker processes each hold a share of the limit (tests/unit: per_worker) and the kernel,
    not the load, picks the worker, so which client waits is not deterministic there.
    """

    async def scenario() -> None:
        streamer = Streamer()
        server = await streamer.start()
        target = ((f"127.0.0.1:{streamer.port}", 1),)
        manager, port = await run.one_app("l/app", target, AppSettings(max_connections=2))
        first = await asyncio.open_connection("127.0.0.1", port)
        second = await asyncio.open_connection("127.0.0.1", port)
        third = await asyncio.open_connection("127.0.0.1", port)
        third[1].write(b"third")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(third[0].readexactly(5), 0.5)
        await eventually(lambda: manager.snapshot()["l/app"].counters.at_limit == 1)
        first[1].close()
        assert await asyncio.wait_for(third[0].readexactly(5), 3) == b"third"
        for _, writer in (second, third):
            writer.close()
        await manager.close()
        server.close()

    run(scenario)


def test_idle_connections_are_closed(run: Run) -> None:
    """A connection with no traffic for idleTimeout is closed; an active one is not."""

    async def scenario() -> None:
        streamer = Streamer()
        server = await streamer.start()
        target = ((f"127.0.0.1:{streamer.port}", 1),)
        manager, port = await run.one_app("i/app", target, AppSettings(idle_timeout=0.5))
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
        busy_reader, busy_writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(15):
            busy_writer.write(b"x")
            assert await busy_reader.readexactly(1) == b"x"
            await asyncio.sleep(0.1)
        assert await asyncio.wait_for(idle_reader.read(), 1) == b""  # closed by the proxy
        busy_writer.write(b"y")
        assert await busy_reader.readexactly(1) == b"y"
        idle_writer.close()
        busy_writer.close()
        await manager.close()
        server.close()

    run(scenario)


def test_connections_end_at_max_lifetime_even_when_busy(run: Run) -> None:
    """maxLifetime (IP pools): a connection is closed that long after it was accepted, busy or not."""

    async def scenario() -> None:
        streamer = Streamer()
        server = await streamer.start()
        target = ((f"127.0.0.1:{streamer.port}", 1),)
        manager, port = await run.one_app("m/app", target, AppSettings(max_lifetime=0.6))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = asyncio.get_running_loop().time()
        closed = False
        while asyncio.get_running_loop().time() - started < 3:
            writer.write(b"x")
            try:
                if await asyncio.wait_for(reader.read(1), 1) == b"":
                    closed = True
                    break
            except ConnectionError:
                closed = True
                break
            await asyncio.sleep(0.05)
        lived = asyncio.get_running_loop().time() - started
        assert closed
        assert 0.5 < lived < 2.0
        writer.close()
        await manager.close()
        server.close()

    run(scenario)


def test_a_target_is_handed_out_at_most_once_per_min_reuse(run: Run) -> None:
    """minReuseInterval (IP pools): within the interval a target gets no second connection; with none left the
    client gets the empty-pool answer."""

    async def scenario() -> None:
        first, second = await Echo("a").start(), await Echo("b").start()
        targets = ((first.address, 1), (second.address, 1))
        settings = AppSettings(min_reuse=30.0, on_empty="http-502")
        manager, port = await run.one_app("r/app", targets, settings)
        answers = []
        for _ in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write_eof()
            answers.append(await asyncio.wait_for(reader.read(), 3))
            writer.close()
        if run.workers <= 1:  # each worker process keeps its own reuse clock
            assert sorted(answers[:2]) == [b"a:", b"b:"]
            assert answers[2].startswith(b"HTTP/1.1 502")
        else:
            assert all(a in (b"a:", b"b:") or a.startswith(b"HTTP/1.1 502") for a in answers)
        await manager.close()
        await first.stop()
        await second.stop()

    run(scenario)


def test_targets_known_down_start_down_after_a_restart(run: Run) -> None:
    """A target that was down when the previous process stopped gets no traffic until it passes rise checks."""

    async def scenario() -> None:
        echo = await Echo("back").start()
        port = free_port()
        # a check interval longer than starting two worker processes takes, so that apply returns before 2 checks
        checks = CheckSettings(interval=1.0, timeout=0.2, rise=2, fall=3)
        manager = run.manager(known_down={"k/app": {echo.address}})
        await manager.apply(
            {"k/app": AppConfig("k/app", (("127.0.0.1", port),), ((echo.address, 1),), AppSettings(), checks)}
        )
        [backend] = manager.running["k/app"].backends
        assert backend.up is False
        assert await ask(port) == b""  # no usable target yet: closed
        await asyncio.sleep(2 * 1.0 * 1.1 + 0.3)
        assert backend.up is True
        assert await ask(port) == b"back:ping"
        assert manager.health() == {}
        await manager.close()
        await echo.stop()

    run(scenario)


def test_a_killed_worker_is_replaced(run_in_process: Run) -> None:
    """A worker process that dies is started again with the last snapshot; the port keeps serving."""
    run = Run(run_in_process.loop, 2)

    async def scenario() -> None:
        echo = await Echo("w").start()
        manager, port = await run.one_app("w/app", ((echo.address, 1),))
        workers = manager.data_path
        assert isinstance(workers, WorkerProcesses)
        victim = workers.pids()[0]
        os.kill(victim, signal.SIGKILL)
        await eventually(lambda: victim not in workers.pids(), timeout=5)
        assert len(workers.pids()) == 2
        assert workers.restarts == 1
        await asyncio.sleep(0.5)  # the new worker starts up and listens
        answers = [await ask(port) for _ in range(20)]  # the kernel spreads these over both workers
        assert answers == [b"w:ping"] * 20
        await echo.stop()

    run(scenario)


def test_a_worker_speaks_only_when_asked() -> None:
    """A worker writes to its pipe only in answer to the agent: one that is not read never blocks on it."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=worker_main, args=(theirs, 1.0, logging.WARNING), daemon=True)
    process.start()
    theirs.close()
    try:
        ours.send(("apply", 1, {}))
        assert ours.poll(10)
        assert ours.recv() == ("applied", 1, {})
        assert not ours.poll(1.5), "the worker sent something nobody asked for"
        ours.send(("counters",))
        assert ours.poll(5)
        assert ours.recv() == ("counters", {})
        ours.send(("stop",))
        process.join(5)
        assert process.exitcode == 0
    finally:
        if process.is_alive():
            process.kill()
        ours.close()
