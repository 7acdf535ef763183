"""The running agent in-process (fake git, real scheduler and workers): retries, observe intervals, webhooks."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from ruamel.yaml import YAML

from reconciler.agent.metrics import Metrics
from reconciler.agent.runner import Agent
from reconciler.planning.plan import Action, Change, TargetPlan, Whole
from reconciler.settings import AgentSettings
from reconciler.testing import FakeGit, RecordingCapability
from tests.conftest import allow_list


async def _until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)


def _observed_revision(agent: Agent, name: str) -> str | None:
    """The revision the allow-list's last finished pass observed; None until its first pass has recorded a status (the
    capability sees the apply a moment before that)."""
    status = agent.reconciler.view.resources.get(("EgressAllowList", name))
    return None if status is None else status.observed_revision


def _agent(
    tmp_path: Path, git: FakeGit, capability: RecordingCapability, interval: timedelta = timedelta(seconds=30)
) -> Agent:
    settings = AgentSettings(
        repo="fake",
        node="gw-1",
        state_dir=tmp_path / "state",
        listen="127.0.0.1:0",
        interval=interval,
        status_interval=timedelta(seconds=0.2),
        shutdown_timeout=timedelta(seconds=2),
    )
    return Agent(settings, source=git, publisher=git, capabilities={"EgressAllowList": capability}, metrics=Metrics())


def test_a_new_revision_does_not_wait_behind_a_failing_one(tmp_path: Path) -> None:
    """A failing apply is retried with backoff; a new revision (here via the webhook path) is applied at once."""
    git = FakeGit()
    capability = RecordingCapability("EgressAllowList")
    capability.failing_apply["a"] = OSError("cannot apply")
    capability.targets["a"] = [
        TargetPlan("EgressAllowList", "a", Whole("set:a"), 1, (Change("x", Action.ADD, after="x"),))
    ]
    git.push({"a.yaml": allow_list("a", "203.0.113.1")})
    agent = _agent(tmp_path, git, capability)

    async def scenario() -> None:
        task = asyncio.create_task(agent.run(), name="agent-under-test")
        await _until(lambda: len(capability.observed) >= 2, timeout=5)  # the first try and one retry
        slot = agent.reconciler.slots[("EgressAllowList", "a")]
        assert slot.backoff.failures >= 1
        capability.failing_apply.clear()
        revision = git.push({"a.yaml": allow_list("a", "203.0.113.2")})
        started = time.monotonic()
        agent.handle.trigger_sync("test")
        await _until(lambda: agent.reconciler.saved.applied_revision == revision, timeout=2)
        assert time.monotonic() - started < 1
        await _until(lambda: revision.encode() in git.status.get("status/gw-1/agent.yaml", b""), timeout=2)
        agent.stop()
        assert await asyncio.wait_for(task, 10) == 0

    asyncio.run(scenario())
    assert agent.reconciler.slots[("EgressAllowList", "a")].backoff.failures == 0


def test_observe_intervals_reconcile_without_new_revisions(tmp_path: Path) -> None:
    """A capability's observe interval re-runs the reconcile on its own clock."""
    git = FakeGit()
    capability = RecordingCapability("EgressAllowList", interval=timedelta(seconds=0.2))
    git.push({"a.yaml": allow_list("a", "203.0.113.1")})
    agent = _agent(tmp_path, git, capability)

    async def scenario() -> None:
        task = asyncio.create_task(agent.run(), name="agent-under-test")
        await _until(lambda: len(capability.observed) >= 4, timeout=5)
        assert git.fetches == 1  # no new fetch was needed for those observations
        agent.stop()
        assert await asyncio.wait_for(task, 10) == 0

    asyncio.run(scenario())


def test_fetch_failures_back_off_and_recover(tmp_path: Path) -> None:
    """While the remote fails, fetches back off (visible in metrics); when it returns, the revision applies."""
    git = FakeGit(fail_fetch=True)
    capability = RecordingCapability("EgressAllowList")
    revision = git.push({"a.yaml": allow_list("a", "203.0.113.1")})
    agent = _agent(tmp_path, git, capability, interval=timedelta(seconds=0.1))

    async def scenario() -> None:
        task = asyncio.create_task(agent.run(), name="agent-under-test")
        await _until(lambda: agent.fetching.backoff.failures >= 2, timeout=5)
        assert b"reconciler_git_fetch_backoff_seconds 0.0" not in await agent.handle.metrics_exposition()
        assert not agent.handle.is_ready()
        git.fail_fetch = False
        await _until(lambda: agent.reconciler.saved.applied_revision == revision, timeout=5)
        assert b"reconciler_git_fetch_backoff_seconds 0.0" in await agent.handle.metrics_exposition()
        agent.stop()
        assert await asyncio.wait_for(task, 10) == 0

    asyncio.run(scenario())


