"""The state file: a round trip, refusals, each capability's versioned part."""

from __future__ import annotations

import pytest

from reconciler.status import conditions as cond
from reconciler.status.state_file import CapabilityState, SavedState, StateFileError, decode


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
