"""The EgressAllowList's console edits: entries added and removed (protected ones never), each entry validated by
the model's own types and written by ``edits.scalar`` only; ``expected_*`` is the list the loader must read after."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from reconciler.console.edits import (
    EditError,
    block_end,
    find_document,
    flow_sequence,
    indent,
    invalid,
    item_start,
    keeps_line_endings,
    refuse_bidi_controls,
    same_destination,
    scalar,
    with_spec,
)
from reconciler.model import EgressAllowList
from reconciler.model.egress_allow_list import AllowEntry

DESTINATION_KEYS = ("domain", "ip", "cidr")

ENTRY_KEYS = (*DESTINATION_KEYS, "ports", "protocol", "protected", "expires", "comment")


@dataclass(frozen=True)
class Entry:
    """An allow-list entry as a form or the API gives it."""

    kind: str  # domain | ip | cidr
    destination: str
    ports: tuple[str, ...] = ()
    protocol: str = ""
    protected: bool = False
    expires: str = ""
    comment: str = ""


def allow_entry(entry: Entry) -> AllowEntry:
    """The entry as the agent will read it, validated by the model's own types before anything is written."""
    data: dict[str, Any] = {entry.kind: entry.destination}
    if entry.ports:
        data["ports"] = [_port(p) for p in entry.ports]
    if entry.protocol:
        data["protocol"] = entry.protocol
    if entry.protected:
        data["protected"] = True
    if entry.expires:
        data["expires"] = entry.expires
    if entry.comment:
        data["comment"] = entry.comment
    for key, value in data.items():
        if isinstance(value, str):
            refuse_bidi_controls(value, key)
    try:
        return AllowEntry.model_validate(data)
    except ValidationError as exc:
        raise invalid(f"the entry for {entry.destination}", exc) from None


def entry_lines(entry: Entry, indent: int, *, flow: bool = False) -> list[str]:
    """The entry as YAML, ``- `` at column ``indent``: block lines, or with ``flow`` one ``- {ip: ...}`` line (as
    the list's other entries are written); refused (422) unless every field is valid."""
    model = allow_entry(entry)
    fields: list[tuple[str, str]] = [(entry.kind, scalar(entry.destination, in_flow=flow))]
    if entry.ports:
        fields.append(("ports", flow_sequence([_port(p) for p in entry.ports])))
    if entry.protocol:
        fields.append(("protocol", scalar(model.protocol, in_flow=flow)))
    if entry.protected:
        fields.append(("protected", scalar(True)))
    if model.expires is not None:
        fields.append(("expires", scalar(model.expires, in_flow=flow)))
    if entry.comment:
        fields.append(("comment", scalar(entry.comment, in_flow=flow)))
    pad = " " * indent
    if flow:
        return [f"{pad}- {{{', '.join(f'{key}: {value}' for key, value in fields)}}}\n"]
    return [f"{pad}{'- ' if index == 0 else '  '}{key}: {value}\n" for index, (key, value) in enumerate(fields)]


def _port(text: str) -> str | int:
    return int(text) if text.isdigit() and text.isascii() else text


def _entries(text: str, name: str) -> CommentedSeq:
    document = find_document(text, "EgressAllowList", name)
    spec = document.get("spec")
    entries = spec.get("entries") if isinstance(spec, CommentedMap) else None
    if not isinstance(entries, CommentedSeq):
        raise EditError(f"EgressAllowList {name} has no spec.entries list", 422)
    if entries.fa.flow_style() and entries:
        raise EditError(f"EgressAllowList {name} writes its entries in flow style: edit that file by hand", 422)
    return entries


def destination_of(item: Any) -> str:
    if isinstance(item, Mapping):
        for key in DESTINATION_KEYS:
            if key in item:
                return str(item[key])
    return ""


@keeps_line_endings
def add_entry(text: str, name: str, entry: Entry) -> str:
    entries = _entries(text, name)
    if any(same_destination(destination_of(item), entry.destination) for item in entries):
        raise EditError(f"{entry.destination} is already in EgressAllowList {name}", 409)
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    if entries:
        start, dash = item_start(lines, entries, len(entries) - 1)
        at = block_end(lines, start, dash)
        last = entries[len(entries) - 1]
        flow = isinstance(last, CommentedMap) and bool(last.fa.flow_style())  # follow the list's own style
        return "".join([*lines[:at], *entry_lines(entry, dash, flow=flow), *lines[at:]])
    # an empty list: "entries: []" becomes a block list under its key
    line, _ = entries.lc.line, entries.lc.col
    key_line = next(n for n in range(line, -1, -1) if re.match(r"\s*entries\s*:", lines[n]))
    key_indent = indent(lines[key_line])
    head = re.sub(r"\s*\[\s*\]", "", lines[key_line], count=1).rstrip() + "\n"
    return "".join([*lines[:key_line], head, *entry_lines(entry, key_indent + 2), *lines[key_line + 1 :]])


@keeps_line_endings
def remove_entry(text: str, name: str, destination: str) -> str:
    entries = _entries(text, name)
    for index, item in enumerate(entries):
        if not same_destination(destination_of(item), destination):
            continue
        if isinstance(item, Mapping) and item.get("protected") is True:
            raise EditError(f"{destination} is protected in EgressAllowList {name}: it can never be removed", 409)
        lines = text.splitlines(keepends=True)
        start, dash = item_start(lines, entries, index)
        end = block_end(lines, start, dash)  # a comment at the dash's column belongs to the next entry
        if len(entries) == 1:  # the last entry: the key keeps an empty list
            key_line = next(n for n in range(start, -1, -1) if re.match(r"\s*entries\s*:", lines[n]))
            lines[key_line] = lines[key_line].rstrip("\n").rstrip() + " []\n"
        return "".join([*lines[:start], *lines[end:]])
    raise EditError(f"{destination} is not in EgressAllowList {name}", 404)


def parse_entries(text: str, name: str) -> list[dict[str, Any]]:
    """The entries of one list as plain values (for showing them)."""
    return [dict(item) for item in _entries(text, name) if isinstance(item, Mapping)]


def _entry_destination(entry: AllowEntry) -> str:
    return entry.destination.partition(":")[2]


def expected_added(resource: EgressAllowList, entry: Entry) -> EgressAllowList:
    result: EgressAllowList = with_spec(resource, entries=(*resource.spec.entries, allow_entry(entry)))
    return result


def expected_removed(resource: EgressAllowList, destination: str) -> EgressAllowList:
    entries = list(resource.spec.entries)
    index = next(i for i, e in enumerate(entries) if same_destination(_entry_destination(e), destination))
    result: EgressAllowList = with_spec(resource, entries=(*entries[:index], *entries[index + 1 :]))
    return result
