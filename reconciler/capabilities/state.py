"""Per-resource state: what a capability remembers about one resource between passes (a pool's member health
and log positions, an edge network's histories, a gateway's memory of answers), owned by the framework.

A capability declares the type (``state_type``, a dataclass) and its version; the agent holds one instance per
resource, hands it to ``observe``, ``plan`` and ``apply``, writes it to the state file, reads it back at start
and drops it when the resource leaves. One codec (pydantic's, over the dataclass) turns every kind's state into
JSON values and back: a field marked ``Runtime`` (open files, what was last seen, for metrics) is not written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import Field, TypeAdapter, ValidationError

S = TypeVar("S")

# ``Annotated[T, Runtime]``: kept in memory with the state, never written to the state file.
Runtime = Field(exclude=True)


@dataclass(slots=True)
class NoState:
    """For capabilities that keep nothing between passes: what they act on is all in the world."""


class StateCodec(Generic[S]):
    """A state type's JSON form. Decoding a record that does not fit raises ``ValueError``."""

    def __init__(self, state_type: type[S]) -> None:
        self.state_type = state_type
        self.adapter: TypeAdapter[S] = _adapter(state_type)  # type: ignore[arg-type]  # classes are hashable

    def encode(self, state: S) -> dict[str, Any]:
        encoded: dict[str, Any] = self.adapter.dump_python(state, mode="json")
        return encoded

    def decode(self, data: object) -> S:
        if not isinstance(data, Mapping):
            raise ValueError(f"a {self.state_type.__name__} is an object, not {type(data).__name__}")
        try:
            return self.adapter.validate_python(dict(data))
        except ValidationError as exc:
            raise ValueError(str(exc)) from None

    def decode_all(self, records: object) -> tuple[dict[str, S], list[str]]:
        """Every readable resource's state of a ``{name: record}`` object, and why the others were left out."""
        states: dict[str, S] = {}
        problems: list[str] = []
        if not isinstance(records, Mapping):
            return states, [f"resources are an object, not {type(records).__name__}"]
        for name, record in records.items():
            try:
                states[str(name)] = self.decode(record)
            except ValueError as exc:
                problems.append(f"{name}: {exc.args[0].splitlines()[0] if exc.args else exc}")
        return states, problems


class StateOwner(Protocol):
    """What reading a kind's part of the state file needs of its capability (class attributes only)."""

    state_type: ClassVar[type[Any]]
    state_version: ClassVar[int]

    @classmethod
    def upgrade_state(cls, version: int, part: Mapping[str, Any]) -> Mapping[str, Any] | None: ...


def read_part(owner: type[StateOwner], version: int, part: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The states in a kind's part of the state file (``{"resources": {name: record}}`` at ``state_version``, an
    older version through ``upgrade_state``), and why any were left out."""
    if version == owner.state_version:
        records: object = part.get("resources", {})
    elif version < owner.state_version:
        records = owner.upgrade_state(version, part)
    else:
        records = None
    if records is None:
        return {}, [f"version {version} cannot be read (this agent writes {owner.state_version})"]
    return StateCodec(owner.state_type).decode_all(records)


@cache
def _adapter(state_type: Any) -> TypeAdapter[Any]:
    return TypeAdapter(state_type)
