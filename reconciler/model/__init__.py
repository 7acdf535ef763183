"""The desired-state models: one module per kind, the envelope in ``common``, value types in ``values``.

``KINDS`` is the fixed registry of kinds (no import paths from YAML); ``DesiredState`` is what the loader returns.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, TypeVar, get_args

from pydantic import Field

from reconciler.model.common import API_VERSION, Resource
from reconciler.model.edge_network import EdgeNetwork
from reconciler.model.egress_allow_list import EgressAllowList
from reconciler.model.egress_gateway import EgressGateway
from reconciler.model.egress_route import EgressRoute
from reconciler.model.health_strategy import HealthStrategy
from reconciler.model.ip_pool import IPPool
from reconciler.model.tcp_proxy import TCPProxy

# The one list of kinds, in the order they are reconciled and reported; KINDS is derived from it.
AnyResource = Annotated[
    HealthStrategy | EgressAllowList | EgressGateway | EgressRoute | IPPool | TCPProxy | EdgeNetwork,
    Field(discriminator="kind"),
]

KINDS: Mapping[str, type[Resource]] = {model.KIND: model for model in get_args(get_args(AnyResource)[0])}

R = TypeVar("R", bound=Resource)


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a resource was written: file (as shown to the user), 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class DesiredState:
    """Every valid resource of a desired-state tree, by kind and name, with where each one was written."""

    resources: Mapping[str, Mapping[str, Resource]]
    sources: Mapping[tuple[str, str], SourceRef] = field(default_factory=dict)
    files_root: str | None = None  # the folder relative file paths of resources name (DesiredStateSource.files_at)

    def of_kind(self, model: type[R]) -> tuple[R, ...]:
        """Resources of one kind, in name order."""
        found = self.resources.get(model.KIND, {})
        return tuple(r for _, r in sorted(found.items()) if isinstance(r, model))

    def get(self, model: type[R], name: str) -> R | None:
        resource = self.resources.get(model.KIND, {}).get(name)
        return resource if isinstance(resource, model) else None

    def source_of(self, resource: Resource) -> SourceRef | None:
        return self.sources.get((resource.KIND, resource.metadata.name))

    def __iter__(self) -> Iterator[Resource]:
        for kind in KINDS:
            yield from (r for _, r in sorted(self.resources.get(kind, {}).items()))

    def __len__(self) -> int:
        return sum(len(v) for v in self.resources.values())

    def for_node(self, node: str) -> DesiredState:
        """Only what selects ``node`` (spec.nodes)."""
        kept = {
            kind: {name: r for name, r in by_name.items() if r.spec.selects(node)}
            for kind, by_name in self.resources.items()
        }
        return DesiredState(kept, self.sources, self.files_root)


__all__ = [
    "API_VERSION",
    "KINDS",
    "AnyResource",
    "DesiredState",
    "EdgeNetwork",
    "EgressAllowList",
    "EgressGateway",
    "EgressRoute",
    "HealthStrategy",
    "IPPool",
    "Resource",
    "SourceRef",
    "TCPProxy",
]
