"""The tick, in-process with fakes: transactional revisions, isolated failures, the gate, dry runs, restarts."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler.agent.metrics import Metrics
from reconciler.agent.runner import Agent
from reconciler.capabilities.base import ConfigurationOnly
from reconciler.capabilities.edge_network import EdgeNetworkCapability
from reconciler.errors import ApplyError, ObserveError
from reconciler.planning.plan import Action, Change, TargetPlan, Whole
from reconciler.settings import AgentSettings
from reconciler.status.state_file import decode
from reconciler.system.files import LocalFileSystem
from reconciler.testing import (
    FakeClock,
    FakeCommandRunner,
    FakeFetcher,
    FakeFileSystem,
    FakeGit,
    FakeResolver,
    RecordingCapability,
)
from tests.conftest import allow_list


def _files(**lists: str) -> dict[str, str]:
    return {f"{name}.yaml": allow_list(name, ip) for name, ip in lists.items()}


def _target(name: str, size: int = 1, removed: int = 0, added: int = 1) -> TargetPlan[str]:
    changes = [Change(f"old{i}", Action.REMOVE, before="x") for i in range(removed)]
    changes += [Change(f"new{i}", Action.ADD, after="y") for i in range(added)]
    return TargetPlan("EgressAllowList", name, Whole(f"set:{name}"), size, tuple(changes))


class World:
    """An agent over a fake remote, a fake clock and a recording capability for EgressAllowList."""

    def __init__(self, tmp_path: Path, *, dry_run: bool = False, verify: bool = False, force: bool = False) -> None:
        self.git = FakeGit()
        self.clock = FakeClock()
        self.capability = RecordingCapability("EgressAllowList")
        self.metrics = Metrics()
        self.files = FakeFileSystem()
        self.settings = AgentSettings(
            repo="fake",
            node="gw-1",
            state_dir=tmp_path / "state",
            dry_run=dry_run,
            verify_signatures=verify,
            force=force,
        )
        self.agent = self.restart()

    def restart(self) -> Agent:
        self.agent = Agent(
            self.settings,
            source=self.git,
            publisher=self.git,
            clock=self.clock,
            capabilities={"EgressAllowList": self.capability, "HealthStrategy": ConfigurationOnly("HealthStrategy")},
            metrics=self.metrics,
            files=self.files,
        )
        return self.agent

    def once(self) -> str:
        return asyncio.run(self.agent.run_once()).outcome

    def condition(self, key: tuple[str, str], kind: str = "Ready") -> tuple[str, str]:
        status = self.agent.reconciler.view.resources[key]
        found = next(c for c in status.conditions if c.type == kind)
        return found.status, found.reason

    def node(self, kind: str) -> tuple[str, str]:
        found = next(c for c in self.agent.reconciler.status.conditions if c.type == kind)
        return found.status, found.reason


def test_a_valid_revision_is_applied(tmp_path: Path) -> None:
    """Every resource is observed, planned and applied; the revision becomes the applied one."""
    world = World(tmp_path)
    world.capability.targets["a"] = [_target("a")]
    revision = world.git.push(_files(a="203.0.113.1", b="203.0.113.2"))
    assert world.once() == "applied"
    assert [name for name, _ in world.capability.applied] == ["a"]
    assert world.agent.reconciler.saved.applied_revision == revision
    assert world.condition(("EgressAllowList", "b")) == ("True", "Applied")
    assert world.git.status["status/gw-1/EgressAllowList/a.yaml"].startswith(b"apiVersion: reconciler/v1")


def test_an_invalid_revision_changes_nothing(tmp_path: Path) -> None:
    """A revision with an error is not applied at all; the node is Stalled with the located errors."""
    world = World(tmp_path)
    good = world.git.push(_files(a="203.0.113.1"))
    world.once()
    world.capability.targets["a"] = [_target("a")]
    bad = world.git.push(_files(a="203.0.113.1", b="10.0.0.1"))
    assert world.once() == "stalled"
    assert world.node("Stalled") == ("True", "InvalidDesiredState")
    assert world.agent.reconciler.saved.applied_revision == good
    assert world.agent.reconciler.saved.attempted_revision == bad
    [problem] = world.agent.reconciler.status.problems
    assert (problem.file, problem.line, problem.path) == ("repo/b.yaml", 6, "spec.entries[0].ip")
    assert b"InvalidDesiredState" in world.git.status["status/gw-1/agent.yaml"]
    assert b"b.yaml:6:11" in world.git.status["status/gw-1/agent.yaml"]

    fixed = world.git.push(_files(a="203.0.113.1", b="203.0.113.9"))
    assert world.once() == "applied"
    assert world.agent.reconciler.saved.applied_revision == fixed
    assert world.node("Stalled") == ("False", "Applied")


def test_a_failing_observer_degrades_only_its_resource(tmp_path: Path) -> None:
    """One resource's observer fails: it is Degraded, the other is applied, the revision is not 'applied'."""
    world = World(tmp_path)
    world.capability.failing_observe["a"] = OSError("cannot observe a")
    world.capability.targets["b"] = [_target("b")]
    world.git.push(_files(a="203.0.113.1", b="203.0.113.2"))
    assert world.once() == "degraded"
    assert world.condition(("EgressAllowList", "a"), "Degraded") == ("True", "ObserveFailed")
    assert [name for name, _ in world.capability.applied] == ["b"]
    assert world.agent.reconciler.saved.applied_revision is None
    assert world.node("Degraded") == ("True", "ResourcesFailing")