def test_a_hanging_observer_delays_no_other_resource(tmp_path: Path) -> None:
    """Resource a's observer hangs for 30 s: b is applied at once, a new revision of b too, and a's own clock
    and the stop are not held up by it."""
    git = FakeGit()
    capability = RecordingCapability("EgressAllowList", observe_delay={"a": 30.0})
    capability.targets["b"] = [
        TargetPlan("EgressAllowList", "b", Whole("set:b"), 1, (Change("x", Action.ADD, after="x"),))
    ]
    git.push({"a.yaml": allow_list("a", "203.0.113.1"), "b.yaml": allow_list("b", "203.0.113.2")})
    agent = _agent(tmp_path, git, capability)
    agent.reconciler.passes.observe_timeout = 60.0

    async def scenario() -> None:
        started = time.monotonic()
        task = asyncio.create_task(agent.run(), name="agent-under-test")
        await _until(lambda: [name for name, _ in capability.applied] == ["b"], timeout=2)
        assert time.monotonic() - started < 1.5
        assert agent.reconciler.slots[("EgressAllowList", "a")].lock.locked()  # a is still being observed
        revision = git.push({"a.yaml": allow_list("a", "203.0.113.1"), "b.yaml": allow_list("b", "203.0.113.3")})
        agent.handle.trigger_sync("test")
        await _until(lambda: _observed_revision(agent, "b") == revision, 2)
        assert [name for name, _ in capability.applied] == ["b", "b"]
        assert agent.reconciler.saved.applied_revision is None  # a has not finished at any revision
        agent.stop()
        assert await asyncio.wait_for(task, 10) == 3  # a's pass was cut short: the stop says it was not clean
        assert time.monotonic() - started < 8

    asyncio.run(scenario())


class _FailingScrape(RecordingCapability):
    async def before_scrape(self) -> None:
        raise OSError("kernel not readable")


def test_a_capability_that_cannot_read_its_metrics_costs_only_its_own(tmp_path: Path) -> None:
    """/metrics still answers, with the agent's own metrics, when one capability's read before the scrape fails."""
    agent = _agent(tmp_path, FakeGit(), _FailingScrape("EgressAllowList"))
    exposition = asyncio.run(agent.handle.metrics_exposition())
    assert b"reconciler_git_fetch_backoff_seconds" in exposition


class _ManySamples(RecordingCapability):
    """A capability with 100,000 samples, as an egress gateway with 50,000 destinations has."""

    def collectors(self) -> Sequence[Collector]:
        family = CounterMetricFamily("many_samples", "One per destination.", labels=["ip"])
        for number in range(100_000):
            family.add_metric([f"198.51.{number // 256 % 256}.{number % 256}/{number // 65536}"], float(number))
        return (_Fixed([family]),)


class _Fixed(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def test_a_big_scrape_is_written_out_while_the_loop_goes_on(tmp_path: Path) -> None:
    """The text of 100,000 samples takes the better part of a second: it is made in a thread, so the agent's loop
    (health checks, the API, passes) keeps turning meanwhile; on the loop it made no turn at all."""
    agent = _agent(tmp_path, FakeGit(), _ManySamples("EgressAllowList"))

    async def scenario() -> tuple[bytes, int]:
        turns = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal turns
            while not done.is_set():
                await asyncio.sleep(0.005)
                turns += 1

        ticking = asyncio.create_task(ticker())
        await asyncio.sleep(0.02)
        before = turns
        exposition = await agent.handle.metrics_exposition()
        counted = turns - before
        done.set()
        await ticking
        return exposition, counted

    exposition, turns = asyncio.run(scenario())
    assert exposition.count(b"\nmany_samples_total{") == 100_000
    assert b"reconciler_git_fetch_backoff_seconds" in exposition
    assert turns >= 5


def test_a_stopped_agent_says_so_with_the_time_of_its_stop(tmp_path: Path) -> None:
    """After a stop, the final status (state dir and status branch) is Ready=False Stopped, names the revision left
    in force, and its heartbeat is the stop's time, not the last tick of the 5-minute heartbeat grid."""
    git = FakeGit()
    capability = RecordingCapability("EgressAllowList")
    revision = git.push({"a.yaml": allow_list("a", "203.0.113.1")})
    agent = _agent(tmp_path, git, capability)

    async def scenario() -> float:
        task = asyncio.create_task(agent.run())
        await _until(lambda: agent.reconciler.saved.applied_revision == revision and git.status_commits, 5)
        await asyncio.sleep(0.3)
        agent.stop()
        stopped_at = time.time()
        assert await asyncio.wait_for(task, 10) == 0
        return stopped_at

    stopped_at = asyncio.run(scenario())
    node = YAML(typ="safe").load(git.status["status/gw-1/agent.yaml"])
    ready = next(c for c in node["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Stopped")
    assert ready["message"].endswith(f"revision {revision[:12]} stays applied, unwatched")
    heartbeat = datetime.fromisoformat(node["heartbeat"].replace("Z", "+00:00")).timestamp()
    assert abs(heartbeat - stopped_at) < 2
    local = json.loads((tmp_path / "state" / "status.json").read_text())
    assert [c["reason"] for c in local["conditions"] if c["type"] == "Ready"] == ["Stopped"]
