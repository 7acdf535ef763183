"""The real agent (``reconciler run`` as a subprocess) against a bare git repository as its remote."""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.system.processes import descendants
from tests.conftest import CliResult
from tests.integration.agents import AgentProcess, Remote, git, lists, wait_for

pytestmark = pytest.mark.integration

SECRET = "webhook-secret-for-tests"


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    assert shutil.which("git"), "git is a Debian package of the project (debian-packages.txt)"
    return Remote(tmp_path)


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    """Start agents; every one still running at the end is stopped."""
    started: list[AgentProcess] = []

    def start(remote: Remote, node: str = "gw-1", *args: str, state: str | None = None, **env: str) -> AgentProcess:
        agent = AgentProcess(remote, tmp_path / (state or f"state-{node}"), node=node, args=args, env=env)
        started.append(agent.start())
        return agent

    yield start
    for agent in started:
        agent.stop()
        # shown by pytest only when the test failed: what each agent said (a flaky wait needs its logs)
        if agent.log.exists():
            print(f"--- {agent.node} ({agent.log.name}), last lines ---")
            print("\n".join(agent.log.read_text(errors="replace").splitlines()[-60:]))


def _applied_is(agent: AgentProcess, revision: str) -> bool:
    return agent.applied() == revision


def _sign(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def test_a_push_is_applied_within_the_interval(remote: Remote, agents: Callable[..., AgentProcess]) -> None:
    """With --interval 2s, a pushed commit is applied within interval + 2 s."""
    remote.commit(lists(a="203.0.113.1"))
    agent = agents(remote, "gw-1", "--interval", "2s")
    wait_for(agent.applied, timeout=10, what="first revision")
    revision = remote.commit(lists(a="203.0.113.1", b="203.0.113.2"))
    pushed = time.monotonic()
    wait_for(lambda: agent.applied() == revision, timeout=4, what="the new revision")
    assert time.monotonic() - pushed < 4
    assert {r["name"] for r in agent.status()["resources"]} == {"a", "b"}


def test_a_signed_webhook_applies_at_once(remote: Remote, agents: Callable[..., AgentProcess]) -> None:
    """With a 60 s poll, a correctly signed webhook gets the commit applied within 1 s; a wrong one gets 401."""
    remote.commit(lists(a="203.0.113.1"))
    agent = agents(remote, "gw-1", "--interval", "60s", RECONCILER_WEBHOOK_SECRET=SECRET)
    first = wait_for(agent.applied, timeout=10, what="first revision")
    revision = remote.commit(lists(a="203.0.113.7"))
    body = b'{"ref": "refs/heads/main"}'

    code, _ = agent.request("/hooks/git", data=body, headers={"X-Hub-Signature-256": _sign(b"forged")})
    assert code == 401
    time.sleep(1.5)
    assert agent.applied() == first

    sent = time.monotonic()
    code, _ = agent.request("/hooks/git", data=body, headers={"X-Hub-Signature-256": _sign(body)})
    assert code == 202
    wait_for(lambda: agent.applied() == revision, timeout=1, interval=0.01, what="the webhook's revision")
    assert time.monotonic() - sent < 1
    assert 'reconciler_webhook_requests_total{result="unauthorized"} 1.0' in agent.metrics()


def test_an_invalid_commit_stalls_and_the_next_valid_one_applies(
    remote: Remote, agents: Callable[..., AgentProcess]
) -> None:
    """Stalled with located errors in /status and in the status commit; the applied revision stays; then recovers."""
    good = remote.commit(lists(a="203.0.113.1"))
    agent = agents(remote, "gw-1", "--interval", "1s", "--status-interval", "1s")
    wait_for(lambda: agent.applied() == good, timeout=10, what="first revision")
    bad = remote.commit(lists(a="203.0.113.1", b="10.1.2.3"))

    status = wait_for(
        lambda: (s := agent.status())["lastAttemptedRevision"] == bad and s, timeout=5, what="the invalid revision"
    )
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "InvalidDesiredState")
    assert status["lastAppliedRevision"] == good
    [problem] = status["problems"]
    assert problem["location"] == f"{bad[:12]}:egress/b.yaml:6:11"
    assert problem["path"] == "spec.entries[0].ip"
    committed = wait_for(
        lambda: (text := remote.status_file("status/gw-1/agent.yaml")) and "InvalidDesiredState" in text and text,
        timeout=5,
        what="the stalled status commit",
    )
    assert "egress/b.yaml:6:11" in committed
    assert f"lastAppliedRevision: {good}" in committed

    fixed = remote.commit(lists(a="203.0.113.1", b="203.0.113.2"))
    wait_for(lambda: agent.applied() == fixed, timeout=5, what="the fixed revision")
    assert agent.status()["problems"] == []


