"""One YAML document -> one validated resource, or located problems that say what to write instead.

pydantic reports union branches and follow-on errors that only confuse a reader (``edges[1].str: Input should
be a valid string`` next to the real ``edges[1].mode`` error); they are pruned here, and field names are checked
against the known ones to suggest a spelling.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import typing
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from reconciler.errors import Problem
from reconciler.loading.locator import DocRef, Locator, PathElement
from reconciler.model import API_VERSION, KINDS, Resource

ENVELOPE_FIELDS = ("apiVersion", "kind", "metadata", "spec")


def _declared(data: dict[Any, Any]) -> tuple[str, str]:
    kind = data.get("kind")
    metadata = data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return (kind if isinstance(kind, str) else "", name if isinstance(name, str) else "")


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f": did you mean '{close[0]}'?" if close else ""


def validate_document(data: Any, ref: DocRef, locator: Locator) -> tuple[Resource | None, list[Problem]]:
    """Validate the envelope, then the kind's model. ``ref`` is updated with the declared kind and name."""
    if not isinstance(data, dict):
        found = "a list" if isinstance(data, list) else f"a {type(data).__name__} value"
        return None, [
            locator.problem(ref, (), f"a document must be a mapping of {', '.join(ENVELOPE_FIELDS)}; found {found}")
        ]
    kind, name = _declared(data)
    ref = DocRef(ref.file, ref.index, kind if kind in KINDS else "", name)
    api_version = data.get("apiVersion")
    envelope: list[Problem] = []
    if api_version != API_VERSION:
        if api_version is None:
            message = f"apiVersion is missing: write 'apiVersion: {API_VERSION}'"
        else:
            message = f"unknown apiVersion '{api_version}': this reconciler reads {API_VERSION}"
        envelope.append(locator.problem(ref, ("apiVersion",), message))
    if kind not in KINDS:
        known = ", ".join(KINDS)
        if not kind:
            message = f"kind is missing or not a string: one of {known}"
        else:
            message = f"unknown kind '{kind}'{_suggest(kind, list(KINDS))} (known kinds: {known})"
        # the one case where field errors cannot be known: there is no model to check them against
        return None, [*envelope, locator.problem(ref, ("kind",), message)]
    model = KINDS[kind]
    try:
        # a wrong apiVersion is reported once, above; the fields are still checked against the kind's model
        resource = model.model_validate({**data, "apiVersion": API_VERSION} if envelope else data)
    except ValidationError as exc:
        located = locator.data(ref)
        problems = [
            locator.problem(ref, path, message, at_key=at_key)
            for path, message, at_key in _explain(exc, located if located is not None else data, model)
        ]
        return None, [*envelope, *problems]
    return (None, envelope) if envelope else (resource, [])


def _explain(
    exc: ValidationError, data: Any, model: type[BaseModel]
) -> Iterator[tuple[tuple[PathElement, ...], str, bool]]:
    """(path, message, whether to point at the key rather than the value) for each error worth showing."""
    errors = exc.errors(include_url=False)
    paths = [_data_path(data, err["loc"]) for err in errors]
    kept = [
        (err, path, tags)
        for err, (path, tags) in zip(errors, paths, strict=True)
        if _relevant(err, path, tags, data, [p for p, _ in paths])
    ] or [(err, path, tags) for err, (path, tags) in zip(errors, paths, strict=True)]
    seen: set[tuple[tuple[PathElement, ...], str]] = set()
    for err, path, _ in kept:
        message = _message(err, path, model)
        if (path, message) not in seen:
            seen.add((path, message))
            yield path, message, err["type"] == "extra_forbidden"


def _data_path(data: Any, loc: tuple[int | str, ...]) -> tuple[tuple[PathElement, ...], list[tuple[str, int]]]:
    """The part of pydantic's ``loc`` that addresses the data, and the union-branch tags it skipped (with the
    number of path elements before each)."""
    path: list[PathElement] = []
    tags: list[tuple[str, int]] = []
    node = data
    for element in loc:
        if _has(node, element):
            node = node[element]
            path.append(element)
        elif isinstance(element, str) and (element[:1].isupper() or "[" in element or element in _PRIMITIVE_TAGS):
            tags.append((element, len(path)))
        else:
            path.append(element)
            node = None
    return tuple(path), tags


def _has(node: Any, element: int | str) -> bool:
    if isinstance(node, dict):
        return element in node
    return isinstance(node, list) and isinstance(element, int) and 0 <= element < len(node)


_PRIMITIVE_TAGS = {"str", "int", "float", "bool", "list", "dict", "tuple", "none", "date", "lax-or-strict"}


