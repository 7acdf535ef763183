"""A fleet of real agents on one bare remote, each publishing to its own status branch: after a new revision every
node's status names it within 30 s and no publish is given up; the fleet view (``reconciler status --repo URL
--all``) lists every node, and a node stopped with SIGTERM as stopped (its final status says so) at once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.agents import AgentProcess, Remote, git, lists, wait_for

pytestmark = pytest.mark.integration

NODES = [f"node-{number:02d}" for number in range(1, 21)]


def _fleet(remote: Remote, *extra: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "status", "--repo", remote.url, "--all", "--format", "json", *extra],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def _on(remote: Remote, revision: str) -> set[str]:
    return {row["node"] for row in _fleet(remote) if row["appliedRevision"] == revision}


def test_twenty_agents_publish_without_contention(tmp_path: Path) -> None:
    remote = Remote(tmp_path)
    first = remote.commit(lists(a="203.0.113.1"))
    flags = ("--interval", "4s", "--status-interval", "1s", "--status-heartbeat", "3s", "--proxy-workers", "0")
    agents = [AgentProcess(remote, tmp_path / f"state-{node}", node=node, args=flags) for node in NODES]
    try:
        for agent in agents:
            agent.launch()
        for agent in agents:
            wait_for(agent.ready, timeout=60, what=f"{agent.node} to serve /healthz")
        wait_for(lambda: _on(remote, first) == set(NODES), timeout=60, interval=1, what="every node's first status")

        second = remote.commit(lists(a="203.0.113.2"))
        started = time.monotonic()
        wait_for(lambda: _on(remote, second) == set(NODES), timeout=30, interval=1, what="every node on the new one")
        print(f"20 nodes named the new revision {time.monotonic() - started:.1f} s after the commit")
        for agent in agents:
            publish = agent.status()["statusPublish"]
            assert publish["ok"], (agent.node, publish)
            assert "status publish failed" not in agent.log.read_text()
        heads = git(remote.bare, "for-each-ref", "--format=%(refname:lstrip=3)", "refs/heads/reconciler-status")
        assert heads.splitlines() == NODES  # a branch per node, none shared

        stopped = agents[0]
        stopped.signal(signal.SIGTERM)
        assert stopped.wait(timeout=15) == 0

        def the_stopped_node_says_so() -> bool:
            rows = _fleet(remote)
            return [row["node"] for row in rows if row["stopped"]] == [stopped.node] and len(rows) == len(NODES)

        wait_for(the_stopped_node_says_so, timeout=15, interval=1, what="the stopped node's final status")
        row = next(row for row in _fleet(remote) if row["node"] == stopped.node)
        ready = next(c for c in row["conditions"] if c["type"] == "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "Stopped")
        assert f"{second[:12]} stays applied" in ready["message"]
        text = subprocess.run(
            [sys.executable, "-m", "reconciler", "status", "--repo", remote.url, "--all"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert text.splitlines()[-1] == "20 node(s), 0 stale, 1 stopped"
        assert f"{stopped.node}  {second[:12]}  Ready=False Stopped" in text
        assert text.count("STOPPED") == 1
        local = subprocess.run(
            [sys.executable, "-m", "reconciler", "status", "--state-dir", str(stopped.state_dir), "--format", "json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        conditions = {c["type"]: c for c in json.loads(local)["conditions"]}
        assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == ("False", "Stopped")
    finally:
        for agent in agents:
            agent.stop()
