"""Small parts of the agent: backoff, conditions, the state file, settings shown in /config."""

from __future__ import annotations

import random

import pytest

from reconciler.agent.backoff import Backoff
from reconciler.settings import AgentSettings
from reconciler.status import conditions as cond
from reconciler.status.state_file import CapabilityState, SavedState, StateFileError, decode


def test_backoff_doubles_with_jitter_and_resets() -> None:
    """Delays double up to the cap, each within [50 %, 100 %] of the nominal value; reset starts over."""
    backoff = Backoff(base=1.0, cap=8.0, rng=random.Random(1))
    delays = [backoff.next() for _ in range(6)]
    for delay, nominal in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
        assert nominal / 2 <= delay <= nominal
    backoff.reset()
    assert backoff.next() <= 1.0


def test_transition_time_changes_only_with_status() -> None:
    """Same status, new reason: the time is kept; a new status: the time moves."""
    first = cond.carry_over((), cond.ready("Applied"), now=0)
    same = cond.carry_over(first, cond.ready("DryRun", "other"), now=100)
    assert [c.last_transition_time for c in same] == [c.last_transition_time for c in first]
    flipped = cond.carry_over(first, cond.stalled("InvalidDesiredState", "x"), now=100)
    stalled = next(c for c in flipped if c.type == "Stalled")
    assert stalled.last_transition_time == "1970-01-01T00:01:40Z"


def test_state_file_round_trip_and_refusals() -> None:
    """The state file reads back what was written; other versions and garbage are refused, not guessed."""
    state = SavedState("a" * 40, "b" * 40, {"node": cond.ready("Applied")})
    again = decode(state.encode())
    assert (again.applied_revision, again.attempted_revision) == ("a" * 40, "b" * 40)
    assert {c.type for c in again.conditions["node"]} == {"Ready", "Degraded", "Stalled"}
    with pytest.raises(StateFileError, match="schema version 3"):
        decode(b'{"schemaVersion": 3}')
    with pytest.raises(StateFileError, match="not JSON"):
        decode(b"\xff")


def test_each_capability_keeps_its_own_versioned_part_and_version_1_files_are_converted() -> None:
    """Capabilities' parts round-trip with their versions; a version 1 file's proxy health becomes TCPProxy's part."""
    state = SavedState("a" * 40, None, {}, {"TCPProxy": CapabilityState(1, {"targetsDown": {"p/app": ["x:1"]}})})
    again = decode(state.encode())
    assert again.capabilities == {"TCPProxy": CapabilityState(1, {"targetsDown": {"p/app": ["x:1"]}})}
    old = (
        b'{"schemaVersion": 1, "lastAppliedRevision": "r", "conditions": {},'
        b' "extra": {"proxyTargetsDown": {"p/a": ["y:2"]}}}'
    )
    converted = decode(old)
    assert converted.applied_revision == "r"
    assert converted.capabilities == {"TCPProxy": CapabilityState(1, {"targetsDown": {"p/a": ["y:2"]}})}


def test_config_hides_secrets_and_credentials() -> None:
    """GET /config shows the settings without the webhook secret or a token in the URL."""
    settings = AgentSettings(repo="https://user:tok@git.example/r.git", node="n", webhook_secret="s3cret")
    shown = settings.public()
    assert shown["repo"] == "https://***@git.example/r.git"
    assert "s3cret" not in repr(shown)
    assert "s3cret" not in repr(settings)
