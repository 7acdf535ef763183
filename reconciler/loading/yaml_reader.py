"""YAML text -> plain Python data, fast, with limits against hostile input, and positions on demand.

ruamel.yaml's C parser produces events quickly, but its composer and constructor spend ~5 s on 50,000
allow-list entries (most of it in the tag resolver). We build plain dicts and lists from the events ourselves
(YAML 1.2 core schema, ruamel's own resolver table) in ~0.3 s, and record line/column positions only when asked:
the loader reads every file fast and re-reads a file with ``located=True`` only to place an error.

Refused with a located :class:`YamlError`: syntax errors, duplicate keys, complex keys, unknown tags, undefined
aliases, nesting deeper than ``max_depth`` and documents whose aliases expand past ``max_nodes`` ("billion laughs").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import events
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.cyaml import CParser  # type: ignore[attr-defined]
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.resolver import VersionedResolver

YAML_TAG = "tag:yaml.org,2002:"
# ruamel's YAML 1.2 implicit-resolver table, keyed by first character, with its lazily compiled patterns
# compiled once here (the lazy wrapper costs a Python call per match).
_RESOLVERS: dict[str, tuple[tuple[str, re.Pattern[str]], ...]] = {
    first: tuple(
        (tag[len("tag:yaml.org,2002:") :], re.compile(regexp.pattern, regexp.flags)) for tag, regexp in entries
    )
    for first, entries in VersionedResolver(version=(1, 2)).versioned_resolver.items()
    if first is not None
}
_TIMESTAMP = SafeConstructor()
_MERGE = object()


@dataclass(frozen=True, slots=True)
class YamlLimits:
    """Bounds on what one file may cost to read."""

    max_depth: int = 64
    max_nodes: int = 2_000_000


class YamlError(Exception):
    """A YAML problem at a 1-based line and column."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


Position = tuple[int, int]
_NOWHERE: Position = (0, 0)


@dataclass(slots=True)
class Positions:
    """Where each mapping value and sequence item of one document starts (1-based), keyed by container id."""

    of_keys: dict[int, dict[Any, tuple[Position, Position]]] = field(default_factory=dict)
    of_items: dict[int, list[Position]] = field(default_factory=dict)
    of_containers: dict[int, Position] = field(default_factory=dict)
    root: Position = (1, 1)

    def locate(self, data: Any, path: tuple[str | int, ...], *, at_key: bool = False) -> tuple[Position, int]:
        """The position of the deepest part of ``path`` that exists, and how many path elements it matched.

        A key that exists points at its value, unless the value is a mapping or list (whose first line may be
        further down) or ``at_key`` is set: then at the key. A missing key points at its mapping's key.
        """
        position = self.root
        matched = 0
        for element in path:
            if isinstance(data, dict) and element in data and id(data) in self.of_keys:
                key_position, position = self.of_keys[id(data)][element]
                data = data[element]
                if isinstance(data, dict | list) or (at_key and matched == len(path) - 1):
                    position = key_position
            elif isinstance(data, list) and isinstance(element, int) and 0 <= element < len(data):
                position = self.of_items[id(data)][element]
                data = data[element]
            else:
                break
            matched += 1
        return position, matched


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """One document of a file: its data, where it starts, and positions if read with ``located=True``."""

    index: int
    line: int
    column: int
    data: Any
    positions: Positions | None
    error: YamlError | None = None  # what made this document unreadable; the file's other documents are read


def _mark(event: Any) -> Position:
    return (event.start_mark.line + 1, event.start_mark.column + 1)


def _resolve_plain(value: str) -> Any:
    for tag, regexp in _RESOLVERS.get(value[0] if value else "", ()):
        if regexp.match(value):
            try:
                return _construct(tag, value)
            except ValueError:
                # Looks like a date but is not one (2027-02-30): leave it to the model to say what is wrong.
                return value
    return value


def _null(value: str) -> None:
    if value not in ("", "~", "null", "Null", "NULL"):
        raise ValueError(f"'{value}' is not null")


def _bool(value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise ValueError(f"'{value}' is not a boolean (true or false)")
    return value.lower() == "true"


def _int(value: str) -> int:
    text = value.replace("_", "")
    sign = -1 if text.startswith("-") else 1
    text = text.lstrip("+-")
    for prefix, base in (("0x", 16), ("0o", 8), ("0b", 2)):
        if text.startswith(prefix):
            return sign * int(text[2:], base)
    return sign * int(text, 10)


def _float(value: str) -> float:
    text = value.replace("_", "").lower()
    special = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}
    return special[text] if text in special else float(text)