def test_a_failing_applier_degrades_only_its_resource(tmp_path: Path) -> None:
    """An apply error is reported on its resource, with the target, and counted in metrics."""
    world = World(tmp_path)
    world.capability.failing_apply["a"] = OSError("cannot apply set:a")
    world.capability.targets.update(a=[_target("a")], b=[_target("b")])
    world.git.push(_files(a="203.0.113.1", b="203.0.113.2"))
    assert world.once() == "degraded"
    assert world.condition(("EgressAllowList", "a")) == ("False", "ApplyFailed")
    assert world.condition(("EgressAllowList", "b")) == ("True", "Applied")
    assert b'reconciler_errors_total{component="applier"} 1.0' in world.metrics.exposition()


def test_the_safety_gate_holds_back_a_large_removal(tmp_path: Path) -> None:
    """Removing 12 of 20 members is refused (Stalled with the gate's message) unless forced."""
    world = World(tmp_path)
    world.capability.targets["a"] = [_target("a", size=20, removed=12, added=0)]
    world.git.push(_files(a="203.0.113.1"))
    assert world.once() == "degraded"
    status, reason = world.condition(("EgressAllowList", "a"), "Stalled")
    assert (status, reason) == ("True", "SafetyGate")
    assert world.capability.applied == []

    forced = World(tmp_path / "forced", force=True)
    forced.capability.targets["a"] = [_target("a", size=20, removed=12, added=0)]
    forced.git.push(_files(a="203.0.113.1"))
    assert forced.once() == "applied"
    assert len(forced.capability.applied) == 1


def test_dry_run_observes_and_plans_but_applies_nothing(tmp_path: Path) -> None:
    """--dry-run: the plan is there, nothing is applied, status says so."""
    world = World(tmp_path, dry_run=True)
    world.capability.targets["a"] = [_target("a")]
    world.git.push(_files(a="203.0.113.1"))
    world.once()
    assert world.capability.observed == ["a"]
    assert world.capability.applied == []
    assert world.agent.reconciler.plan.changes == 1
    assert world.condition(("EgressAllowList", "a")) == ("True", "DryRun")
    assert world.node("Ready") == ("True", "DryRun")
    assert b"dryRun: true" in world.git.status["status/gw-1/agent.yaml"]


