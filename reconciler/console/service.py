"""What the console does, apart from HTTP: read the allow-lists at the branch's tip, turn an edit into a validated
commit (pushed, or on a branch of its own with a pull request), and read every node's status.

Git work runs in a thread, one edit at a time: the clone has one working tree.
"""

from __future__ import annotations

import asyncio
import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from reconciler.console.allow_list_edits import (
    Entry,
    add_entry,
    allow_entry,
    expected_added,
    expected_removed,
    parse_entries,
    remove_entry,
)
from reconciler.console.edge_network_edits import expected_mode, set_edge_mode
from reconciler.console.edits import EditError, refuse_bidi_controls
from reconciler.console.ip_pool_edits import ban_address, expected_banned, set_banned
from reconciler.errors import Problem, ReconcilerError, Severity
from reconciler.loading.loader import DEFAULT_MAX_FILE_BYTES, LoadResult, load_tree
from reconciler.model import EdgeNetwork, EgressAllowList, IPPool
from reconciler.model.common import Resource
from reconciler.model.source_tree import SourceFile, SourceTree
from reconciler.settings import GitIdentity
from reconciler.system.clock import Clock
from reconciler.system.console_git import Committed, ConsoleClone
from reconciler.system.files import read_source_tree
from reconciler.system.forge import Forge, PullRequest
from reconciler.validation import validate_path


