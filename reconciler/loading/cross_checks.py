"""Checks that need more than one document, generic over kinds: references (``Resource.REFERENCES``), port
claims (``Resource.listeners``), one resource per node (``Resource.ONE_PER_NODE``) and files (``Resource.FILES``).
Each kind declares in its model what these need; checks only one kind has are in that kind's module
(``allow_list_checks``).

Each check takes the valid resources (with the document each came from) and returns located problems.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from reconciler.errors import Problem
from reconciler.loading.locator import DocRef, Locator, PathElement
from reconciler.model import KINDS
from reconciler.model.common import FieldPath, Listener, Resource, values_at


@dataclass(frozen=True, slots=True)
class Placed:
    """A valid resource and the document it came from."""

    resource: Resource
    ref: DocRef


Report = Callable[[DocRef, Sequence[PathElement], str], Problem]


@dataclass(frozen=True, slots=True)
class Declared:
    """A document with errors: the kind and name it declares, and the names it refers to as written (path,
    kind referred to, name), so that references are checked in the same run as the document's own errors."""

    kind: str
    name: str
    ref: DocRef
    references: tuple[tuple[tuple[PathElement, ...], str, str], ...] = ()


def declared_of(data: object, ref: DocRef) -> Declared | None:
    """What a document that failed validation declares and refers to, as far as it can be read (its kind's
    declared references, looked for in the raw document)."""
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        return None
    metadata = data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str):
        return None
    model = KINDS.get(data["kind"])
    references = tuple(model.references_in(data)) if model is not None else ()
    return Declared(data["kind"], name, ref, references)


def of_kind(placed: Sequence[Placed], kind: type[Resource]) -> list[Placed]:
    return [p for p in placed if isinstance(p.resource, kind)]


def _missing(name: str, kind: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f": did you mean '{close[0]}'?" if close else f" (defined: {', '.join(known) or 'none'})"
    return f"no {kind} named '{name}'{hint}"


def check_references(
    placed: Sequence[Placed], locator: Locator, declared: Sequence[Declared] = ()
) -> Iterator[Problem]:
    """Every field a kind declares as naming another resource (``Resource.REFERENCES``: a pool's strategy, a
    gateway's allow-lists) names one. Documents with errors (``declared``) count as defined (their own errors are
    reported), and their references are checked."""
    known: dict[str, list[str]] = {}
    for item in placed:
        known.setdefault(item.resource.KIND, []).append(item.resource.metadata.name)
    defined = {(d.kind, d.name) for d in declared}
    naming = [(item.ref, type(item.resource).references_in(item.resource)) for item in placed]
    naming += [(document.ref, iter(document.references)) for document in declared]
    for ref, references in naming:
        for path, kind, name in references:
            names = known.get(kind, [])
            if name not in names and (kind, name) not in defined:
                yield locator.problem(ref, path, _missing(name, kind, names))


def check_ports(placed: Sequence[Placed], locator: Locator) -> Iterator[Problem]:
    """A listening address is claimed by one listener per node (``Resource.listeners``: TCPProxy apps and IPPool
    proxies)."""
    claimed: list[tuple[Listener, Placed]] = []
    for item in placed:
        for listener in item.resource.listeners():
            for earlier, earlier_item in claimed:
                if not listener.address.conflicts_with(earlier.address):
                    continue
                if earlier_item is not item and not item.resource.spec.shares_nodes_with(earlier_item.resource.spec):
                    continue
                where = locator.position(earlier_item.ref, earlier.path)
                yield locator.problem(
                    item.ref,
                    listener.path,
                    f"{listener.address} overlaps {earlier.address}, already claimed by {earlier.owner} "
                    f"({earlier_item.ref.file}:{where[0]}): a port belongs to one listener per node",
                )
                break
            else:
                claimed.append((listener, item))


def check_route_conflicts(placed: Sequence[Placed], locator: Locator) -> Iterator[Problem]:
    """Two resources of a kind enforced once per node (``Resource.ONE_PER_NODE``: EgressRoutes, EgressGateways)
    on one node would fight over the same routes (chains, sets)."""
    seen: dict[str, list[Placed]] = {}
    for item in placed:
        once = item.resource.ONE_PER_NODE
        if once is None:
            continue
        earlier_ones = seen.setdefault(item.resource.KIND, [])
        for earlier in earlier_ones:
            if item.resource.spec.shares_nodes_with(earlier.resource.spec):
                yield locator.problem(
                    item.ref,
                    ("spec", "nodes"),
                    f"{item.resource.KIND}/{earlier.resource.metadata.name} already {once.what} on these nodes: give "
                    f"each {once.noun} disjoint nodes",
                )
                break
        else:
            earlier_ones.append(item)


def _file_references(resource: Resource) -> Iterator[tuple[FieldPath, object]]:
    for declared in resource.FILES:
        yield from values_at(resource, declared)


def check_files(placed: Sequence[Placed], locator: Locator, known: frozenset[str]) -> Iterator[Problem]:
    """Relative file paths point into the desired-state tree, so they must exist there."""
    for item in placed:
        for path, value in _file_references(item.resource):
            if not isinstance(value, str) or value.startswith("/"):
                continue
            normalized = "/".join(p for p in value.split("/") if p not in ("", "."))
            if ".." in normalized.split("/"):
                yield locator.problem(item.ref, path, f"'{value}' leaves the desired-state tree; use a path inside it")
            elif normalized not in known:
                yield locator.problem(
                    item.ref,
                    path,
                    f"'{value}' does not exist in the desired-state tree (relative paths start at its root)",
                )