def test_unsigned_revisions_are_refused(tmp_path: Path) -> None:
    """With signature verification, an unsigned commit is Stalled and not applied."""
    world = World(tmp_path, verify=True)
    signed = world.git.push(_files(a="203.0.113.1"))
    world.once()
    world.capability.targets["a"] = [_target("a")]
    world.git.push(_files(a="203.0.113.5"), signed=False)
    assert world.once() == "stalled"
    assert world.node("Stalled") == ("True", "UnsignedRevision")
    assert world.agent.reconciler.saved.applied_revision == signed
    assert world.agent.reconciler.desired_revision == signed


def test_a_restart_restores_the_applied_revision_first(tmp_path: Path) -> None:
    """After a restart with a newer invalid revision, the last good one is back in force and still enforced."""
    world = World(tmp_path)
    good = world.git.push(_files(a="203.0.113.1"))
    world.once()
    world.git.push(_files(a="10.0.0.1"))
    world.once()
    world.restart()
    world.capability.observed.clear()
    assert world.once() == "stalled"
    assert world.agent.reconciler.desired_revision == good
    assert world.capability.observed == ["a"]
    assert world.agent.reconciler.saved.applied_revision == good


def test_unchanged_status_makes_no_commit_and_keeps_transition_times(tmp_path: Path) -> None:
    """A second pass over the same revision changes no status file, so nothing is committed."""
    world = World(tmp_path)
    world.git.push(_files(a="203.0.113.1"))
    world.once()
    commits = list(world.git.status_commits)
    world.clock.advance(60)
    world.restart()
    assert world.once() == "unchanged"
    assert world.git.status_commits == commits


def test_the_heartbeat_moves_only_every_few_minutes(tmp_path: Path) -> None:
    """An unchanged node commits again only when its heartbeat is due (--status-heartbeat, 5 minutes), and then
    only agent.yaml's heartbeat changes: a fleet view can tell it from a node that stopped."""
    world = World(tmp_path)
    world.git.push(_files(a="203.0.113.1"))
    world.once()
    before = dict(world.git.status)
    commits = len(world.git.status_commits)
    for _ in range(10):  # five minutes in steps: the heartbeat moves once
        world.clock.advance(30)
        world.once()
    assert len(world.git.status_commits) == commits + 1
    changed = sorted(path for path in world.git.status if world.git.status[path] != before.get(path))
    assert changed == ["status/gw-1/agent.yaml"]
    assert b"heartbeat:" in world.git.status["status/gw-1/agent.yaml"]


def test_removed_resources_are_forgotten(tmp_path: Path) -> None:
    """A resource that leaves the desired state is handed to its capability's forget and leaves status."""
    world = World(tmp_path)
    world.git.push(_files(a="203.0.113.1", b="203.0.113.2"))
    world.once()
    world.git.push(_files(a="203.0.113.1"))
    world.once()
    assert world.capability.forgotten == [("EgressAllowList", "b")]
    assert ("EgressAllowList", "b") not in world.agent.reconciler.view.resources
    assert "status/gw-1/EgressAllowList/b.yaml" not in world.git.status


def test_a_new_process_removes_what_an_earlier_one_made(tmp_path: Path) -> None:
    """b was applied by an earlier process; the revision that drops it is loaded by a new one (a restart, run
    --once): b's capability still forgets it, the plan shows the removal, and the state file stops listing it."""
    world = World(tmp_path)
    world.git.push(_files(a="203.0.113.1", b="203.0.113.2"))
    world.once()
    assert sorted(world.agent.reconciler.saved.made) == ["EgressAllowList/a", "EgressAllowList/b"]
    world.git.push(_files(a="203.0.113.1"))
    world.restart()
    world.once()
    assert world.capability.forgotten == [("EgressAllowList", "b")]
    assert [(t.resource, str(t.target)) for t in world.agent.reconciler.plan.targets] == [
        ("EgressAllowList/b", "removed")
    ]
    assert sorted(world.agent.reconciler.saved.made) == ["EgressAllowList/a"]
    world.restart()
    world.once()
    assert world.capability.forgotten == [("EgressAllowList", "b")]  # once


