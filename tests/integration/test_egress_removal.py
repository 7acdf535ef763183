"""Removing the last gateway and route of a node, with the real agent in a network namespace this test creates:
the removal is held until forced; ``run --once --force`` (a process that never held the resources) shows the
removals in its plan and leaves no chain, jump rule, set or route of ours; so does an agent restarted with
``--force`` after the removal commit. What was made is known from the state file."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require_root
from tests.integration.agents import AgentProcess, Remote, wait_for
from tests.integration.egress_kernel import run_in

pytestmark = pytest.mark.integration

EGRESS = """apiVersion: reconciler/v1
kind: EgressGateway
metadata: {name: gw}
spec:
  nodes: [edge-1]
  clients: [10.89.0.0/24]
  defaultAction: reject
---
apiVersion: reconciler/v1
kind: EgressRoute
metadata: {name: via-gw}
spec:
  nodes: [edge-1]
  gateway: 10.89.0.1
---
apiVersion: reconciler/v1
kind: EgressAllowList
metadata: {name: partners}
spec:
  entries: [{ip: 203.0.113.10}]
"""
LIST_ONLY = EGRESS.rsplit("---\n", maxsplit=1)[-1]


@dataclass(frozen=True)
class Namespace:
    name: str
    api: str  # the address the agent's API listens on, reached from the host over a management link


@pytest.fixture
def namespace() -> Iterator[Namespace]:
    require_root("ip", "ipset", "iptables-restore")
    name, host_side, octet = f"recon-rm-{os.getpid()}", f"rcr{str(os.getpid())[-5:]}", os.getpid() % 250
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        run_in(name, "ip", "link", "set", "lo", "up")
        # a veth pair inside the namespace: the gateway's subnet is on-link (no dummy driver on every machine)
        run_in(name, "ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1")
        run_in(name, "ip", "addr", "add", "10.89.0.2/24", "dev", "v0")
        for device in ("v0", "v1"):
            run_in(name, "ip", "link", "set", device, "up")
        subprocess.run(
            ["ip", "link", "add", host_side, "type", "veth", "peer", "name", "m0", "netns", name], check=True
        )
        subprocess.run(["ip", "addr", "add", f"169.254.{octet}.9/30", "dev", host_side], check=True)
        subprocess.run(["ip", "link", "set", host_side, "up"], check=True)
        run_in(name, "ip", "addr", "add", f"169.254.{octet}.10/30", "dev", "m0")
        run_in(name, "ip", "link", "set", "m0", "up")
        yield Namespace(name, f"169.254.{octet}.10")
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)
        subprocess.run(["ip", "link", "delete", host_side], check=False, capture_output=True)


def ours(namespace: str) -> list[str]:
    """Every chain, rule, set and route of ours in the namespace."""
    found = [
        line
        for tool in ("iptables-save", "ip6tables-save")
        for line in run_in(namespace, tool).splitlines()
        if "RECON-" in line
    ]
    found += [f"set {name}" for name in run_in(namespace, "ipset", "list", "-n").split() if name.startswith("RECON-")]
    found += [f"route {line}" for line in run_in(namespace, "ip", "route", "show", "proto", "213").splitlines()]
    return found


def _agent(remote: Remote, state: Path, namespace: Namespace, *extra: str) -> AgentProcess:
    args = ("--interval", "1s", *extra)
    return AgentProcess(remote, state, node="edge-1", netns=namespace.name, host=namespace.api, args=args).start()


def _condition(agent: AgentProcess, kind: str) -> tuple[str, str]:
    found = next(c for c in agent.status()["conditions"] if c["type"] == kind)
    return found["status"], found["reason"]


def test_forced_removal_and_a_forced_restart_leave_nothing_of_ours(tmp_path: Path, namespace: Namespace) -> None:
    remote, state = Remote(tmp_path), tmp_path / "state"
    made = remote.commit({"egress.yaml": EGRESS})
    agent = _agent(remote, state, namespace)
    try:
        wait_for(lambda: agent.applied() == made, timeout=20, what="the gateway and route applied")
        assert any("RECON-EGRESS" in line for line in ours(namespace.name))
        assert sum(line.startswith("route ") for line in ours(namespace.name)) > 10

        removal = remote.commit({"egress.yaml": LIST_ONLY})
        wait_for(lambda: _condition(agent, "Stalled") == ("True", "SafetyGate"), timeout=20, what="the hold")
        assert agent.status()["lastAttemptedRevision"] == removal
    finally:
        agent.stop()
    before = ours(namespace.name)
    assert before  # held: nothing was removed

    command = ["ip", "netns", "exec", namespace.name, sys.executable, "-m", "reconciler", "run", "--once", "--force"]
    command += ["--repo", remote.url, "--node", "edge-1", "--state-dir", str(state), "--nameserver", "127.0.0.1:9"]
    forced = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert ours(namespace.name) == []
    # the plan showed what went, before it went: the chain, the jump rule, the sets, the routes
    assert "EgressGateway/gw" in forced.stdout
    assert "IPv4 filter chain RECON-EGRESS" in forced.stdout
    assert "IPv4 filter jump FORWARD -j RECON-EGRESS" in forced.stdout
    assert "EgressRoute/via-gw" in forced.stdout
    assert "via 10.89.0.1" in forced.stdout

    # made again; the agent stopped; the removal committed while it is down; started with --force
    made = remote.commit({"egress.yaml": EGRESS})
    agent = _agent(remote, state, namespace)
    try:
        wait_for(lambda: agent.applied() == made, timeout=20, what="the gateway and route applied again")
        assert ours(namespace.name)
    finally:
        agent.stop()
    removal = remote.commit({"egress.yaml": LIST_ONLY})
    agent = _agent(remote, state, namespace, "--force")
    try:
        wait_for(lambda: agent.applied() == removal, timeout=20, what="the forced restart to apply the removal")
        assert ours(namespace.name) == []
    finally:
        agent.stop()