class RefusedEditError(ReconcilerError):
    """The edited tree does not validate: nothing was committed."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Preview:
    file: str
    diff: str


@dataclass(frozen=True)
class Outcome:
    commit: str
    branch: str
    file: str
    diff: str
    pull_request: PullRequest | None = None
    compare_url: str = ""


@dataclass(frozen=True)
class Edit:
    """One change to one resource's file, the commit message that says what it does, and what the resource must
    be afterwards (``expect``, given the resource before)."""

    kind: str
    name: str
    change: Callable[[str], str]
    message: str
    expect: Callable[[Any], Resource]

    def apply(self, tree: SourceTree, relpath: str, text: str) -> str:
        """The edited text, read back in ``tree`` with the agent's own loader: refused (422) unless the tree's
        resources are the same as before but for the one this edit is about, which must be exactly what it says."""
        after = self.change(text)
        was, found = _with_file(tree, relpath, text), _with_file(tree, relpath, after)
        known = {(p.file, p.message) for p in was.errors}
        if new := [p for p in found.errors if (p.file, p.message) not in known]:
            raise RefusedEditError(new)  # the loader's own words, located
        before_resources, after_resources = _by_key(was), _by_key(found)
        key = (self.kind, self.name)
        if after_resources.keys() != before_resources.keys() or found.documents != was.documents:
            raise EditError(f"refused: the edit would add or remove a document in {relpath}, not only {key[1]}", 422)
        for other, resource in after_resources.items():
            wanted = self.expect(before_resources[other]) if other == key else before_resources[other]
            if resource.model_dump() != wanted.model_dump():
                what = f"{other[0]} {other[1]}" + ("" if other == key else ", which it is not about")
                raise EditError(f"refused: the edit would change {what} in more than the value given", 422)
        return after


def _with_file(tree: SourceTree, relpath: str, text: str) -> LoadResult:
    files = tuple(f for f in tree.files if f.relpath != relpath)
    edited = SourceFile(relpath, relpath, text.encode("utf-8"))
    return load_tree(replace(tree, files=(*files, edited)))


def _by_key(result: LoadResult) -> dict[tuple[str, str], Resource]:
    return {(r.KIND, r.metadata.name): r for r in result.state}


def add_edit(name: str, entry: Entry) -> Edit:
    allow_entry(entry)  # a bad value is refused before any git work
    message = f"Allow {entry.destination} in {name}" + (" (protected)" if entry.protected else "")
    return Edit(
        EgressAllowList.KIND,
        name,
        lambda text: add_entry(text, name, entry),
        message,
        lambda before: expected_added(before, entry),
    )


def remove_edit(name: str, destination: str) -> Edit:
    refuse_bidi_controls(destination, "the destination")
    return Edit(
        EgressAllowList.KIND,
        name,
        lambda text: remove_entry(text, name, destination),
        f"Remove {destination} from {name}",
        lambda before: expected_removed(before, destination),
    )


def ban_edit(pool: str, address: str, banned: bool) -> Edit:
    if banned:
        ban_address(address)
    message = f"Ban {address} in {pool}" if banned else f"Release {address} in {pool}"
    return Edit(
        IPPool.KIND,
        pool,
        lambda text: set_banned(text, pool, address, banned),
        message,
        lambda before: expected_banned(before, address, banned),
    )


def mode_edit(network: str, host: str, mode: str, comment: str) -> Edit:
    message = f"{host} {mode} in {network}" + (f": {comment}" if comment else "")
    return Edit(
        EdgeNetwork.KIND,
        network,
        lambda text: set_edge_mode(text, network, host, mode, comment),
        message,
        lambda before: expected_mode(before, host, mode, comment),
    )


@dataclass(frozen=True)
class AllowList:
    name: str
    file: str
    entries: list[dict[str, Any]] = field(default_factory=list)


def problem_json(problem: Problem) -> dict[str, Any]:
    return {
        "file": problem.file,
        "line": problem.line,
        "column": problem.column,
        "path": problem.path,
        "message": problem.message,
    }


def unified(relpath: str, before: str, after: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{relpath}", f"b/{relpath}"
    )
    return "".join(lines)


def compare_url(repository: str, branch: str, base: str) -> str:
    """Where a person opens the pull request by hand when no forge is configured: the web page that compares
    the branch with its base (GitHub's and Gitea's form; GitLab redirects it), for http(s) and scp-like
    (git@host:owner/name) remotes; empty for others (file://, a path)."""
    scp = re.fullmatch(r"[\w.-]+@([\w.-]+):(.+?)(\.git)?/?", repository)
    web = re.fullmatch(r"https?://(?:[^@/]+@)?([^/]+)/(.+?)(\.git)?/?", repository)
    found = scp or web
    if found is None:
        return ""
    return f"https://{found.group(1)}/{found.group(2)}/compare/{base}...{branch}"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "edit"


class Console:
    def __init__(self, clone: ConsoleClone, *, mode: str, forge: Forge | None, clock: Clock) -> None:
        self.clone = clone
        self.mode = mode
        self.forge = forge
        self.clock = clock
        self.lock = asyncio.Lock()

    # --- reading ---------------------------------------------------------------------------------------------

    def _load(self) -> LoadResult:
        """The desired state at the branch's tip."""
        self.clone.refresh()
        return load_tree(self._tree())

    def _tree(self) -> SourceTree:
        return read_source_tree(self.clone.folder, display_root="", max_file_bytes=DEFAULT_MAX_FILE_BYTES)

    def _lists(self) -> list[AllowList]:
        return [
            AllowList(resource.metadata.name, file, parse_entries(self.clone.read(file), resource.metadata.name))
            for resource, file in self._resources(EgressAllowList)
        ]

    async def allow_lists(self) -> list[AllowList]:
        async with self.lock:
            return await asyncio.to_thread(self._lists)

    def _resources(self, kind: type[Resource]) -> list[tuple[Any, str]]:
        result = self._load()
        found = []
        for resource in sorted(result.state.of_kind(kind), key=lambda r: r.metadata.name):
            ref = result.refs.get((kind.KIND, resource.metadata.name))
            if ref is not None:
                found.append((resource, ref.file))
        return found

    async def resources(self, kind: type[Resource]) -> list[tuple[Any, str]]:
        """Every resource of ``kind`` at the branch's tip, with its file."""
        async with self.lock:
            return await asyncio.to_thread(self._resources, kind)

    def _file_of(self, kind: str, name: str) -> str:
        result = self._load()
        ref = result.refs.get((kind, name))
        if ref is None:
            raise EditError(f"no {kind} named {name} in the desired state", 404)
        return ref.file

    # --- editing ---------------------------------------------------------------------------------------------

    def _validate(self, base: str) -> None:
        today = datetime.fromtimestamp(self.clock.now(), UTC).date()
        report = validate_path(self.clone.folder, base=base, today=today)
        errors = [p for p in report.problems if p.severity is Severity.ERROR]
        if errors:  # located in the repository's terms, not the console's clone
            folder = str(self.clone.folder).rstrip("/") + "/"
            raise RefusedEditError([replace(p, file=p.file.removeprefix(folder)) for p in errors])

    def _preview(self, edit: Edit) -> Preview:
        relpath = self._file_of(edit.kind, edit.name)
        before = self.clone.read(relpath)
        after = edit.apply(self._tree(), relpath, before)
        self.clone.inside(relpath).write_text(after, encoding="utf-8", newline="")
        try:
            self._validate(self.clone.head())
        finally:
            self.clone.discard()  # a preview leaves nothing behind (no fetch: the next request refreshes)
        return Preview(relpath, unified(relpath, before, after))

    def _commit(self, edit: Edit, author: GitIdentity) -> Outcome:
        relpath, message = self._file_of(edit.kind, edit.name), edit.message
        before: dict[str, str] = {}

        def remembering(text: str) -> str:
            before["text"] = text
            return edit.apply(self._tree(), relpath, text)

        branch = None
        if self.mode == "pull-request":
            user = slug(author.name)
            branch = f"console/{user}/{slug(message)}-{int(self.clock.now())}"
        # _file_of just fetched the tip: the edit starts there (a rejected push fetches again)
        done: Committed = self.clone.edit(
            relpath, remembering, self._validate, message, author, branch=branch, fresh=True
        )
        diff = unified(relpath, before["text"], self.clone.read(relpath))
        if branch is None:
            return Outcome(done.commit, done.branch, relpath, diff)
        if self.forge is None:
            return Outcome(
                done.commit,
                done.branch,
                relpath,
                diff,
                compare_url=compare_url(self.clone.url, branch, self.clone.branch),
            )
        request = self.forge.open(
            branch, self.clone.branch, message, f"{message}\n\nFrom the console, by {author.name}."
        )
        return Outcome(done.commit, done.branch, relpath, diff, pull_request=request)

    async def preview(self, edit: Edit) -> Preview:
        async with self.lock:
            return await asyncio.to_thread(self._preview, edit)

    async def commit(self, edit: Edit, author: GitIdentity) -> Outcome:
        async with self.lock:
            return await asyncio.to_thread(self._commit, edit, author)

    async def add(self, name: str, entry: Entry, author: GitIdentity) -> Outcome:
        return await self.commit(add_edit(name, entry), author)

    async def remove(self, name: str, destination: str, author: GitIdentity) -> Outcome:
        return await self.commit(remove_edit(name, destination), author)

    def close(self) -> None:
        self.clone.close()


def entry_json(entry: Mapping[str, Any]) -> dict[str, Any]:
    """An entry as the API shows it."""
    kind = next((k for k in ("domain", "ip", "cidr") if k in entry), "")
    return {
        "destination": str(entry.get(kind, "")),
        "type": kind,
        "ports": [str(p) for p in entry.get("ports") or []],
        "protocol": str(entry.get("protocol", "any")),
        "protected": entry.get("protected") is True,
        "expires": str(entry["expires"]) if entry.get("expires") is not None else None,
        "comment": str(entry.get("comment", "")),
    }
