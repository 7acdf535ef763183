"""git: reading a desired-state tree as it was at a revision (for ``validate --base``)."""

from __future__ import annotations

from pathlib import Path

import git  # noqa: TID251 - this module is the git seam

from reconciler.errors import SourceError
from reconciler.loading.tree import SourceFile, SourceTree, is_desired_state_file, is_skipped


def read_tree_at_revision(path: Path, revision: str, *, max_file_bytes: int) -> SourceTree:
    """The desired-state tree at ``path`` (a folder inside a git working tree) as of ``revision``.

    Files are shown as ``REV:folder/file.yaml``. A folder that did not exist at the revision is an empty tree.
    """
    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise SourceError(f"{path}: not inside a git repository, so --base has nothing to compare with") from None
    with repo:
        top = Path(repo.working_tree_dir or ".").resolve()
        folder = path.resolve().relative_to(top).as_posix()
        try:
            commit = repo.commit(revision)
        except (git.BadName, ValueError, git.GitCommandError):
            raise SourceError(f"unknown revision '{revision}' in {top} (fetch it first?)") from None
        root = commit.tree
        if folder != ".":
            try:
                root = root / folder
            except KeyError:
                return SourceTree(f"{revision}:{folder}", ())
        files: list[SourceFile] = []
        others: set[str] = set()
        for item in root.traverse():
            if not isinstance(item, git.Blob):
                continue
            relpath = Path(item.path).relative_to(folder).as_posix() if folder != "." else Path(item.path).as_posix()
            if is_desired_state_file(relpath):
                shown = f"{revision}:{item.path}"
                files.append(SourceFile(shown, relpath, item.data_stream.read(max_file_bytes + 1)))
            elif not is_skipped(relpath):
                others.add(relpath)
    files.sort(key=lambda f: f.relpath)
    return SourceTree(f"{revision}:{folder}", tuple(files), frozenset(others))
