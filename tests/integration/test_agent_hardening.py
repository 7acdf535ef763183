"""The real agent against a bare remote, where a new user found it fragile: a desired-state path missing from a
revision, a revision that removes everything, a status publish that keeps failing, and stopping."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.agents import AgentProcess, Remote, free_port, free_ports, wait_for

pytestmark = pytest.mark.integration

PROXY = """apiVersion: reconciler/v1
kind: TCPProxy
metadata: {{name: apps}}
spec:
  healthCheck: {{interval: 500ms, timeout: 400ms, rise: 1, fall: 2}}
  apps:
    - name: web
      listen: ["127.0.0.1:{port}"]
      targets: ["127.0.0.1:{target}"]
"""


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _node_condition(agent: AgentProcess, kind: str = "Stalled") -> tuple[str, str, str]:
    for found in agent.status()["conditions"]:
        if found["type"] == kind:
            return found["status"], found["reason"], found["message"]
    return "", "", ""


def test_a_path_missing_from_a_revision_is_refused_and_the_last_good_one_stays(tmp_path: Path) -> None:
    """A commit that moves the folder away: Stalled PathNotFoundError naming the path and revision; the app that ran
    keeps running. An agent started on a path that never existed is Stalled the same way, with nothing applied."""
    remote = Remote(tmp_path)
    port = free_port()
    good = remote.commit({"edge/proxy.yaml": PROXY.format(port=port, target=free_port())})
    agent = AgentProcess(remote, tmp_path / "state", node="n1", args=("--interval", "1s", "--path", "edge"))
    agent.start()
    try:
        wait_for(lambda: agent.applied() == good, timeout=15, what="the first revision")
        assert _accepts(port)
        moved = remote.commit({"elsewhere/proxy.yaml": PROXY.format(port=port, target=free_port())})
        wait_for(lambda: agent.status()["lastAttemptedRevision"] == moved, timeout=15, what="the move")
        status, reason, message = _node_condition(agent)
        assert (status, reason) == ("True", "PathNotFound")
        assert f"path edge is not in revision {moved[:12]}" in message
        assert agent.applied() == good
        assert _accepts(port)
    finally:
        agent.stop()
    never = AgentProcess(remote, tmp_path / "state-2", node="n1", args=("--interval", "1s", "--path", "nosuch"))
    never.start()
    try:
        wait_for(lambda: _node_condition(never)[1] == "PathNotFound", timeout=15, what="PathNotFound")
        assert never.applied() is None
    finally:
        never.stop()


def test_a_revision_that_removes_everything_is_held_unless_forced(tmp_path: Path) -> None:
    """Every enforced resource gone in one commit: held like any large removal; --force lets it through."""
    remote = Remote(tmp_path)
    port = free_port()
    good = remote.commit({"proxy.yaml": PROXY.format(port=port, target=free_port())})
    agent = AgentProcess(remote, tmp_path / "state", node="n1", args=("--interval", "1s"))
    agent.start()
    try:
        wait_for(lambda: agent.applied() == good, timeout=15, what="the first revision")
        empty = remote.commit({"README.yaml": "# nothing here\n"}, message="remove everything")
        wait_for(lambda: agent.status()["lastAttemptedRevision"] == empty, timeout=15, what="the empty revision")
        status, reason, message = _node_condition(agent)
        assert (status, reason) == ("True", "SafetyGate")
        assert "would remove every resource this node enforces (1: TCPProxy/apps)" in message
        assert agent.applied() == good
        assert _accepts(port)
    finally:
        agent.stop()
    forced = AgentProcess(remote, tmp_path / "state", node="n1", args=("--interval", "1s", "--force"))
    forced.start()
    try:
        wait_for(lambda: forced.applied() == empty, timeout=15, what="the forced removal")
        wait_for(lambda: not _accepts(port), timeout=10, what="the app to stop")
    finally:
        forced.stop()


def test_a_status_message_with_an_unknown_placeholder_is_refused_at_start(tmp_path: Path) -> None:
    """--status-message '{nope}': exit 2 at once, naming the flag and the placeholders that exist."""
    remote = Remote(tmp_path)
    remote.commit({"proxy.yaml": PROXY.format(port=free_port(), target=free_port())})
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "run", "--repo", remote.url, "--state-dir", str(tmp_path / "s"),
         "--status-message", "{nope}"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--status-message: unknown placeholder {nope}; use {node}, {revision}" in done.stderr
    assert "Traceback" not in done.stderr


def test_publish_failures_are_counted_shown_and_do_not_stop_a_bounded_shutdown(tmp_path: Path) -> None:
    """The status branch cannot be pushed (a hook refuses it): every failure is counted and shown in /status; on
    SIGTERM the agent and its proxy worker are gone within --shutdown-timeout + 2 s, exit 3 (the final publish
    failed). A second SIGTERM ends a stop at once."""
    remote = Remote(tmp_path)
    hook = remote.bare / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\nwhile read old new ref; do\n"
        '  case "$ref" in refs/heads/reconciler-status*) echo "status pushes are refused here" >&2; exit 1;; esac\n'
        "done\n"
    )
    hook.chmod(0o755)
    port = free_port()
    remote_commit = remote.commit({"proxy.yaml": PROXY.format(port=port, target=free_port())})
    agent = AgentProcess(
        remote,
        tmp_path / "state",
        node="n1",
        args=("--interval", "1s", "--status-interval", "1s", "--shutdown-timeout", "2s"),
    )
    agent.start()
    try:
        wait_for(lambda: agent.applied() == remote_commit, timeout=15, what="the revision")
        wait_for(lambda: "reconciler_status_publish_errors_total 2.0" in agent.metrics(), timeout=15, what="errors")
        publish = agent.status()["statusPublish"]
        assert publish["ok"] is False
        assert "status pushes are refused here" in publish["error"]
        failing = [c for c in agent.status()["conditions"] if c["type"] == "StatusPublished"]
        assert [(c["status"], c["reason"]) for c in failing] == [("False", "PublishFailing")]
        assert 'reconciler_resource_condition{kind="Node",name="n1",type="StatusPublished"} 0.0' in agent.metrics()
        assert agent.log.read_text().count("status publish failed") == 1  # logged once per change of error
        assert _accepts(port)
        workers = _children(agent)
        assert workers, "the proxy worker process"
        started = time.monotonic()
        agent.signal(signal.SIGTERM)
        code = agent.wait(timeout=2 + 2 + 5)
        assert time.monotonic() - started < 2 + 2
        assert code == 3
        left = 2 + 2 - (time.monotonic() - started)
        wait_for(lambda: not any(_alive(pid) for pid in workers), timeout=max(0.1, left), what="the workers to end")
        assert not _accepts(port)
    finally:
        agent.stop()


def _children(agent: AgentProcess) -> list[int]:
    assert agent.process is not None
    found = subprocess.run(["pgrep", "-P", str(agent.process.pid)], capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}/stat").exists() else ""
    return " Z " not in stat


def test_a_second_signal_ends_a_stop_at_once(tmp_path: Path) -> None:
    """A client holds a proxied connection open, so the stop waits for it to drain (up to 20 s); a second signal
    (SIGINT) ends the agent and its worker at once, exit 3."""
    remote = Remote(tmp_path)
    target = socket.create_server(("127.0.0.1", 0))
    port = free_port()
    remote.commit({"proxy.yaml": PROXY.format(port=port, target=target.getsockname()[1])})
    agent = AgentProcess(remote, tmp_path / "state", node="n1", args=("--interval", "1s", "--shutdown-timeout", "20s"))
    agent.start()
    try:
        wait_for(lambda: _accepts(port), timeout=15, what="the app")
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        accepted, _ = target.accept()
        workers = _children(agent)
        agent.signal(signal.SIGTERM)
        time.sleep(1.0)
        assert agent.process is not None
        assert agent.process.poll() is None  # draining the open connection
        started = time.monotonic()
        agent.signal(signal.SIGINT)
        assert agent.wait(timeout=5) == 3
        assert time.monotonic() - started < 2
        time.sleep(0.2)
        assert not any(_alive(pid) for pid in workers)
        client.close()
        accepted.close()
    finally:
        agent.stop()
        target.close()


BIG = """apiVersion: reconciler/v1
kind: TCPProxy
metadata: {{name: big}}
spec:
  {safety}
  healthCheck: {{interval: 2s, timeout: 500ms}}
  apps:
    - name: web
      listen: ["127.0.0.1:{port}"]
      targets: [{targets}]