def test_a_dry_run_shows_a_removal_and_keeps_it_pending(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.git.push(_files(a="203.0.113.1", b="203.0.113.2"))
    world.once()
    world.settings = replace(world.settings, dry_run=True)
    world.git.push(_files(a="203.0.113.1"))
    world.restart()
    world.once()
    assert world.capability.forgotten == []
    assert [t.resource for t in world.agent.reconciler.plan.targets] == ["EgressAllowList/b"]
    assert "EgressAllowList/b" in world.agent.reconciler.saved.made


def test_a_dry_run_records_nothing_as_made(tmp_path: Path) -> None:
    """A resource only dry-run has nothing in the world to remove later."""
    world = World(tmp_path, dry_run=True)
    world.git.push(_files(a="203.0.113.1"))
    world.once()
    assert world.agent.reconciler.saved.made == set()


def test_a_state_file_from_before_made_lists_the_resources_with_conditions() -> None:
    """Written by an agent that did not record ``made``: every resource with conditions had passes."""
    old = {
        "schemaVersion": 2,
        "lastAppliedRevision": "r1",
        "lastAttemptedRevision": "r1",
        "conditions": {"node": [], "EgressGateway/gw": [], "EgressRoute/via-gw": []},
        "capabilities": {},
    }
    assert decode(json.dumps(old).encode()).made == {"EgressGateway/gw", "EgressRoute/via-gw"}
    assert decode(decode(json.dumps(old).encode()).encode()).made == {"EgressGateway/gw", "EgressRoute/via-gw"}


def test_a_revision_applied_part_way_says_what_is_in_force(tmp_path: Path) -> None:
    """b's second target fails after its first was applied: b says it is partly at the new revision, each resource
    names the revision it last applied whole, and the node says how much of the new revision is in force."""
    world = World(tmp_path)
    first = world.git.push(_files(a="203.0.113.1", b="203.0.113.2"))
    world.once()
    world.capability.targets["a"] = [_target("a")]
    world.capability.targets["b"] = [
        _target("b"),
        TargetPlan("EgressAllowList", "b", Whole("set:b2"), 1, (Change("n", Action.ADD, after="y"),)),
    ]
    world.capability.failing_apply["b set:b2"] = ApplyError("cannot bind 127.0.0.1:5302")
    second = world.git.push(_files(a="203.0.113.1", b="203.0.113.3"))
    world.once()
    status = world.agent.handle.status_document()
    resources = {r["name"]: r for r in status["resources"]}
    assert (resources["a"]["appliedRevision"], resources["b"]["appliedRevision"]) == (second, first)
    ready = next(c for c in resources["b"]["conditions"] if c["type"] == "Ready")
    assert ready["message"] == (
        f"cannot bind 127.0.0.1:5302; applied part-way at revision {second[:12]} (1 of 2 target(s) done, set:b2 "
        "failed: what is in force is partly this revision)"
    )
    assert status["lastAppliedRevision"] == first
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["message"] == (
        f"1 resource(s) failing: EgressAllowList/b; revision {second[:12]} is in force for 1 of 2 resource(s), in part "
        f"for the failing ones; {first[:12]} is the last revision applied whole"
    )


def test_kinds_without_a_capability_are_reported_not_enforced(tmp_path: Path) -> None:
    """A kind this agent cannot enforce yet is validated and shown as NotEnforced, without failing the node."""
    world = World(tmp_path)
    world.agent.reconciler.capabilities = {}
    world.git.push(_files(a="203.0.113.1"))
    assert world.once() == "applied"
    assert world.condition(("EgressAllowList", "a")) == ("False", "NotEnforced")
    assert world.node("Ready") == ("True", "Applied")


def test_a_fetch_failure_is_raised_by_run_once(tmp_path: Path) -> None:
    """--once has nothing to apply without the remote: the fetch error reaches the caller."""
    world = World(tmp_path)
    world.git.fail_fetch = True
    with pytest.raises(Exception, match="remote unreachable"):
        world.once()


def test_state_survives_a_restart_in_the_state_file(tmp_path: Path) -> None:
    """Revisions and conditions are written (atomically) to state.json and read back by the next process."""
    world = World(tmp_path)
    revision = world.git.push(_files(a="203.0.113.1"))
    world.once()
    state_file = world.settings.state_dir / "state.json"
    assert state_file in world.files.writes
    assert revision.encode() in world.files.files[state_file]
    world.git.fail_fetch = True
    world.restart()
    assert world.agent.reconciler.saved.applied_revision == revision


def test_an_unreadable_state_file_is_ignored(tmp_path: Path) -> None:
    """A corrupt or foreign state file does not stop the agent: it starts fresh."""
    world = World(tmp_path)
    world.files.files[world.settings.state_dir / "state.json"] = b"{not json"
    world.restart()
    world.git.push(_files(a="203.0.113.1"))
    assert world.once() == "applied"


def test_a_failure_that_is_not_retryable_holds_the_resource_until_the_next_revision(tmp_path: Path) -> None:
    """ApplyError(retryable=False): Stalled, not tried again on its own clock; a new revision tries again."""
    world = World(tmp_path)
    world.capability.failing_apply["a"] = ApplyError("the set type cannot change in place", retryable=False)
    world.capability.targets["a"] = [_target("a")]
    world.git.push(_files(a="203.0.113.1"))
    assert world.once() == "degraded"
    assert world.condition(("EgressAllowList", "a"), "Stalled") == ("True", "ApplyFailed")
    observed = len(world.capability.observed)
    asyncio.run(world.agent.reconciler.reconcile_one(("EgressAllowList", "a")))
    assert len(world.capability.observed) == observed  # held: no pass before the next revision
    world.capability.failing_apply.clear()
    world.git.push(_files(a="203.0.113.9"))
    assert world.once() == "applied"
    assert world.condition(("EgressAllowList", "a")) == ("True", "Applied")


def test_a_retryable_failure_is_degraded_and_tried_again(tmp_path: Path) -> None:
    """ObserveError (retryable): Degraded with its backoff counted; the next pass on its own clock recovers."""
    world = World(tmp_path)
    world.capability.failing_observe["a"] = ObserveError("resolver timed out")
    world.git.push(_files(a="203.0.113.1"))
    assert world.once() == "degraded"
    assert world.condition(("EgressAllowList", "a"), "Degraded") == ("True", "ObserveFailed")
    slot = world.agent.reconciler.slots[("EgressAllowList", "a")]
    assert slot.backoff.failures == 1
    world.capability.failing_observe.clear()
    asyncio.run(world.agent.reconciler.reconcile_one(("EgressAllowList", "a")))
    assert world.condition(("EgressAllowList", "a")) == ("True", "Applied")
    assert slot.backoff.failures == 0


def test_each_resources_state_is_the_frameworks_saved_restored_by_version_and_dropped(tmp_path: Path) -> None:
    """The agent holds every resource's state: the capability finds it again after a restart (its observations
    go on counting), a part written by another version of the capability is not used, and a resource that left
    takes its state with it (out of memory and out of the state file)."""
    world = World(tmp_path)
    world.git.push(_files(a="203.0.113.1", b="203.0.113.2"))
    world.once()
    world.restart()
    world.once()
    assert ("a", 2) in world.capability.counted  # the second process went on from the first one's state
    state_file = world.settings.state_dir / "state.json"
    part = json.loads(world.files.files[state_file])["capabilities"]["EgressAllowList"]
    assert part == {"version": 1, "state": {"resources": {"a": {"observations": 2}, "b": {"observations": 2}}}}

    world.files.files[state_file] = world.files.files[state_file].replace(b'"version": 1', b'"version": 7')
    world.restart()
    world.once()
    assert ("a", 1) in world.capability.counted  # a newer version's part: started as new

    world.git.push(_files(a="203.0.113.1"))
    world.once()
    assert "b" not in world.capability.states
    part = json.loads(world.files.files[state_file])["capabilities"]["EgressAllowList"]
    assert sorted(part["state"]["resources"]) == ["a"]


def test_a_resource_that_works_less_well_than_desired_is_degraded_not_failed(tmp_path: Path) -> None:
    """Everything applied, but the capability reports a degraded world (no healthy target): the resource and the
    node say so, the revision counts as applied, nothing is retried."""
    world = World(tmp_path)
    world.capability.degraded["a"] = ("NoHealthyTarget", "app a/web has no healthy target (down: x:1 (refused))")
    revision = world.git.push(_files(a="203.0.113.1", b="203.0.113.2"))
    assert world.once() == "applied"
    assert world.condition(("EgressAllowList", "a"), "Degraded") == ("True", "NoHealthyTarget")
    assert world.condition(("EgressAllowList", "b")) == ("True", "Applied")
    assert world.node("Degraded") == ("True", "ResourcesDegraded")
    assert world.agent.reconciler.saved.applied_revision == revision
    assert world.agent.reconciler.slots[("EgressAllowList", "a")].backoff.failures == 0


def test_a_held_plan_is_approved_by_its_checksum_once(tmp_path: Path) -> None:
    """The node says SafetyGate; the message names the plan's checksum; approving it applies exactly that plan
    once, and the same removal planned again later is held again."""
    world = World(tmp_path)
    big = _target("a", size=20, removed=12, added=0)
    world.capability.targets["a"] = [big]
    world.git.push(_files(a="203.0.113.1"))
    assert world.once() == "degraded"
    assert world.node("Stalled") == ("True", "SafetyGate")
    status = world.agent.reconciler.view.resources[("EgressAllowList", "a")]
    stalled = next(c for c in status.conditions if c.type == "Stalled")
    assert f"approve plan {big.checksum[:16]} (POST /plan/approve)" in stalled.message
    reconciler = world.agent.reconciler
    assert reconciler.approve("0" * 64) == []

    async def approve_and_wait() -> None:
        assert reconciler.approve(big.checksum) == ["EgressAllowList/a"]
        await reconciler.settle()

    asyncio.run(approve_and_wait())
    assert world.capability.applied == [("a", big)]
    assert world.condition(("EgressAllowList", "a")) == ("True", "Applied")
    asyncio.run(reconciler.reconcile_one(("EgressAllowList", "a")))
    assert world.condition(("EgressAllowList", "a"), "Stalled") == ("True", "SafetyGate")
    assert len(world.capability.applied) == 1


def test_capabilities_are_given_the_desired_state_with_its_files(tmp_path: Path) -> None:
    """Every capability sees the node's desired state when a revision comes into force, with the folder of the
    revision's files (relative paths in resources name them); a source that cannot provide them stalls the node."""
    world = World(tmp_path)
    revision = world.git.push(_files(a="203.0.113.1"))
    world.git.files[revision] = str(tmp_path / "files-of-revision")
    assert world.once() == "applied"
    (used,) = world.capability.used
    assert used.files_root == str(tmp_path / "files-of-revision")
    assert [r.metadata.name for r in used] == ["a"]


def test_a_damaged_state_file_is_kept_aside_shown_and_the_previous_one_used(tmp_path: Path) -> None:
    """On the real file system: every write keeps the previous good file as state.json.1; a truncated state.json
    is moved aside (not overwritten), the previous one restored, StateRestored=False shown in /status and the
    metrics until the next write; only the newest three damaged files stay."""
    world = World(tmp_path)
    world.files = LocalFileSystem()  # type: ignore[assignment]
    world.restart()
    first = world.git.push(_files(a="203.0.113.1"))
    world.once()
    second = world.git.push(_files(a="203.0.113.2"))
    world.once()
    folder = world.settings.state_dir
    assert first in json.loads((folder / "state.json.1").read_text())["lastAppliedRevision"]
    content = (folder / "state.json").read_bytes()
    assert second.encode() in content
    (folder / "state.json").write_bytes(content[: len(content) // 2])  # cut short, as by a crash or a bad disk

    world.git.fail_fetch = True
    clock_start = world.clock.now()
    agent = world.restart()
    kept = sorted(p.name for p in folder.glob("state.json.damaged-*"))
    assert len(kept) == 1
    assert (folder / kept[0]).read_bytes() == content[: len(content) // 2]  # the damaged file, whole
    assert agent.reconciler.saved.applied_revision == first  # from state.json.1
    restored = next(c for c in agent.handle.status_document()["conditions"] if c["type"] == "StateRestored")
    assert restored["status"] == "False"
    assert "damaged" in restored["message"]
    assert "restored from state.json.1" in restored["message"]
    assert 'condition{kind="Node",name="gw-1",type="StateRestored"} 0.0' in _metrics(agent)
    agent.persist()
    assert not any(c["type"] == "StateRestored" for c in agent.handle.status_document()["conditions"])
    assert 'type="StateRestored"} 1.0' in _metrics(agent)

    for step in range(4):  # more damage: only the newest three kept
        (folder / "state.json").write_bytes(b"{")
        world.clock.advance(1 + step)
        world.restart()
    assert len(list(folder.glob("state.json.damaged-*"))) == 3
    assert world.clock.now() > clock_start


def _metrics(agent: Agent) -> str:
    return asyncio.run(agent.handle.metrics_exposition()).decode()


EDGES = """apiVersion: reconciler/v1
kind: EdgeNetwork
metadata: {{name: edges}}
spec:
  edges: [192.0.2.21, 192.0.2.22, 192.0.2.23, 192.0.2.24]
  object: {{url: "http://{{host}}/edgemanage.txt", sha256: "{sha256}"}}
  interval: 10s
  liveCount: 2
  zones: [{{name: example.org}}]
  soa: {{mname: ns.example.net., rname: hostmaster.example.org.}}
  nameservers: [ns.example.net.]
  output: {{dir: {output}, check: false}}
"""


def test_a_steady_edge_network_commits_only_its_heartbeat_in_five_minutes(tmp_path: Path) -> None:
    """Probed every 10 s for 5 minutes with timings that differ at every round, a network whose tiers and live set
    stay put makes no status commit but the heartbeat's (once per 5 minutes); the timings are still in /status."""
    git, clock, fetcher = FakeGit(), FakeClock(), FakeFetcher()
    git.push({"edges.yaml": EDGES.format(sha256=hashlib.sha256(b"object").hexdigest(), output=tmp_path / "zones")})
    settings = AgentSettings(repo="fake", node="dns-1", state_dir=tmp_path / "state")
    capability = EdgeNetworkCapability(fetcher, FakeResolver(), FakeCommandRunner(), clock)
    agent = Agent(
        settings,
        source=git,
        publisher=git,
        clock=clock,
        capabilities={"EdgeNetwork": capability},
        metrics=Metrics(),
        files=FakeFileSystem(),
    )
    asyncio.run(agent.run_once())
    assert (tmp_path / "zones" / "example.org.zone").exists()
    before, commits = dict(git.status), len(git.status_commits)
    for _ in range(30):
        clock.advance(10)
        asyncio.run(agent.run_once())
    assert fetcher.fetches >= 4 * 31  # every round probed every edge (the first one twice: after its apply)
    assert len(git.status_commits) <= commits + 1  # the heartbeat moves once in 5 minutes
    assert sorted(path for path in git.status if git.status[path] != before.get(path)) in (
        [],
        ["status/dns-1/agent.yaml"],
    )
    shown = next(r for r in agent.handle.status_document()["resources"] if r["kind"] == "EdgeNetwork")["observations"]
    assert set(shown["timings"]) == {"192.0.2.21", "192.0.2.22", "192.0.2.23", "192.0.2.24"}
    assert b"timings" not in git.status["status/dns-1/EdgeNetwork/edges.yaml"]
