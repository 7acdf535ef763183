"""Protected allow-list entries may never be removed or weakened once merged (``validate --base REF``).

An entry is identified by its allow-list's name and its destination (domain, ip or cidr). Weakening means:
``protected`` dropped, ports narrowed, protocol narrowed (any -> tcp), an expiry added or brought forward, or the
list's nodes narrowed. Anything that keeps or widens what the entry allows passes.
"""

from __future__ import annotations

from collections.abc import Iterator

from reconciler.errors import Problem
from reconciler.loading.loader import LoadResult
from reconciler.loading.locator import DocRef
from reconciler.model import EgressAllowList
from reconciler.model.common import Spec
from reconciler.model.egress_allow_list import AllowEntry
from reconciler.model.values import ALL_NODES, PortRange

RESTORE_HINT = "protected entries may never be removed or weakened; restore it"


def _covers_ports(new: tuple[PortRange, ...] | None, old: tuple[PortRange, ...] | None) -> bool:
    if new is None:
        return True
    if old is None:
        return False
    return all(any(n.covers(o) for n in new) for o in old)


def weakenings(old: AllowEntry, new: AllowEntry) -> list[str]:
    """What ``new`` allows less than ``old`` (empty when nothing)."""
    found = []
    if not new.protected:
        found.append("'protected' was dropped")
    if not _covers_ports(new.ports, old.ports):
        before = ", ".join(map(str, old.ports)) if old.ports else "every port"
        after = ", ".join(map(str, new.ports)) if new.ports else "every port"
        found.append(f"ports narrowed from {before} to {after}")
    if new.protocol not in (old.protocol, "any"):
        found.append(f"protocol changed from {old.protocol} to {new.protocol}")
    if new.expires is not None and (old.expires is None or new.expires < old.expires):
        found.append(f"an expiry of {new.expires} was {'added' if old.expires is None else 'brought forward'}")
    return found


def _nodes_narrowed(old: Spec, new: Spec) -> bool:
    return ALL_NODES not in new.nodes and (ALL_NODES in old.nodes or not set(old.nodes) <= set(new.nodes))


def check_protected(base: LoadResult, head: LoadResult, revision: str) -> Iterator[Problem]:
    """Every protected entry at ``base`` must still be in ``head``, in the same list, no weaker."""
    for old_list in base.state.of_kind(EgressAllowList):
        name = old_list.metadata.name
        protected = [(i, e) for i, e in enumerate(old_list.spec.entries) if e.protected]
        if not protected:
            continue
        base_ref = base.refs[(EgressAllowList.KIND, name)]
        new_list = head.state.get(EgressAllowList, name)
        if new_list is None:
            yield from _removed_list(base, revision, name, protected)
            continue
        head_ref = head.refs[(EgressAllowList.KIND, name)]
        current = {e.destination: (i, e) for i, e in enumerate(new_list.spec.entries)}
        for old_index, old_entry in protected:
            where = _where(base, base_ref, old_index)
            label = old_entry.destination.replace(":", " ", 1)
            if old_entry.destination not in current:
                yield head.locator.problem(
                    head_ref,
                    ("spec", "entries"),
                    f"protected entry {label} (at {revision} in {where}) was removed: {RESTORE_HINT}",
                )
                continue
            index, new_entry = current[old_entry.destination]
            changes = weakenings(old_entry, new_entry)
            if _nodes_narrowed(old_list.spec, new_list.spec):
                changes.append("the list's nodes were narrowed")
            if changes:
                yield head.locator.problem(
                    head_ref,
                    ("spec", "entries", index),
                    f"protected entry {label} (at {revision} in {where}) was weakened: {'; '.join(changes)}: "
                    f"{RESTORE_HINT}",
                )


def _without_revision(file: str) -> str:
    """Base files are shown as ``REV:path``; the path alone is what the user recognises."""
    return file.split(":", 1)[-1]


def _where(result: LoadResult, ref: DocRef, index: int) -> str:
    line, _ = result.locator.position(ref, ("spec", "entries", index))
    return f"{_without_revision(ref.file)}:{line}"


def _removed_list(
    base: LoadResult, revision: str, name: str, protected: list[tuple[int, AllowEntry]]
) -> Iterator[Problem]:
    base_ref = base.refs[(EgressAllowList.KIND, name)]
    for index, entry in protected:
        label = entry.destination.replace(":", " ", 1)
        line, column = base.locator.position(base_ref, ("spec", "entries", index))
        yield Problem(
            file=_without_revision(base_ref.file),
            line=line,
            column=column,
            kind=EgressAllowList.KIND,
            name=name,
            path=f"spec.entries[{index}]",
            message=f"EgressAllowList '{name}' with protected entry {label} (at {revision}) was removed: "
            f"{RESTORE_HINT}",
        )
