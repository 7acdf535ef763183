"""The framework's per-resource states: one per resource of every kind with a capability, created at its first
pass, read back from the state file at start, written to it after passes, dropped when the resource leaves.

A kind's part of the state file is ``{"resources": {name: record}}`` under its own ``state_version``; a part of
an older version goes through the capability's ``upgrade_state``, one of a newer version (a downgrade) or a
record that does not fit is left out and logged: the resource starts as if new, and nothing else is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from reconciler.capabilities.registry import AnyCapability, NoState, StateCodec, read_part
from reconciler.status.state_file import CapabilityState

log = logging.getLogger(__name__)


class ResourceStates:
    """Every resource's state, by kind and name; each capability sees its own kind's, read-only."""

    def __init__(self, capabilities: Mapping[str, AnyCapability]) -> None:
        self.capabilities = capabilities
        self.codecs = {
            kind: StateCodec(c.state_type) for kind, c in capabilities.items() if c.state_type is not NoState
        }
        self.by_kind: dict[str, dict[str, Any]] = {kind: {} for kind in capabilities}
        for kind, capability in capabilities.items():
            capability.states = MappingProxyType(self.by_kind[kind])

    def of(self, kind: str, name: str) -> Any:
        """The state of resource ``kind/name``, a new one the first time."""
        states = self.by_kind[kind]
        state = states.get(name)
        if state is None:
            state = states[name] = self.capabilities[kind].new_state()
        return state

    def drop(self, kind: str, name: str) -> Any | None:
        """Forget the state of a resource that left (it is no longer written); the state it had, if any."""
        return self.by_kind.get(kind, {}).pop(name, None)

    def restore(self, parts: Mapping[str, CapabilityState]) -> None:
        for kind in self.codecs:
            part = parts.get(kind)
            if part is None:
                continue
            states, problems = read_part(type(self.capabilities[kind]), part.version, part.state)
            for problem in problems:
                log.warning("saved state ignored kind=%s problem=%s", kind, problem)
            self.by_kind[kind].update(states)

    def encode(self) -> dict[str, CapabilityState]:
        """Every kind's part of the state file."""
        return {
            kind: CapabilityState(
                self.capabilities[kind].state_version,
                {"resources": {name: codec.encode(state) for name, state in sorted(self.by_kind[kind].items())}},
            )
            for kind, codec in self.codecs.items()
        }
