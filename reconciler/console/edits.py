"""Edits of desired-state YAML files as people make them in the console (pure: text in, text out).

ruamel.yaml reads the file to find where things are (documents, the list, each item's line and column); the edit
itself is made on the text, so every line it does not touch stays byte for byte (comments, quoting, the order
of keys, blank lines).

What a person typed is data, never text: each value is first validated by the model's own pydantic type (a date
is a date, a port a port), then written by :func:`scalar` or :func:`flow_sequence` only, which emit one YAML
scalar or flow sequence that reads back as the same value, and refuse bidirectional control characters. Each
edit also says what the resource must be afterwards (``expected_*``); the caller reads the edited tree back
with the agent's own loader and refuses the edit unless exactly that changed.
"""

from __future__ import annotations

import functools
import io
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Concatenate, ParamSpec

from pydantic import TypeAdapter, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from reconciler.loading.yaml_reader import YamlError, read_yaml
from reconciler.model import EdgeNetwork, EgressAllowList, IPPool
from reconciler.model.edge_network import Edge
from reconciler.model.egress_allow_list import AllowEntry
from reconciler.model.values import IPAddressValue, parse_domain_pattern

DESTINATION_KEYS = ("domain", "ip", "cidr")
P = ParamSpec("P")
ENTRY_KEYS = (*DESTINATION_KEYS, "ports", "protocol", "protected", "expires", "comment")


class EditError(Exception):
    """An edit that cannot be made; ``status`` is the HTTP status that says why (404, 409, 422)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


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


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    return yaml


def _documents(text: str) -> list[Any]:
    try:
        return list(_yaml().load_all(text))
    except YAMLError as exc:
        raise EditError(f"the file is not valid YAML: {exc}", 422) from exc


def find_document(text: str, kind: str, name: str) -> CommentedMap:
    for document in _documents(text):
        if isinstance(document, CommentedMap) and document.get("kind") == kind:
            metadata = document.get("metadata")
            if isinstance(metadata, Mapping) and metadata.get("name") == name:
                return document
    raise EditError(f"no {kind} named {name} in this file", 404)


# Trojan Source (CVE-2021-42574): these reorder how text is shown, so a reviewer reads something else than what
# is stored; the embedding, override and isolate controls and the invisible direction marks.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_FLOW_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")


def refuse_bidi_controls(value: str, what: str = "a value") -> None:
    found = sorted({f"U+{ord(c):04X}" for c in value if c in BIDI_CONTROLS})
    if found:
        raise EditError(
            f"{what} holds bidirectional control characters ({', '.join(found)}), which make text read "
            "differently from what is stored: remove them",
            422,
        )


def scalar(value: str | int | bool | date, *, in_flow: bool = False) -> str:
    """One value as one YAML scalar, read back as the same value by the agent's reader: the only way a value
    reaches the text. ``in_flow``: inside ``[...]`` or ``{...}``, where a comma or a bracket ends a plain scalar."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()  # digits and dashes: read back as the same date
    refuse_bidi_controls(value)
    if in_flow:
        return value if _FLOW_PLAIN.fullmatch(value) and _reads_back(value, value) else _double_quoted(value)
    out = io.StringIO()
    yaml = YAML()
    yaml.width = 4096
    yaml.dump(value, out)
    text = out.getvalue().removesuffix("\n...\n").strip()
    # ruamel's emitter leaves a NEL raw inside single quotes, where the agent's reader folds it into a space
    if "\n" in text or not _reads_back(text, value):
        return _double_quoted(value)
    return text


def _reads_back(text: str, value: object) -> bool:
    try:
        return bool(read_yaml(f"v: {text}")[0].data == {"v": value})
    except YamlError:  # what the reader refuses is not written that way
        return False


def _double_quoted(value: str) -> str:
    """``value`` as a YAML double-quoted scalar with every line break and control character escaped, and the rest
    as it is (not JSON's escapes: YAML refuses the surrogate pairs JSON writes for characters beyond U+FFFF)."""
    out = []
    for char in value:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif code < 0x20 or 0x7F <= code < 0xA0 or char in "\u2028\u2029\ufeff":
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def flow_sequence(values: Sequence[str | int]) -> str:
    """A list of values as one YAML flow sequence (``[a, b]``)."""
    return "[" + ", ".join(scalar(v, in_flow=True) for v in values) + "]"


