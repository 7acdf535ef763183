"""The IPPool's console edits: an address banned or released in ``spec.banned``; ``expected_banned`` is the pool
the loader must read after."""

from __future__ import annotations

import re
from typing import Any

from pydantic import TypeAdapter, ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from reconciler.console.edits import (
    EditError,
    block_end,
    find_document,
    flow_sequence,
    invalid,
    item_start,
    keeps_line_endings,
    refuse_bidi_controls,
    same_destination,
    scalar,
    with_spec,
)
from reconciler.model import IPPool
from reconciler.model.values import IPAddressValue

_ADDRESS: TypeAdapter[Any] = TypeAdapter(IPAddressValue)


def ban_address(address: str) -> None:
    refuse_bidi_controls(address, "the address")
    try:
        _ADDRESS.validate_python(address)
    except ValidationError as exc:
        raise invalid(f"{address!r} cannot be banned", exc) from None


@keeps_line_endings
def set_banned(text: str, pool: str, address: str, banned: bool) -> str:
    """``address`` added to (or taken from) the IPPool's ``spec.banned``."""
    document = find_document(text, "IPPool", pool)
    spec = document.get("spec")
    if not isinstance(spec, CommentedMap):
        raise EditError(f"IPPool {pool} has no spec", 422)
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    if banned:
        ban_address(address)
    current = spec.get("banned")
    items = [str(item) for item in current] if isinstance(current, CommentedSeq) else []
    listed = [item for item in items if same_destination(item, address)]
    if banned and listed:
        raise EditError(f"{address} is already banned in IPPool {pool}", 409)
    if not banned and not listed:
        raise EditError(f"{address} is not banned in IPPool {pool}", 404)
    wanted = [*items, address] if banned else [item for item in items if item not in listed]
    if current is None:  # a new key, first in spec, with the indentation of spec's keys
        first = next(iter(spec))
        line, column = spec.lc.key(first)
        return "".join([*lines[:line], f"{' ' * column}banned: [{scalar(address, in_flow=True)}]\n", *lines[line:]])
    line = int(spec.lc.key("banned")[0])
    flow = re.match(r"(\s*banned\s*:\s*)\[[^\]\n]*\](.*\n?)$", lines[line])
    if flow is not None:
        lines[line] = f"{flow.group(1)}{flow_sequence(wanted)}{flow.group(2)}"
        return "".join(lines)
    if not isinstance(current, CommentedSeq) or not current:
        raise EditError(f"IPPool {pool} writes spec.banned in a way the console cannot edit: edit it by hand", 422)
    if banned:
        start, dash = item_start(lines, current, len(current) - 1)
        at = block_end(lines, start, dash)
        return "".join([*lines[:at], f"{' ' * dash}- {scalar(address)}\n", *lines[at:]])
    index = items.index(listed[0])
    start, dash = item_start(lines, current, index)
    end = block_end(lines, start, dash)
    if len(current) == 1:
        lines[line] = lines[line].rstrip("\n").rstrip() + " []\n"
    return "".join([*lines[:start], *lines[end:]])


def expected_banned(resource: IPPool, address: str, banned: bool) -> IPPool:
    listed = resource.spec.banned
    if banned:
        wanted = (*listed, _ADDRESS.validate_python(address))
    else:
        wanted = tuple(a for a in listed if not same_destination(str(a), address))
    result: IPPool = with_spec(resource, banned=wanted)
    return result