def test_the_agent_rides_out_a_remote_outage(
    tmp_path: Path, remote: Remote, agents: Callable[..., AgentProcess]
) -> None:
    """The remote is gone for 30 s: /healthz and /status keep answering, metrics show the failures and the
    backoff, and the agent recovers by itself when the remote returns."""
    remote.commit(lists(a="203.0.113.1"))
    agent = agents(remote, "gw-1", "--interval", "1s")
    wait_for(agent.applied, timeout=10, what="first revision")
    hidden = tmp_path / "hidden.git"
    remote.bare.rename(hidden)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert agent.request("/healthz")[0] == 200
            assert agent.request("/status")[0] == 200
            time.sleep(1)
        metrics = agent.metrics()
        errors = next(
            line for line in metrics.splitlines() if line.startswith('reconciler_git_fetch_total{result="error"}')
        )
        assert float(errors.split()[-1]) >= 3
        backoff = next(line for line in metrics.splitlines() if line.startswith("reconciler_git_fetch_backoff_seconds"))
        assert float(backoff.split()[-1]) > 1
    finally:
        hidden.rename(remote.bare)
    revision = remote.commit(lists(a="203.0.113.9"))
    wait_for(lambda: agent.applied() == revision, timeout=35, interval=0.5, what="recovery after the outage")
    assert agent.metrics().count("reconciler_git_fetch_backoff_seconds 0.0") == 1


@pytest.mark.parametrize("layout", ["shared", "per-node"])
def test_two_agents_publish_while_commits_keep_coming(
    remote: Remote, agents: Callable[..., AgentProcess], layout: str
) -> None:
    """Two nodes publish for 20 s while commits keep coming: linear histories, each commit one node's, nothing
    lost; shared: one branch for both; per-node: each its own branch."""
    remote.commit(lists(a="203.0.113.1"))
    flags = ("--interval", "1s", "--status-interval", "1s", "--status-layout", layout)
    first, second = agents(remote, "node-a", *flags), agents(remote, "node-b", *flags)
    deadline = time.monotonic() + 20
    number = 0
    while time.monotonic() < deadline:
        number += 1
        last = remote.commit(lists(a=f"203.0.113.{number % 250 + 1}", b=f"198.51.100.{number % 250 + 1}"))
        time.sleep(1.5)
    for agent in (first, second):
        wait_for(functools.partial(_applied_is, agent, last), timeout=10, what=f"{agent.node} on the last revision")
        agent.signal(signal.SIGTERM)
        assert agent.wait(timeout=15) == 0
    branches = ["reconciler-status"] if layout == "shared" else ["reconciler-status/node-a", "reconciler-status/node-b"]
    log = [commit for branch in branches for commit in remote.status_log(branch)]
    assert len(log) >= 8
    for branch in branches:
        assert git(remote.bare, "rev-list", "--merges", branch) == ""
    for node in ("node-a", "node-b"):
        text = remote.status_file(f"status/{node}/agent.yaml")
        assert text is not None
        assert f"lastAppliedRevision: {last}" in text
        assert remote.status_file(f"status/{node}/EgressAllowList/b.yaml") is not None
    for commit in log:
        touched = git(remote.bare, "show", "--name-only", "--format=", commit).splitlines()
        assert len({path.split("/")[1] for path in touched}) == 1, f"{commit} touches several nodes: {touched}"


def test_sigterm_publishes_a_final_status_and_exits_0(remote: Remote, agents: Callable[..., AgentProcess]) -> None:
    """SIGTERM right after a new revision: the agent finishes, publishes status for it, exits 0 within 10 s."""
    remote.commit(lists(a="203.0.113.1"))
    agent = agents(remote, "gw-1", "--interval", "1s", "--status-interval", "30s")
    wait_for(agent.applied, timeout=10, what="first revision")
    revision = remote.commit(lists(a="203.0.113.4"))
    wait_for(lambda: agent.applied() == revision, timeout=5, what="the new revision")
    sent = time.monotonic()
    agent.signal(signal.SIGTERM)
    assert agent.wait(timeout=10) == 0
    assert time.monotonic() - sent < 10
    text = remote.status_file("status/gw-1/agent.yaml")
    assert text is not None
    assert f"lastAppliedRevision: {revision}" in text