def _invalid(what: str, exc: ValidationError) -> EditError:
    reasons = "; ".join(
        (".".join(str(p) for p in error["loc"]) + ": " if error["loc"] else "")
        + error["msg"].removeprefix("Value error, ")
        for error in exc.errors()
    )
    return EditError(f"{what}: {reasons}", 422)


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
        raise _invalid(f"the entry for {entry.destination}", exc) from None


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


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _item_start(lines: Sequence[str], seq: CommentedSeq, index: int) -> tuple[int, int]:
    """The line of item ``index``'s dash and the dash's column."""
    line, column = seq.lc.item(index)
    if lines[line][:column].rstrip().endswith("-"):
        return line, lines[line][:column].rstrip().rfind("-")
    return line - 1, _indent(lines[line - 1])  # a dash alone on its line, the item below it


def _block_end(lines: Sequence[str], start: int, dash: int) -> int:
    """The line after the last non-blank line of the item starting at ``start`` (its dash at column ``dash``)."""
    end = start + 1
    for number in range(start + 1, len(lines)):
        stripped = lines[number].strip()
        if not stripped:
            continue
        if _indent(lines[number]) <= dash or stripped == "---":
            break
        end = number + 1
    return end


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


def same_destination(a: str, b: str) -> bool:
    """Equal as written, as addresses and networks (2001:DB8::1 is 2001:db8::1), or as the names the agent
    stores (``bücher.example`` is ``xn--bcher-kva.example``, which status and the API show)."""
    if a.lower().rstrip(".") == b.lower().rstrip("."):
        return True
    try:
        return ipaddress.ip_network(a, strict=False) == ipaddress.ip_network(b, strict=False)
    except ValueError:
        pass
    try:
        return parse_domain_pattern(a) == parse_domain_pattern(b)
    except ValueError:
        return False


def keeps_line_endings(edit: Callable[Concatenate[str, P], str]) -> Callable[Concatenate[str, P], str]:
    """An edit of a file written with CRLF line endings keeps them: the lines it writes get CRLF too (the edit
    itself works on LF text). A file that mixes both is edited as it is."""

    @functools.wraps(edit)
    def edited(text: str, /, *args: P.args, **kwargs: P.kwargs) -> str:
        if "\r\n" not in text or text.count("\r\n") != text.count("\n"):
            return edit(text, *args, **kwargs)
        return edit(text.replace("\r\n", "\n"), *args, **kwargs).replace("\n", "\r\n")

    return edited


@keeps_line_endings
def add_entry(text: str, name: str, entry: Entry) -> str:
    entries = _entries(text, name)
    if any(same_destination(destination_of(item), entry.destination) for item in entries):
        raise EditError(f"{entry.destination} is already in EgressAllowList {name}", 409)
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    if entries:
        start, dash = _item_start(lines, entries, len(entries) - 1)
        at = _block_end(lines, start, dash)
        last = entries[len(entries) - 1]
        flow = isinstance(last, CommentedMap) and bool(last.fa.flow_style())  # follow the list's own style
        return "".join([*lines[:at], *entry_lines(entry, dash, flow=flow), *lines[at:]])
    # an empty list: "entries: []" becomes a block list under its key
    line, _ = entries.lc.line, entries.lc.col
    key_line = next(n for n in range(line, -1, -1) if re.match(r"\s*entries\s*:", lines[n]))
    key_indent = _indent(lines[key_line])
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
        start, dash = _item_start(lines, entries, index)
        end = _block_end(lines, start, dash)  # a comment at the dash's column belongs to the next entry
        if len(entries) == 1:  # the last entry: the key keeps an empty list
            key_line = next(n for n in range(start, -1, -1) if re.match(r"\s*entries\s*:", lines[n]))
            lines[key_line] = lines[key_line].rstrip("\n").rstrip() + " []\n"
        return "".join([*lines[:start], *lines[end:]])
    raise EditError(f"{destination} is not in EgressAllowList {name}", 404)


