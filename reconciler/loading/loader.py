"""A desired-state tree (file names and bytes) -> a validated :class:`DesiredState`, or every problem in it.

Steps: per file (size limit, UTF-8, YAML with limits), per document (envelope, kind model), then across
documents (unique names, references, port claims, internal ranges, duplicates, referenced files). All problems of
a run are reported, not only the first; warnings do not make the state invalid.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from pydantic import ValidationError

from reconciler.errors import DesiredStateError, Problem, Severity
from reconciler.loading import allow_list_checks, cross_checks
from reconciler.loading.allow_list_checks import PartialList
from reconciler.loading.cross_checks import Declared, Placed, declared_of
from reconciler.loading.documents import validate_document
from reconciler.loading.locator import DocRef, Locator
from reconciler.loading.yaml_reader import YamlError, YamlLimits, read_yaml
from reconciler.model import DesiredState, SourceRef
from reconciler.model.common import Resource
from reconciler.model.egress_allow_list import AllowEntry, EgressAllowList
from reconciler.model.internal_ranges import DEFAULT_RANGES, AddressRanges
from reconciler.model.source_tree import SourceFile, SourceTree

log = logging.getLogger(__name__)

DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """How strict loading is. ``internal_ranges`` is what allow-lists may not reach unless a gateway overrides it."""

    internal_ranges: AddressRanges = DEFAULT_RANGES
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    yaml_limits: YamlLimits = field(default_factory=YamlLimits)
    today: date | None = None  # warn about entries that expired before it (None: no such warnings)
    partial: bool = False  # some files of a tree only: references to what is not there are not errors


@dataclass(frozen=True)
class LoadResult:
    """What a tree holds: the valid resources, every problem, and how to locate more (for later checks)."""

    state: DesiredState
    problems: tuple[Problem, ...]
    refs: Mapping[tuple[str, str], DocRef]
    locator: Locator
    documents: int

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.WARNING)


def _decode(file: SourceFile) -> str:
    content = file.content
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content.count(b"\n", 0, exc.start) + 1
        column = exc.start - (content.rfind(b"\n", 0, exc.start) + 1) + 1
        raise YamlError(
            f"not UTF-8: byte 0x{content[exc.start]:02x} cannot be decoded; save the file as UTF-8",
            line,
            column,
        ) from None


@dataclass(frozen=True, slots=True)
class _ValidDocument:
    index: int
    line: int
    column: int
    resource: Resource


class FileCache:
    """Valid files' documents by relative path and content digest, so that a new revision re-reads only the
    files it changed. Files with problems are never cached (their messages name the revision's file names).
    Holds only the files of the last tree loaded."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, bytes], list[_ValidDocument]] = {}
        self._next: dict[tuple[str, bytes], list[_ValidDocument]] = {}

    def get(self, key: tuple[str, bytes]) -> list[_ValidDocument] | None:
        found = self._entries.get(key)
        if found is not None:
            self._next[key] = found
        return found

    def put(self, key: tuple[str, bytes], documents: list[_ValidDocument]) -> None:
        self._next[key] = documents

    def rotate(self) -> None:
        self._entries, self._next = self._next, {}


def _valid_entries(data: Any, ref: DocRef) -> PartialList | None:
    """The entries of an invalid allow-list document that are valid on their own."""
    if not isinstance(data, dict) or data.get("kind") != EgressAllowList.KIND:
        return None
    spec = data.get("spec")
    entries = spec.get("entries") if isinstance(spec, dict) else None
    name = data.get("metadata", {}).get("name") if isinstance(data.get("metadata"), dict) else None
    if not isinstance(entries, list) or not isinstance(name, str):
        return None
    valid = []
    for index, entry in enumerate(entries):
        try:
            valid.append((index, AllowEntry.model_validate(entry)))
        except ValidationError:
            continue  # its own error is reported already
    return PartialList(name, ref, tuple(valid))


def _read_documents(
    file: SourceFile, options: LoadOptions, locator: Locator, partial: list[PartialList], declared: list[Declared]
) -> tuple[list[_ValidDocument], list[Problem], int]:
    """The valid documents of one file, the problems of the others (and of the file itself), and how many
    documents with content there were."""
    if len(file.content) > options.max_file_bytes:
        message = (
            f"the file is {max(file.size, len(file.content))} bytes, over the limit of {options.max_file_bytes}: "
            "split it into several files"
        )
        return [], [Problem(file.path, 1, 1, message)], 0
    try:
        parsed = read_yaml(_decode(file), limits=options.yaml_limits)
    except YamlError as exc:
        return [], [Problem(file.path, exc.line, exc.column, exc.message)], 0
    valid: list[_ValidDocument] = []
    problems: list[Problem] = []
    broken = [d for d in parsed if d.error is not None]
    problems.extend(Problem(file.path, d.error.line, d.error.column, d.error.message) for d in broken if d.error)
    with_content = [d for d in parsed if d.data is not None]  # an empty document (only comments) is fine
    for document in with_content:
        ref = DocRef(file.path, document.index)
        resource, found = validate_document(document.data, ref, locator)
        problems.extend(found)
        if resource is not None:
            valid.append(_ValidDocument(document.index, document.line, document.column, resource))
            continue
        # what can be read of a document with errors is checked in the same run: its references, the entries
        # that are valid on their own; a fix should not reveal problems that could have been said now
        if (found_declared := declared_of(document.data, ref)) is not None:
            declared.append(
                replace(found_declared, ref=replace(ref, kind=found_declared.kind, name=found_declared.name))
            )
        if (entries := _valid_entries(document.data, ref)) is not None:
            partial.append(replace(entries, ref=DocRef(file.path, document.index, EgressAllowList.KIND, entries.name)))
    return valid, problems, len(with_content) + len(broken)


def load_tree(tree: SourceTree, options: LoadOptions | None = None, *, cache: FileCache | None = None) -> LoadResult:
    """Load everything that can be loaded; never raises for anything wrong in the tree.

    With a ``cache``, files whose content was valid in the previous load are not read again.
    """
    options = options or LoadOptions()
    problems: list[Problem] = []
    contents: dict[str, bytes] = {}
    placed: list[Placed] = []
    partial: list[PartialList] = []
    declared: list[Declared] = []
    starts: dict[tuple[str, int], tuple[int, int]] = {}
    locator = Locator(contents, options.yaml_limits)
    documents = 0
    problems += [  # what CI and the agent both see: a folder and a git revision are read by the same rule
        Problem(shown, 0, 0, f"not read: {why}; put the file itself in the folder", severity=Severity.WARNING)
        for shown, why in tree.unread
    ]
    for file in tree.files:
        contents[file.path] = file.content
        key = (file.relpath, hashlib.sha256(file.content).digest())
        valid = cache.get(key) if cache is not None else None
        if valid is None:
            valid, found, count = _read_documents(file, options, locator, partial, declared)
            problems.extend(found)
            documents += count - len(valid)
            if cache is not None and not found:
                cache.put(key, valid)
        for document in valid:
            documents += 1
            starts[(file.path, document.index)] = (document.line, document.column)
            ref = DocRef(file.path, document.index, document.resource.KIND, document.resource.metadata.name)
            placed.append(Placed(document.resource, ref))
    if cache is not None:
        cache.rotate()
    unique, refs, duplicates = _unique(placed, locator)
    problems.extend(duplicates)
    if not options.partial:
        problems.extend(cross_checks.check_references(unique, locator, declared))
        problems.extend(cross_checks.check_files(unique, locator, tree.other_paths))
    problems.extend(cross_checks.check_ports(unique, locator))
    problems.extend(allow_list_checks.check_internal_ranges(unique, locator, options.internal_ranges, partial))
    problems.extend(allow_list_checks.check_duplicate_entries(unique, locator, partial))
    problems.extend(allow_list_checks.check_entry_sense(unique, locator, options.today, partial))
    problems.extend(allow_list_checks.check_confusable_domains(unique, locator))
    problems.extend(cross_checks.check_route_conflicts(unique, locator))
    state = _state(unique, starts)
    log.debug(
        "loaded tree=%s files=%d documents=%d problems=%d",
        tree.root,
        len(tree.files),
        documents,
        len(problems),
    )
    return LoadResult(state, tuple(sorted(problems, key=lambda p: p.sort_key)), refs, locator, documents)


def load_desired_state(
    tree: SourceTree, options: LoadOptions | None = None, *, cache: FileCache | None = None
) -> LoadResult:
    """Load a tree that must be valid: raises :class:`DesiredStateError` with every problem if it is not."""
    result = load_tree(tree, options, cache=cache)
    if result.errors:
        raise DesiredStateError(result.problems)
    return result


def _unique(
    placed: list[Placed], locator: Locator
) -> tuple[list[Placed], dict[tuple[str, str], DocRef], list[Problem]]:
    seen: dict[tuple[str, str], DocRef] = {}
    unique: list[Placed] = []
    problems: list[Problem] = []
    for item in placed:
        key = (item.resource.KIND, item.resource.metadata.name)
        if key in seen:
            first = seen[key]
            line, _ = locator.position(first, ("metadata", "name"))
            problems.append(
                locator.problem(
                    item.ref,
                    ("metadata", "name"),
                    f"{key[0]} '{key[1]}' is already defined at {first.file}:{line}: names are unique per kind",
                )
            )
            continue
        seen[key] = item.ref
        unique.append(item)
    return unique, seen, problems


def _state(placed: list[Placed], starts: Mapping[tuple[str, int], tuple[int, int]]) -> DesiredState:
    resources: dict[str, dict[str, Resource]] = {}
    sources: dict[tuple[str, str], SourceRef] = {}
    for item in placed:
        key = (item.resource.KIND, item.resource.metadata.name)
        resources.setdefault(key[0], {})[key[1]] = item.resource
        sources[key] = SourceRef(item.ref.file, *starts[(item.ref.file, item.ref.index)])
    return DesiredState(resources, sources)
