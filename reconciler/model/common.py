"""What every resource document shares: the envelope (apiVersion, kind, metadata, spec) and the model settings.

Models are strict (unknown fields are errors), frozen (desired state is a value) and self-documenting (every field
has a description, which becomes the JSON Schema and the editor hover text).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from reconciler.model.values import ALL_NODES, ListenAddress, NodeSelectorItem, ResourceName

API_VERSION = "reconciler/v1"


def ensure_unique(values: Iterable[Hashable], what: str) -> None:
    """Raise ``ValueError("<what> <value> is listed twice")`` for the first repeated value."""
    seen: set[Hashable] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value} is listed twice")
        seen.add(value)


class Strict(BaseModel):
    """Base of every desired-state model."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False, use_attribute_docstrings=False)


class Metadata(Strict):
    """Identifies a resource."""

    name: ResourceName = Field(
        description="Unique per kind: lower-case letters, digits and '-', at most 63 characters."
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Free-form key/value labels; reconciler does not interpret them."
    )


class Safety(Strict):
    """How much of a target one plan may remove or change before the agent refuses it."""

    maxChangePercent: int = Field(
        default=30,
        ge=0,
        le=100,
        description="Share of a target's members (targets of 10 or more) one plan may remove or change; "
        "100 turns the check off for this resource.",
    )


class Spec(Strict):
    """Base of every spec: which nodes it applies to, and its safety limit."""

    nodes: tuple[NodeSelectorItem, ...] = Field(
        default=(ALL_NODES,),
        min_length=1,
        description="Node names this resource applies to; '*' means every node (the default). "
        "An agent applies only what selects its --node name.",
    )

    safety: Safety = Field(default_factory=Safety, description="The safety gate's limit for this resource.")

    @field_validator("nodes")
    @classmethod
    def _star_alone(cls, nodes: tuple[str, ...]) -> tuple[str, ...]:
        if ALL_NODES in nodes and len(nodes) > 1:
            raise ValueError("'*' already selects every node: list either '*' or node names")
        ensure_unique(nodes, "node")
        return nodes

    def selects(self, node: str) -> bool:
        return ALL_NODES in self.nodes or node in self.nodes

    def shares_nodes_with(self, other: Spec) -> bool:
        return ALL_NODES in self.nodes or ALL_NODES in other.nodes or bool(set(self.nodes) & set(other.nodes))


FieldPath = tuple[str | int, ...]  # a field's place in a document: ("spec", "zones", 0, "include")
EACH = "*"  # in a declared field path: every item of the list there


def values_at(root: object, path: tuple[str, ...], at: FieldPath = ()) -> Iterator[tuple[FieldPath, object]]:
    """Every value at ``path`` under ``root`` (a model, or a document's raw mapping), with its place; ``EACH``
    walks every item of a list; a missing or None value yields nothing."""
    if not path:
        if root is not None:
            yield at, root
        return
    head, rest = path[0], path[1:]
    if head == EACH:
        if isinstance(root, list | tuple):
            for index, item in enumerate(root):
                yield from values_at(item, rest, (*at, index))
        return
    if isinstance(root, dict):
        child = root.get(head)
    elif isinstance(root, BaseModel):  # a model's field; never an attribute of a str or a list in a raw document
        child = getattr(root, head, None)
    else:
        return
    yield from values_at(child, rest, (*at, head))


@dataclass(frozen=True, slots=True)
class Reference:
    """A field of a kind that names a resource of another kind (``besides``: a value that names none, like
    ``'*'`` for every list)."""

    path: tuple[str, ...]
    kind: str
    besides: str | None = None


@dataclass(frozen=True, slots=True)
class OnePerNode:
    """A kind of which one resource per node is enforced: what it does there, and what the problem calls it."""

    what: str
    noun: str


@dataclass(frozen=True, slots=True)
class Listener:
    """A listening address a resource claims on its nodes, where it is written, and who claims it."""

    path: FieldPath
    address: ListenAddress
    owner: str


class Resource(Strict):
    """The envelope of a desired-state document; each kind narrows ``kind`` and ``spec``, and declares what the
    cross-document checks need of it (``loading/cross_checks.py`` knows no kind by name)."""

    KIND: ClassVar[str] = ""
    REFERENCES: ClassVar[tuple[Reference, ...]] = ()  # fields naming other resources
    FILES: ClassVar[tuple[tuple[str, ...], ...]] = ()  # fields naming files (relative: in the desired-state tree)
    ONE_PER_NODE: ClassVar[OnePerNode | None] = None  # two of this kind on one node would fight

    def listeners(self) -> Iterator[Listener]:
        """The listening addresses this resource claims (a port belongs to one listener per node)."""
        return iter(())

    @classmethod
    def references_in(cls, data: Any) -> Iterator[tuple[FieldPath, str, str]]:
        """The resources ``data`` (this kind's model or raw document) names: (where, kind, name)."""
        for reference in cls.REFERENCES:
            for at, value in values_at(data, reference.path):
                if isinstance(value, str) and value != reference.besides:
                    yield at, reference.kind, value

    apiVersion: Literal["reconciler/v1"] = Field(description="Always reconciler/v1.")
    metadata: Metadata = Field(description="Name and labels of the resource.")
    spec: Spec = Field(description="What this resource wants.")