def _timestamp(value: str) -> Any:
    return _TIMESTAMP.construct_yaml_timestamp(ScalarNode(YAML_TAG + "timestamp", value))


# YAML 1.2 core schema, plus the timestamps and merge keys ruamel resolves; "value" and "yaml" stay strings.
_CONSTRUCTORS: dict[str, Any] = {
    "str": str,
    "value": str,
    "yaml": str,
    "null": _null,
    "bool": _bool,
    "int": _int,
    "float": _float,
    "timestamp": _timestamp,
    "merge": lambda _: _MERGE,
}


def _construct(tag: str, value: str) -> Any:
    constructor = _CONSTRUCTORS.get(tag)
    if constructor is None:
        raise ValueError(f"unsupported tag !!{tag}")
    return constructor(value)


def _scalar(event: Any) -> Any:
    tag = event.tag
    if tag is None or tag == "!":
        return _resolve_plain(event.value) if event.implicit[0] and tag is None else event.value
    if not tag.startswith(YAML_TAG):
        raise ValueError(f"unsupported tag {tag}: desired state uses plain YAML only")
    result = _construct(tag[len(YAML_TAG) :], event.value)
    return event.value if result is _MERGE else result


def _check_collection_tag(event: Any, expected: str) -> None:
    if event.tag not in (None, "!", YAML_TAG + expected):
        raise ValueError(f"unsupported tag {event.tag}: desired state uses plain YAML only")


@dataclass(slots=True)
class _Frame:
    container: dict[Any, Any] | list[Any]
    position: Position
    anchor: str | None
    size: int = 1
    key: Any = _MERGE  # _MERGE doubles as "no key yet" in a mapping frame
    key_position: Position = (0, 0)
    merges: list[dict[Any, Any]] = field(default_factory=list)


class _DocumentBuilder:
    """Builds one document from events; see the module docstring for what it refuses."""

    def __init__(self, limits: YamlLimits, located: bool) -> None:
        self.limits = limits
        self.positions = Positions() if located else None
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.stack: list[_Frame] = []
        self.total = 0
        self.root: Any = None

    def feed(self, event: Any) -> None:
        try:
            self._feed(event)
        except ValueError as exc:
            raise YamlError(str(exc), *_mark(event)) from None

    def _feed(self, event: Any) -> None:
        kind = type(event)
        if kind is events.ScalarEvent:
            self._add(_scalar(event), 1, event)
        elif kind is events.AliasEvent:
            if event.anchor not in self.anchors:
                raise ValueError(f"alias *{event.anchor} refers to no anchor defined before it")
            value, size = self.anchors[event.anchor]
            self._add(value, size, event)
        elif kind is events.MappingStartEvent or kind is events.SequenceStartEvent:
            self._start(event, is_map=kind is events.MappingStartEvent)
        elif kind is events.MappingEndEvent or kind is events.SequenceEndEvent:
            frame = self.stack.pop()
            if isinstance(frame.container, dict):
                for merged in frame.merges:
                    for key, value in merged.items():
                        frame.container.setdefault(key, value)
            # The children are counted already; only the container itself is new.
            self._add(frame.container, frame.size, event, anchor=frame.anchor, start=frame.position, new=1)

    def _start(self, event: Any, *, is_map: bool) -> None:
        _check_collection_tag(event, "map" if is_map else "seq")
        if self.stack and isinstance(self.stack[-1].container, dict) and self.stack[-1].key is _MERGE:
            raise ValueError("a mapping key must be a plain value, not a list or mapping")
        if len(self.stack) >= self.limits.max_depth:
            raise ValueError(f"nested deeper than {self.limits.max_depth} levels")
        container: dict[Any, Any] | list[Any] = {} if is_map else []
        position = _mark(event) if self.positions is not None else _NOWHERE
        self.stack.append(_Frame(container, position, event.anchor))
        if self.positions is not None:
            self.positions.of_containers[id(container)] = position
            if is_map:
                self.positions.of_keys[id(container)] = {}
            else:
                self.positions.of_items[id(container)] = []

    def _add(
        self,
        value: Any,
        size: int,
        event: Any,
        *,
        anchor: str | None = None,
        start: Position | None = None,
        new: int | None = None,
    ) -> None:
        self.total += size if new is None else new
        if self.total > self.limits.max_nodes:
            raise ValueError(
                f"the document expands to more than {self.limits.max_nodes} values (through aliases?); refusing it"
            )
        anchor = anchor if anchor is not None else getattr(event, "anchor", None)
        if anchor is not None and not isinstance(event, events.AliasEvent):
            self.anchors[anchor] = (value, size)
        # Positions cost time; a fast read skips them (the loader re-reads a file located when it must).
        position = (start or _mark(event)) if self.positions is not None else _NOWHERE
        if not self.stack:
            self.root = value
            if self.positions is not None:
                self.positions.root = position
            return
        frame = self.stack[-1]
        frame.size += size
        container = frame.container
        if isinstance(container, list):
            container.append(value)
            if self.positions is not None:
                self.positions.of_items[id(container)].append(position)
            return
        if frame.key is _MERGE:
            self._take_key(frame, value, event, position)
            return
        key, frame.key = frame.key, _MERGE
        if key == "<<" and frame.key_position[0] < 0:
            merged = value if isinstance(value, list) else [value]
            if not all(isinstance(m, dict) for m in merged):
                raise ValueError("'<<' merges a mapping or a list of mappings")
            frame.merges.extend(merged)
            return
        container[key] = value
        if self.positions is not None:
            self.positions.of_keys[id(container)][key] = (frame.key_position, position)

    def _take_key(self, frame: _Frame, key: Any, event: Any, position: Position) -> None:
        container = frame.container
        assert isinstance(container, dict)
        is_merge = isinstance(event, events.ScalarEvent) and event.value == "<<" and event.implicit[0]
        if not is_merge:
            try:
                duplicate = key in container
            except TypeError:
                raise ValueError("a mapping key must be a plain value, not a list or mapping") from None
            if duplicate:
                raise ValueError(f"duplicate key '{key}': a key may appear only once in a mapping")
        frame.key = "<<" if is_merge else key
        # A negative line marks a merge key, which no ordinary key can have.
        frame.key_position = (-1, -1) if is_merge else position


