"""Edits of desired-state YAML files as people make them in the console (pure: text in, text out): the text
editing every kind's edits share. Each kind's own edit rules are in its module: ``allow_list_edits``
(EgressAllowList entries), ``ip_pool_edits`` (IPPool bans), ``edge_network_edits`` (EdgeNetwork edge modes).

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
from datetime import date
from typing import Any, Concatenate, ParamSpec

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from reconciler.loading.yaml_reader import YamlError, read_yaml
from reconciler.model.values import parse_domain_pattern

P = ParamSpec("P")


class EditError(Exception):
    """An edit that cannot be made; ``status`` is the HTTP status that says why (404, 409, 422)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


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


def invalid(what: str, exc: ValidationError) -> EditError:
    reasons = "; ".join(
        (".".join(str(p) for p in error["loc"]) + ": " if error["loc"] else "")
        + error["msg"].removeprefix("Value error, ")
        for error in exc.errors()
    )
    return EditError(f"{what}: {reasons}", 422)


def indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def item_start(lines: Sequence[str], seq: CommentedSeq, index: int) -> tuple[int, int]:
    """The line of item ``index``'s dash and the dash's column."""
    line, column = seq.lc.item(index)
    if lines[line][:column].rstrip().endswith("-"):
        return line, lines[line][:column].rstrip().rfind("-")
    return line - 1, indent(lines[line - 1])  # a dash alone on its line, the item below it


def block_end(lines: Sequence[str], start: int, dash: int) -> int:
    """The line after the last non-blank line of the item starting at ``start`` (its dash at column ``dash``)."""
    end = start + 1
    for number in range(start + 1, len(lines)):
        stripped = lines[number].strip()
        if not stripped:
            continue
        if indent(lines[number]) <= dash or stripped == "---":
            break
        end = number + 1
    return end


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


def with_spec(resource: Any, **changes: Any) -> Any:
    return resource.model_copy(update={"spec": resource.spec.model_copy(update=changes)})