def _value_at(data: Any, path: Sequence[PathElement]) -> Any:
    for element in path:
        try:
            data = data[element]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _relevant(
    err: Any,
    path: tuple[PathElement, ...],
    tags: list[tuple[str, int]],
    data: Any,
    all_paths: list[tuple[PathElement, ...]],
) -> bool:
    # "Tuple should have at least 1 item after validation" is only the echo of an item's own error.
    if err["type"] == "too_short" and any(len(p) > len(path) and p[: len(path)] == path for p in all_paths):
        return False
    if not tags:
        return True
    # A union error: keep the branch that matches what was written (a mapping -> a model branch).
    tag, depth = tags[-1]
    return tag[:1].isupper() == isinstance(_value_at(data, path[:depth]), dict)


def _message(err: Any, path: tuple[PathElement, ...], model: type[BaseModel]) -> str:
    kind, message = err["type"], str(err["msg"])
    if kind == "missing":
        return f"required field '{path[-1]}' is missing" if path else "a required field is missing"
    if kind == "extra_forbidden":
        field = str(path[-1]) if path else "?"
        return f"unknown field '{field}'{_suggest(field, _field_names(model))}"
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return _in_operators_words(kind, err.get("input"), err.get("ctx") or {}, path) or message


def _shape(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text '{value}'"
    return f"the value {value!r}" if value is not None else "nothing"


Wording = Callable[[Any, dict[str, Any], tuple[PathElement, ...]], str]


def _pattern(value: Any, ctx: dict[str, Any], path: tuple[PathElement, ...]) -> str:
    if path and path[-1] == "name":
        return (
            f"'{value}' is not a valid name: use lower-case letters, digits and '-', starting and ending with "
            "a letter or digit (at most 63 characters)"
        )
    return f"'{value}' is not in the form this field takes (the pattern {ctx.get('pattern')})"


def _not_a_list(value: Any, ctx: dict[str, Any], path: tuple[PathElement, ...]) -> str:
    if isinstance(value, str | int | float):
        return f"write a list, even for one value: [{json.dumps(value)}]"
    return f"expected a list, found {_shape(value)}"


def _too_short(value: Any, ctx: dict[str, Any], path: tuple[PathElement, ...]) -> str:
    least = ctx.get("min_length", 1)
    return "must not be empty" if least == 1 else f"needs at least {least} items, found {ctx.get('actual_length')}"


def _too_long(value: Any, ctx: dict[str, Any], path: tuple[PathElement, ...]) -> str:
    return f"allows at most {ctx.get('max_length')} items, found {ctx.get('actual_length')}"


def _bound(words: str, key: str) -> Wording:
    return lambda value, ctx, path: f"{value} is {words} {ctx.get(key)}"


def _choice(value: Any, ctx: dict[str, Any], path: tuple[PathElement, ...]) -> str:
    choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
    return f"'{value}' is not one of {', '.join(choices)}{_suggest(str(value), choices)}"


def _date(value: Any, ctx: dict[str, Any], path: tuple[PathElement, ...]) -> str:
    why = f" ({ctx['error']})" if ctx.get("error") else ""
    return f"'{value}' is not a date{why}: write it as YYYY-MM-DD"


def _expected(what: str) -> Wording:
    return lambda value, ctx, path: f"expected {what}, found {_shape(value)}"


# pydantic's error types -> our words; anything not here keeps the model's own message (ours, from validators)
_WORDING: dict[str, Wording] = {
    "string_pattern_mismatch": _pattern,
    **dict.fromkeys(("tuple_type", "list_type", "set_type", "frozen_set_type"), _not_a_list),
    "too_short": _too_short,
    "too_long": _too_long,
    "greater_than_equal": _bound("too small: the smallest allowed value is", "ge"),
    "greater_than": _bound("too small: it must be more than", "gt"),
    "less_than_equal": _bound("too large: the largest allowed value is", "le"),
    "less_than": _bound("too large: it must be less than", "lt"),
    "literal_error": _choice,
    **dict.fromkeys(("date_type", "date_parsing", "date_from_datetime_parsing", "date_from_datetime_inexact"), _date),
    **dict.fromkeys(("int_type", "int_parsing", "int_from_float"), _expected("a whole number")),
    **dict.fromkeys(("bool_type", "bool_parsing"), _expected("true or false")),
    "string_type": _expected("text"),
    **dict.fromkeys(("dict_type", "model_type", "model_attributes_type"), _expected("a mapping of fields")),
}


def _in_operators_words(kind: str, value: Any, ctx: dict[str, Any], path: tuple[PathElement, ...]) -> str:
    """pydantic's wording of the common errors, said as an operator would want to read it ('' when not known)."""
    wording = _WORDING.get(kind)
    return wording(value, ctx, path) if wording is not None else ""


@functools.cache
def _field_names(model: type[BaseModel]) -> list[str]:
    """Every field name (by alias) of a model and the models it contains, for spelling suggestions."""
    names: set[str] = set()
    pending: list[type[BaseModel]] = [model]
    seen: set[type[BaseModel]] = set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        for name, info in current.model_fields.items():
            names.add(info.alias or name)
            pending.extend(_models_in(info.annotation))
    return sorted(names)


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)
