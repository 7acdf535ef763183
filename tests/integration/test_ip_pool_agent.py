"""An IP pool run by the real agent: a rescan asked over HTTP reads the log at once; bans and cool-downs hold
across a stop (SIGTERM) and a kill (SIGKILL), and no log line is counted twice after either."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.integration.agents import AgentProcess, Remote, wait_for

pytestmark = pytest.mark.integration

POOL = """apiVersion: reconciler/v1
kind: HealthStrategy
metadata: {{name: three-in-a-row}}
spec:
  type: consecutive
  consecutive: {{failures: 3, within: 1m, cooldown: 1h}}
---
apiVersion: reconciler/v1
kind: IPPool
metadata: {{name: egress}}
spec:
  nodes: [pool-1]
  members: {{static: [{{ip: 203.0.113.5, port: 19001}}, {{ip: 203.0.113.6, port: 19002}}]}}
  accessLog: {{path: {log}, from: start}}
  strategy: three-in-a-row
  scanInterval: 1h
"""


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    return Remote(tmp_path)


def _line(port: int, status: int) -> str:
    """A line as nginx writes it now (the cool-down runs from the request's own time)."""
    stamp = datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f'198.51.100.7 - [{stamp}] "GET / HTTP/1.1" {status} {port} 127.0.0.1:{port} 0.010\n'


def _members(agent: AgentProcess) -> dict[str, Any]:
    code, body = agent.request("/pools/egress")
    assert code == 200, body
    members: dict[str, Any] = json.loads(body)["members"]
    return members


def _rescan(agent: AgentProcess) -> None:
    code, body = agent.request("/pools/egress/rescan", data=b"")
    assert code == 202, body


def test_rescan_and_bans_that_survive_stop_and_kill(tmp_path: Path, remote: Remote) -> None:
    log = tmp_path / "access.log"
    log.write_text(_line(19001, 200))
    remote.commit({"pool.yaml": POOL.format(log=log)})
    agent = AgentProcess(remote, tmp_path / "state", node="pool-1", args=("--interval", "1s")).start()
    try:
        wait_for(lambda: agent.request("/pools/egress")[0] == 200, timeout=15, what="the pool's first scan")
        with log.open("a") as out:
            out.write(_line(19001, 502) * 3 + _line(19002, 200))
        _rescan(agent)
        wait_for(lambda: not _members(agent)["203.0.113.5"]["available"], timeout=10, what="the ban")
        before = _members(agent)
        assert before["203.0.113.5"]["requests"] == {"2xx": 1, "5xx": 3}
        assert before["203.0.113.6"]["available"]
        for stop in (signal.SIGTERM, signal.SIGKILL):
            agent.signal(stop)
            agent.wait(timeout=15)
            agent.start()
            wait_for(lambda: agent.request("/pools/egress")[0] == 200, timeout=15, what="the scan after a restart")
            after = _members(agent)
            assert not after["203.0.113.5"]["available"]  # the ban holds
            assert after["203.0.113.5"]["bannedUntil"] == before["203.0.113.5"]["bannedUntil"]
            assert after["203.0.113.5"]["requests"] == {"2xx": 1, "5xx": 3}  # no line counted twice
        with log.open("a") as out:
            out.write(_line(19002, 200))
        _rescan(agent)
        wait_for(lambda: _members(agent)["203.0.113.6"]["requests"] == {"2xx": 2}, timeout=10, what="one new line")
        _the_old_tools_routes(agent, log)
    finally:
        agent.stop()


def _old(agent: AgentProcess, path: str) -> Any:
    code, body = agent.request(path)
    assert code == 200, body
    return json.loads(body)


def _the_old_tools_routes(agent: AgentProcess, log: Path) -> None:
    """ipmanager's routes with its shapes: /ping, /api/config, /api/ip/history, POST /api/ip/renew."""
    assert agent.request("/ping") == (200, b"pong")
    config = _old(agent, "/api/config")
    assert config["access_log_path"] == str(log)
    # banned at the 3rd failure: ipmanager, which banned once the count exceeded it, would need 2
    assert (config["mode"], config["strategy"], config["consecutive_failure"]) == ("parse", "consecutive", 2)
    assert (config["cool_down_min"], config["scan_interval_min"]) == (60, 60)
    assert config["probe_port"] == str(agent.port)
    history = _old(agent, "/api/ip/history")
    assert history["AvailableIP"] == ["203.0.113.6"]
    banned = history["IPHistory"]["203.0.113.5"]
    assert (banned["Addr"], banned["Port"], banned["Banned"]) == ("203.0.113.5", "19001", True)
    assert [entry["StatusCode"] for entry in banned["History"]] == ["200", "502", "502", "502"]
    assert set(banned["History"][0]) == {"Time", "StatusCode", "ExgressKey", "Port"}
    assert len(banned["CoolDowns"]) == 1
    start, end = (datetime.fromisoformat(t) for t in banned["CoolDowns"][0])
    assert end - start == timedelta(hours=1)
    with log.open("a") as out:
        out.write(_line(19002, 503))
    assert agent.request("/api/ip/renew", data=b"") == (200, b"Renewed")
    wait_for(
        lambda: _old(agent, "/api/ip/history")["IPHistory"]["203.0.113.6"]["Failure"] == 1,
        timeout=10,
        what="the renewed scan",
    )
    assert agent.request("/api/config?pool=other")[0] == 404


SERVERS = """apiVersion: reconciler/v1
kind: HealthStrategy
metadata: {{name: three-in-a-row}}
spec: {{type: consecutive}}
---
apiVersion: reconciler/v1
kind: IPPool
metadata: {{name: egress}}
spec:
  nodes: [pool-1]
  members: {{nginxConf: {conf}}}
  accessLog: {{path: {log}}}
  strategy: three-in-a-row
  scanInterval: 1h
"""


def _servers(*members: tuple[str, int]) -> str:
    return "".join(f"server {{ listen {port}; proxy_bind {ip}; }}\n" for ip, port in members)


def _member_set(agent: AgentProcess) -> set[str]:
    code, body = agent.request("/pools/egress")
    return set(json.loads(body)["members"]) if code == 200 else set()


def test_nginx_members_follow_the_file_on_the_machine_and_in_the_repository(tmp_path: Path, remote: Remote) -> None:
    machine = tmp_path / "machine-proxies.conf"
    machine.write_text(_servers(("203.0.113.5", 19001), ("203.0.113.6", 19002)))
    log = tmp_path / "access.log"
    remote.commit({"pool.yaml": SERVERS.format(conf=machine, log=log)})
    agent = AgentProcess(remote, tmp_path / "state", node="pool-1", args=("--interval", "1s")).start()
    try:
        wait_for(lambda: _member_set(agent) == {"203.0.113.5", "203.0.113.6"}, timeout=15, what="the members")
        # on the machine: the file is watched, and the pool scanned at once (its scanInterval is an hour)
        machine.write_text(_servers(("203.0.113.6", 19002), ("203.0.113.7", 19003)))
        wait_for(lambda: _member_set(agent) == {"203.0.113.6", "203.0.113.7"}, timeout=10, what="the edited file")
        # in the repository: a commit that changes the file the pool names
        shipped = {"pool.yaml": SERVERS.format(conf="files/proxies.conf", log=log)}
        remote.commit({**shipped, "files/proxies.conf": _servers(("203.0.113.8", 19004))})
        wait_for(lambda: _member_set(agent) == {"203.0.113.8"}, timeout=15, what="the committed file")
        remote.commit({**shipped, "files/proxies.conf": _servers(("203.0.113.8", 19004), ("203.0.113.9", 19005))})
        wait_for(lambda: _member_set(agent) == {"203.0.113.8", "203.0.113.9"}, timeout=15, what="the next commit")
    finally:
        agent.stop()