def parse_entries(text: str, name: str) -> list[dict[str, Any]]:
    """The entries of one list as plain values (for showing them)."""
    return [dict(item) for item in _entries(text, name) if isinstance(item, Mapping)]


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
        start, dash = _item_start(lines, current, len(current) - 1)
        at = _block_end(lines, start, dash)
        return "".join([*lines[:at], f"{' ' * dash}- {scalar(address)}\n", *lines[at:]])
    index = items.index(listed[0])
    start, dash = _item_start(lines, current, index)
    end = _block_end(lines, start, dash)
    if len(current) == 1:
        lines[line] = lines[line].rstrip("\n").rstrip() + " []\n"
    return "".join([*lines[:start], *lines[end:]])


EDGE_MODES = ("available", "force", "blindforce", "unavailable")


@keeps_line_endings
def set_edge_mode(text: str, network: str, host: str, mode: str, comment: str) -> str:
    """The edge's ``mode`` with its ``comment`` (required for every mode but available)."""
    if mode not in EDGE_MODES:
        raise EditError(f"mode must be one of {', '.join(EDGE_MODES)}", 422)
    if mode != "available" and not comment.strip():
        raise EditError(f"say why {host} is {mode}: the comment is required", 422)
    refuse_bidi_controls(comment, "the comment")
    try:
        Edge(host=host, mode=mode, comment=comment.strip())
    except ValidationError as exc:
        raise _invalid(f"the mode of {host}", exc) from None
    document = find_document(text, "EdgeNetwork", network)
    spec = document.get("spec")
    edges = spec.get("edges") if isinstance(spec, CommentedMap) else None
    if not isinstance(edges, CommentedSeq) or edges.fa.flow_style():
        raise EditError(f"EdgeNetwork {network} writes spec.edges in a way the console cannot edit", 422)
    for index, item in enumerate(edges):
        name = str(item.get("host", "")) if isinstance(item, Mapping) else str(item)
        if name != host:
            continue
        lines = text.splitlines(keepends=True)
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        start, dash = _item_start(lines, edges, index)
        end = _block_end(lines, start, dash)
        if mode == "available" and not comment.strip():
            written = f"{' ' * dash}- {scalar(host, in_flow=True)}\n"
        else:
            written_comment = scalar(comment.strip(), in_flow=True)
            fields = f"host: {scalar(host, in_flow=True)}, mode: {mode}, comment: {written_comment}"
            written = f"{' ' * dash}- {{{fields}}}\n"
        return "".join([*lines[:start], written, *lines[end:]])
    raise EditError(f"{host} is not an edge of EdgeNetwork {network}", 404)


_ADDRESS: TypeAdapter[Any] = TypeAdapter(IPAddressValue)


def ban_address(address: str) -> None:
    refuse_bidi_controls(address, "the address")
    try:
        _ADDRESS.validate_python(address)
    except ValidationError as exc:
        raise _invalid(f"{address!r} cannot be banned", exc) from None


# --- what each edit must leave: the resource as the agent's loader must read it afterwards ------------------------


def _with_spec(resource: Any, **changes: Any) -> Any:
    return resource.model_copy(update={"spec": resource.spec.model_copy(update=changes)})


def _entry_destination(entry: AllowEntry) -> str:
    return entry.destination.partition(":")[2]


def expected_added(resource: EgressAllowList, entry: Entry) -> EgressAllowList:
    result: EgressAllowList = _with_spec(resource, entries=(*resource.spec.entries, allow_entry(entry)))
    return result


def expected_removed(resource: EgressAllowList, destination: str) -> EgressAllowList:
    entries = list(resource.spec.entries)
    index = next(i for i, e in enumerate(entries) if same_destination(_entry_destination(e), destination))
    result: EgressAllowList = _with_spec(resource, entries=(*entries[:index], *entries[index + 1 :]))
    return result


def expected_banned(resource: IPPool, address: str, banned: bool) -> IPPool:
    listed = resource.spec.banned
    if banned:
        wanted = (*listed, _ADDRESS.validate_python(address))
    else:
        wanted = tuple(a for a in listed if not same_destination(str(a), address))
    result: IPPool = _with_spec(resource, banned=wanted)
    return result


def expected_mode(resource: EdgeNetwork, host: str, mode: str, comment: str) -> EdgeNetwork:
    comment = comment.strip()
    written: str | Edge = host if mode == "available" and not comment else Edge(host=host, mode=mode, comment=comment)
    edges = tuple(written if (e.host if isinstance(e, Edge) else e) == host else e for e in resource.spec.edges)
    result: EdgeNetwork = _with_spec(resource, edges=edges)
    return result
