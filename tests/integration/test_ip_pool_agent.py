"""An IP pool run by the real agent: a rescan asked over HTTP reads the log at once; bans and cool-downs hold
across a stop (SIGTERM) and a kill (SIGKILL), and no log line is counted twice after either."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime
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
    finally:
        agent.stop()