def test_sigkill_and_restart_converge_without_repeating(remote: Remote, agents: Callable[..., AgentProcess]) -> None:
    """SIGKILL during a tick, then restart: the new revision is applied; a stop commits its final status (Stopped)
    and a converged restart commits only that it runs again, nothing after.
    (The heartbeat is set to a day: its five-minute tick could otherwise fall inside the test and commit.)"""
    remote.commit(lists(a="203.0.113.1"))
    flags = ("--interval", "1s", "--status-interval", "1s", "--status-heartbeat", "24h")
    agent = agents(remote, "gw-1", *flags, state="state")
    wait_for(agent.applied, timeout=10, what="first revision")
    revision = remote.commit(lists(a="203.0.113.1", b="203.0.113.2"))
    time.sleep(1.0)  # the next poll picks the revision up: the kill lands in or around its tick
    agent.signal(signal.SIGKILL)
    agent.wait(timeout=5)

    restarted = agents(remote, "gw-1", *flags, state="state")
    wait_for(lambda: restarted.applied() == revision, timeout=10, what="convergence after SIGKILL")
    wait_for(
        lambda: f"lastAppliedRevision: {revision}" in (remote.status_file("status/gw-1/agent.yaml") or ""),
        timeout=5,
        what="the converged status commit",
    )
    commits = remote.status_log("reconciler-status/gw-1")
    restarted.signal(signal.SIGTERM)
    assert restarted.wait(timeout=10) == 0
    stopped = remote.status_log("reconciler-status/gw-1")
    assert len(stopped) == len(commits) + 1  # the final status: Ready=False Stopped
    assert "reason: Stopped" in (remote.status_file("status/gw-1/agent.yaml") or "")

    again = agents(remote, "gw-1", *flags, state="state")
    wait_for(lambda: again.applied() == revision, timeout=10, what="the third start")
    wait_for(
        lambda: "reason: Stopped" not in (remote.status_file("status/gw-1/agent.yaml") or "Stopped"),
        timeout=5,
        what="the status saying the node runs again",
    )
    time.sleep(3)
    after = remote.status_log("reconciler-status/gw-1")
    assert len(after) == len(stopped) + 1, "an unchanged status was committed again"  # only: running again


def test_unsigned_commits_are_not_applied(tmp_path: Path, remote: Remote, agents: Callable[..., AgentProcess]) -> None:
    """With --verify-signatures, a commit signed by an allowed SSH key applies; an unsigned one is Stalled."""
    key = tmp_path / "signing-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"operator@example.invalid {(tmp_path / 'signing-key.pub').read_text()}")
    signed = remote.commit(lists(a="203.0.113.1"), sign_with=key)
    agent = agents(remote, "gw-1", "--interval", "1s", "--verify-signatures", "--allowed-signers", str(allowed))
    wait_for(lambda: agent.applied() == signed, timeout=10, what="the signed revision")

    unsigned = remote.commit(lists(a="203.0.113.66"))
    status = wait_for(
        lambda: (s := agent.status())["lastAttemptedRevision"] == unsigned and s, timeout=5, what="the unsigned one"
    )
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "UnsignedRevision")
    assert status["lastAppliedRevision"] == signed


def test_run_once_prints_plan_and_status_and_exits_by_outcome(
    tmp_path: Path, remote: Remote, cli: Callable[..., CliResult]
) -> None:
    """run --once --dry-run: exit 0 with plan and status, status committed; an invalid head exits 1."""
    revision = remote.commit(lists(a="203.0.113.1"))
    state = tmp_path / "once"
    before = set(descendants(os.getpid()))
    result = cli("run", "--once", "--dry-run", "--repo", remote.url, "--node", "gw-1", "--state-dir", state)
    assert result.code == 0
    assert set(descendants(os.getpid())) <= before  # git's helper processes end with the command
    assert result.out.splitlines()[0] == f"plan for node gw-1 at {revision[:12]}: 0 change(s)"
    assert "Ready=True DryRun" in result.out
    assert "dryRun: true" in (remote.status_file("status/gw-1/agent.yaml") or "")

    remote.commit(lists(a="10.0.0.1"))
    invalid = cli("run", "--once", "--repo", remote.url, "--node", "gw-1", "--state-dir", state)
    assert invalid.code == 1
    assert "Stalled=True InvalidDesiredState" in invalid.out


def test_path_selects_the_desired_state_folder(tmp_path: Path, remote: Remote, cli: Callable[..., CliResult]) -> None:
    """--path reads the desired state from a folder of the repository and ignores the rest."""
    files = {f"desired-state/{name}": text for name, text in lists(a="203.0.113.1").items()}
    files["other/broken.yaml"] = "not: [valid"
    remote.commit(files)
    state = tmp_path / "path"
    result = cli(
        "run", "--once", "--repo", remote.url, "--path", "desired-state", "--node", "gw-1", "--state-dir", state
    )
    assert result.code == 0, result.out
    assert "EgressAllowList/a: Ready=True Applied" in result.out
    assert "node gw-1: desired state from branch main" in result.out