def read_yaml(text: str, *, located: bool = False, limits: YamlLimits | None = None) -> list[YamlDocument]:
    """Every document of ``text``. A document that breaks a rule (a duplicate key, a custom tag, a limit) carries
    its ``error`` and the others are still read; a syntax error, after which the parser cannot go on, raises
    :class:`YamlError` with its position."""
    limits = limits or YamlLimits()
    parser = CParser(text)
    documents: list[YamlDocument] = []
    builder: _DocumentBuilder | None = None
    broken: YamlError | None = None
    start: Position = (1, 1)
    try:
        while parser.check_event():
            event = parser.get_event()
            if isinstance(event, events.DocumentStartEvent):
                builder, broken = _DocumentBuilder(limits, located), None
                start = _mark(event)
            elif isinstance(event, events.DocumentEndEvent):
                assert builder is not None
                if broken is not None:
                    documents.append(YamlDocument(len(documents), *start, None, None, broken))
                else:
                    documents.append(YamlDocument(len(documents), *start, builder.root, builder.positions))
                builder = None
            elif builder is not None and broken is None:
                try:
                    builder.feed(event)
                except YamlError as exc:
                    broken = exc  # the rest of this document's events are passed over
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        if mark is not None and text[mark.index : mark.index + 1] == "\t":
            problem = "a tab where YAML expects indentation or a value: YAML does not allow tabs, indent with spaces"
        elif exc.context and "flow" in exc.context and exc.context_mark is not None:
            # report where the bracket opens: the end of the file, where the parser notices, says nothing
            mark = exc.context_mark
            bracket = text[mark.index : mark.index + 1] or "{"
            closing = {"{": "}", "[": "]"}.get(bracket, "}")
            problem = f"this '{bracket}' is never closed: a '{closing}' (or a ',' between items) is missing"
        raise YamlError(
            f"YAML syntax: {problem}", mark.line + 1 if mark else 1, mark.column + 1 if mark else 1
        ) from None
    except YAMLError as exc:
        line, column = _offset_position(text, getattr(exc, "position", 0))
        raise YamlError(f"YAML: {getattr(exc, 'reason', None) or exc}", line, column) from None
    finally:
        parser.dispose()
    return documents


def _offset_position(text: str, offset: int) -> Position:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1