"""


def _big(port: int, targets: list[int], safety: str = "") -> dict[str, str]:
    listed = ", ".join(f'"127.0.0.1:{t}"' for t in targets)
    return {"big.yaml": BIG.format(port=port, targets=listed, safety=safety or "nodes: ['*']")}


def test_a_gated_plan_is_approved_without_a_restart(tmp_path: Path) -> None:
    """Removing 4 of 10 targets is held (Stalled SafetyGate, the node too, the log names the plan); a signed
    POST /plan/approve with the plan's checksum applies it; a later large removal is held again and a commit that
    raises spec.safety.maxChangePercent lets it through."""
    secret = "approve-secret"
    remote = Remote(tmp_path)
    ports = free_ports(15)  # distinct: the proxy's port, ten targets, four more for later
    port, targets, extra = ports[0], ports[1:11], ports[11:]
    first = remote.commit(_big(port, targets))
    agent = AgentProcess(
        remote, tmp_path / "state", node="n1", args=("--interval", "1s"), env={"RECONCILER_WEBHOOK_SECRET": secret}
    )
    agent.start()
    try:
        wait_for(lambda: agent.applied() == first, timeout=15, what="the first revision")
        cut = remote.commit(_big(port, targets[:6]))
        wait_for(lambda: _node_condition(agent)[1] == "SafetyGate", timeout=15, what="the gate")
        assert agent.applied() == first
        assert "plan held by the safety gate resource=TCPProxy/big" in agent.log.read_text()
        code, body = agent.request("/plan")
        checksum = json.loads(body)["checksum"]
        payload = json.dumps({"checksum": checksum}).encode()
        unsigned = agent.request("/plan/approve", data=payload)
        assert unsigned[0] == 401
        signature = "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
        code, body = agent.request("/plan/approve", data=payload, headers={"X-Hub-Signature-256": signature})
        assert (code, json.loads(body)) == (202, {"approved": ["TCPProxy/big"]})
        wait_for(lambda: agent.applied() == cut, timeout=10, what="the approved plan")
        assert _node_condition(agent)[0] == "False"

        ten = extra + targets[:6]
        remote.commit(_big(port, ten))
        wait_for(lambda: agent.applied() is not None and len(_targets(agent)) == 10, timeout=15, what="ten again")
        remote.commit(_big(port, ten[:5]))
        wait_for(lambda: _node_condition(agent)[1] == "SafetyGate", timeout=15, what="held again")
        raised = remote.commit(_big(port, ten[:5], safety="safety: {maxChangePercent: 60}"))
        wait_for(lambda: agent.applied() == raised, timeout=15, what="the raised limit")
        assert len(_targets(agent)) == 5
    finally:
        agent.stop()


def _targets(agent: AgentProcess) -> list[object]:
    for resource in agent.status()["resources"]:
        if resource["kind"] == "TCPProxy":
            return list(resource["observations"]["apps"]["big/web"]["targets"])
    return []
