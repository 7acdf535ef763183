"""Every node's status files as the remote holds them, whatever the layout: the per-node branches
(``<status-branch>/<node>``) and the shared branch (``<status-branch>``). For the fleet view
(``reconciler status --all``) and the console."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import git

from reconciler.errors import SourceError
from reconciler.system.git import git_detail, token_config


@dataclass(frozen=True)
class NodeFiles:
    files: Mapping[str, bytes]  # path in the status tree -> content
    changed_at: float  # when a commit last changed them (Unix time)


def _files(commit: git.Commit, node: str | None) -> dict[str, dict[str, bytes]]:
    """node -> its files under status/<node>/ in ``commit`` (every node's when ``node`` is None)."""
    try:
        folder = commit.tree / "status"
    except KeyError:
        return {}
    found: dict[str, dict[str, bytes]] = {}
    for item in folder.traverse():
        if not isinstance(item, git.Blob):
            continue
        path = str(item.path)
        parts = path.split("/")
        if len(parts) < 3 or (node is not None and parts[1] != node):
            continue
        found.setdefault(parts[1], {})[path] = item.data_stream.read()
    return found


def fleet_in(repo: git.Repo, *, shared: str | None, per_node: Mapping[str, str]) -> dict[str, NodeFiles]:
    """The nodes of the refs named (``shared``: one ref for all; ``per_node``: node -> its ref). A node found in
    both (a layout changed) is taken from the ref that changed last."""
    nodes: dict[str, NodeFiles] = {}
    if shared is not None:
        commit = repo.commit(shared)
        for node, files in _files(commit, None).items():
            stamp = repo.git.log("-1", "--format=%ct", shared, "--", f"status/{node}/")
            nodes[node] = NodeFiles(files, float(stamp or commit.committed_date))
    for node, ref in per_node.items():
        commit = repo.commit(ref)
        files = _files(commit, node).get(node, {})
        if files and (node not in nodes or commit.committed_date >= nodes[node].changed_at):
            nodes[node] = NodeFiles(files, float(commit.committed_date))
    return nodes


def refs_in(repo: git.Repo, *, shared: str, nodes: str) -> tuple[str | None, dict[str, str]]:
    """The ref ``shared`` if it exists, and every ref under ``nodes/`` by node name."""
    found: str | None = None
    per_node: dict[str, str] = {}
    for ref in repo.refs:
        path = str(ref.path)
        if path == shared:
            found = path
        elif path.startswith(f"{nodes}/"):
            per_node[path.removeprefix(f"{nodes}/")] = path
    return found, per_node


def fetch_fleet(url: str, workdir: Path, *, status_branch: str, timeout: float) -> dict[str, NodeFiles]:
    """Fetch the status refs of ``url`` into a bare repository in ``workdir`` and read every node."""
    try:
        repo = git.Repo.init(workdir, bare=True)
        with repo:
            repo.git.update_environment(GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="true", **token_config())
            heads = str(repo.git.ls_remote("--heads", url, kill_after_timeout=timeout))
            names = {line.split("\t", 1)[1] for line in heads.splitlines() if "\t" in line}
            # two namespaces: a branch and branches below its name cannot live side by side in one
            specs = [f"+refs/heads/{status_branch}/*:refs/fleet-nodes/*"]
            if f"refs/heads/{status_branch}" in names:
                specs.append(f"+refs/heads/{status_branch}:refs/fleet-shared")
            repo.git.fetch("--quiet", "--no-tags", url, *specs, kill_after_timeout=timeout)
            shared, per_node = refs_in(repo, shared="refs/fleet-shared", nodes="refs/fleet-nodes")
            return fleet_in(repo, shared=shared, per_node=per_node)
    except (git.GitError, OSError, ValueError) as exc:
        raise SourceError(f"cannot read the status of {url}: {git_detail(exc)}") from exc
