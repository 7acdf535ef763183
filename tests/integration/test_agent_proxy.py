"""TCPProxy through the real agent: apps come from git, reload in place, and report their targets' health."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.settings import AgentSettings
from reconciler.system.cpus import usable_cpus
from tests.integration.agents import AgentProcess, Remote, free_port, wait_for

pytestmark = pytest.mark.integration

PROXY = """apiVersion: reconciler/v1
kind: TCPProxy
metadata: {{name: apps}}
spec:
  healthCheck: {{interval: 500ms, timeout: 400ms, rise: 1, fall: 2}}
  apps:
    - name: stream
      listen: [{listen}]
      targets: [{targets}]
"""


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        tag: bytes = self.server.tag  # type: ignore[attr-defined]
        with contextlib.suppress(OSError):
            while data := self.request.recv(65536):
                self.request.sendall(tag + data if tag else data)


class _Server(socketserver.ThreadingTCPServer):
    request_queue_size = 512  # the proxy dials 100 connections at once; the default backlog of 5 drops SYNs
    daemon_threads = True


@contextlib.contextmanager
def echo_server(tag: bytes = b"") -> Iterator[int]:
    server = _Server(("127.0.0.1", 0), _Echo)
    server.tag = tag  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, name="echo", daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    return Remote(tmp_path)


@pytest.fixture
def agent_for(tmp_path: Path) -> Iterator[Callable[[Remote], AgentProcess]]:
    started: list[AgentProcess] = []

    def start(remote: Remote) -> AgentProcess:
        agent = AgentProcess(remote, tmp_path / "state", node="proxy-1", args=("--interval", "1s"))
        started.append(agent.start())
        return agent

    yield start
    for agent in started:
        agent.stop()


def _proxy_status(agent: AgentProcess) -> dict[str, Any]:
    for resource in agent.status()["resources"]:
        if resource["kind"] == "TCPProxy":
            apps: dict[str, Any] = resource["observations"].get("apps", {})
            return apps
    return {}


def test_apps_from_git_reload_without_dropping_streams(
    remote: Remote, agent_for: Callable[[Remote], AgentProcess]
) -> None:
    """100 streams through a TCPProxy keep flowing while a commit adds a port and a target; the new port serves;
    an unresolvable target is reported in status and never used."""
    with echo_server() as streamer, echo_server(b"new:") as tagged:
        port, new_port = free_port(), free_port()
        remote.commit(
            {
                "proxy.yaml": PROXY.format(
                    listen=f'"127.0.0.1:{port}"', targets=f'"127.0.0.1:{streamer}", "nonexistent.invalid:9"'
                )
            }
        )
        agent = agent_for(remote)
        wait_for(lambda: "apps/stream" in _proxy_status(agent), timeout=10, what="the app in status")
        targets = wait_for(
            lambda: [
                t for t in _proxy_status(agent)["apps/stream"]["targets"] if t["reason"].startswith("unresolvable")
            ],
            timeout=10,
            what="the unresolvable target in status",
        )
        assert targets[0]["address"] == "nonexistent.invalid:9"
        assert targets[0]["health"] == "down"

        async def scenario() -> tuple[list[int], bytes]:
            connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(100)]
            stop = asyncio.Event()

            async def stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> int:
                payload, rounds = f"<{number}>".encode() * 50, 0
                while not stop.is_set():
                    writer.write(payload)
                    await writer.drain()
                    assert await asyncio.wait_for(reader.readexactly(len(payload)), 3) == payload
                    rounds += 1
                    await asyncio.sleep(0.05)
                writer.close()
                return rounds

            tasks = [asyncio.create_task(stream(r, w, i)) for i, (r, w) in enumerate(connections)]
            await asyncio.sleep(1)
            await asyncio.to_thread(
                remote.commit,
                {
                    "proxy.yaml": PROXY.format(
                        listen=f'"127.0.0.1:{port}", "127.0.0.1:{new_port}"',
                        targets=f'"127.0.0.1:{streamer}", "127.0.0.1:{tagged}", "nonexistent.invalid:9"',
                    )
                },
            )
            answer = b""
            deadline = time.monotonic() + 10
            while b"new:" not in answer and time.monotonic() < deadline:
                with contextlib.suppress(OSError):
                    reader, writer = await asyncio.open_connection("127.0.0.1", new_port)
                    writer.write(b"hello")
                    answer = await asyncio.wait_for(reader.read(64), 2)
                    writer.close()
                await asyncio.sleep(0.1)
            await asyncio.sleep(1)
            stop.set()
            return list(await asyncio.gather(*tasks)), answer

        rounds, answer = asyncio.run(scenario())
        assert min(rounds) >= 20
        assert answer in (b"new:hello", b"hello")
        status = _proxy_status(agent)["apps/stream"]
        assert sorted(status["listen"]) == sorted([f"127.0.0.1:{port}", f"127.0.0.1:{new_port}"])
        unresolvable = next(t for t in status["targets"] if t["address"] == "nonexistent.invalid:9")
        assert "connections" not in unresolvable  # counters live in /metrics, not in the committed status
        metrics = agent.metrics()
        assert 'reconciler_proxy_target_up{app="apps/stream",target="nonexistent.invalid:9"} 0.0' in metrics
        # counted in the worker process, reported to the agent
        connections = re.search(r'reconciler_proxy_connections_total\{app="apps/stream"\} (\S+)', metrics)
        assert connections is not None
        assert float(connections.group(1)) >= 100
        for line in (
            "reconciler_proxy_worker_restarts_total 0.0",
            'reconciler_proxy_at_limit{app="apps/stream"} 0.0',
            'reconciler_proxy_ejections_total{app="apps/stream"} 0.0',
            'reconciler_proxy_target_ejected{app="apps/stream",target="nonexistent.invalid:9"} 0.0',
            'reconciler_proxy_target_active_connections{app="apps/stream",target="nonexistent.invalid:9"} 0.0',
        ):
            assert line in metrics
        # every worker logs the same events: each line says which worker it comes from
        log = agent.log.read_text()
        for index in range(AgentSettings(repo="x", node="n").tcp_proxy_workers(usable_cpus())):
            assert f"reconciler.proxy.app worker {index}: listening app=apps/stream address=127.0.0.1:{new_port}" in log


def test_a_flood_of_idle_api_connections_does_not_starve_the_agent(remote: Remote, tmp_path: Path) -> None:
    """The agent with 256 descriptors under 3,000 API connections that never send a request: the API holds at
    most its share (64), the agent keeps proxying, fetches and applies a new revision (a new port), keeps its
    healthy target up, and answers /status once the flood is gone."""
    with echo_server() as target:
        port, new_port = free_port(), free_port()
        proxy = PROXY.format(listen=f'"127.0.0.1:{port}"', targets=f'"127.0.0.1:{target}"')
        remote.commit({"proxy.yaml": proxy})
        agent = AgentProcess(remote, tmp_path / "state", node="proxy-1", args=("--interval", "1s"), nofile=256)
        agent.start()
        try:
            wait_for(lambda: "apps/stream" in _proxy_status(agent), timeout=10, what="the app in status")
            assert agent.process is not None
            flood = []
            api_port = int(agent.address.rsplit(":", 1)[1])
            for _ in range(3000):
                sock = socket.socket()
                sock.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    sock.connect(("127.0.0.1", api_port))
                flood.append(sock)
            try:
                time.sleep(1)
                descriptors = len(os.listdir(f"/proc/{agent.process.pid}/fd"))
                print(f"agent descriptors under a flood of 3,000 API connections: {descriptors} (limit 256)")
                assert descriptors < 200
                assert _echo(port) == b"ping"
                remote.commit(
                    {"proxy.yaml": proxy.replace(f'"127.0.0.1:{port}"', f'"127.0.0.1:{port}", "127.0.0.1:{new_port}"')}
                )
                wait_for(lambda: _echo(new_port) == b"ping", timeout=15, what="the new revision applied")
                time.sleep(2)  # health checks go on: rounds every 500 ms
                assert _echo(port) == b"ping"
            finally:
                for sock in flood:
                    sock.close()

            def target_up() -> bool:
                with contextlib.suppress(OSError, ValueError, KeyError):
                    return bool(_proxy_status(agent)["apps/stream"]["targets"][0]["health"] == "up")
                return False

            wait_for(target_up, timeout=20, what="/status with the target up")
            assert "Too many open files" not in agent.log.read_text()
        finally:
            agent.stop()


def _echo(port: int) -> bytes:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"ping")
            return sock.recv(4)
    except OSError:
        return b""


def test_ctrl_c_in_a_terminal_stops_the_agent_once_and_cleanly(remote: Remote, tmp_path: Path) -> None:
    """SIGINT to the agent's whole process group (Ctrl-C) while its proxy workers are still starting: the agent
    handles it once and stops clean (exit 0, final status published); no worker prints a KeyboardInterrupt or is
    started again, no git child dies under the publish."""
    with echo_server() as target:
        remote.commit(
            {"proxy.yaml": PROXY.format(listen=f'"127.0.0.1:{free_port()}"', targets=f'"127.0.0.1:{target}"')}
        )
        agent = AgentProcess(
            remote,
            tmp_path / "state",
            node="gw-1",
            args=("--proxy-workers", "2", "--status-interval", "1s"),
            own_group=True,
        )
        agent.launch()
        try:
            wait_for(
                lambda: any("spawn_main" in line for line in agent.children()),
                timeout=30,
                interval=0.005,
                what="a proxy worker being spawned",
                explain=lambda: agent.log.read_text()[-3000:],
            )
            agent.interrupt()
            code = agent.wait(timeout=30)
        finally:
            agent.stop()
    said = agent.log.read_text()
    assert code == 0, said[-3000:]
    for wrong in ("Traceback", "KeyboardInterrupt", "Broken pipe", "exited (code", "not clean"):
        assert wrong not in said, said[-3000:]
    assert said.count("signal SIGINT received") == 1
    assert "agent stopped clean=True" in said
    assert "reason: Stopped" in (remote.status_file("status/gw-1/agent.yaml") or "")
