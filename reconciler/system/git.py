"""git: the desired-state source (``GitSource``: fetch, read a revision, verify its signature) and the status
branch (``GitStatusPublisher``), two seams over one bare repository (``BareRepository``).

The agent keeps one bare repository in its state dir. Desired state is read straight from commit objects, never
from a working tree, so a revision is applied whole or not at all. Status files are committed without a working
tree either: the status branch's tree is read into a private index, only this node's paths are replaced, and the
commit is pushed; a rejected push (another node was faster) starts again from the new tip, so history stays
linear and no node's files are ever lost.
"""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import os
import posixpath
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import git
from git.index.typ import BaseIndexEntry, IndexEntry
from gitdb import IStream

from reconciler.errors import (
    FetchError,
    PathNotFoundError,
    PublishError,
    ReconcilerError,
    RemoteNotFoundError,
    SourceError,
)
from reconciler.model.source_tree import SourceFile, SourceTree, is_desired_state_file, is_skipped
from reconciler.settings import AgentSettings, GitIdentity

log = logging.getLogger(__name__)

TOKEN_ENV = "RECONCILER_GIT_TOKEN"  # noqa: S105 - a variable name, not a secret
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def _tree_files(
    commit: git.Commit, folder: str, label: str, max_file_bytes: int, *, missing_ok: bool = False
) -> SourceTree:
    root = commit.tree
    if folder not in ("", "."):
        try:
            root = root / folder
        except KeyError:
            if missing_ok:
                return SourceTree(f"{label}:{folder}", ())
            raise PathNotFoundError(f"path {folder} is not in revision {label}") from None
        if not isinstance(root, git.Tree):
            raise PathNotFoundError(f"path {folder} in revision {label} is a file, not a folder")
    files: list[SourceFile] = []
    others: set[str] = set()
    unread: list[tuple[str, str]] = []
    for item in root.traverse():
        if not isinstance(item, git.Blob):
            continue
        path = Path(item.path).as_posix()
        relpath = Path(path).relative_to(folder).as_posix() if folder not in ("", ".") else path
        if is_skipped(relpath):
            continue
        blob = _link_target(commit, item, folder) if item.mode == git.Blob.link_mode else item
        if not is_desired_state_file(relpath):
            if not isinstance(blob, str):  # as on disk: a link out of the folder is no file of the tree
                others.add(relpath)
            continue
        if isinstance(blob, str):
            unread.append((f"{label}:{path}", blob))
            continue
        files.append(SourceFile(f"{label}:{path}", relpath, blob.data_stream.read(max_file_bytes + 1), blob.size))
    files.sort(key=lambda f: f.relpath)
    return SourceTree(f"{label}:{folder}", tuple(files), frozenset(others), tuple(unread))


def _link_target(commit: git.Commit, link: git.Blob, folder: str) -> git.Blob | str:
    """The file a symbolic link in ``commit`` leads to, as a checkout of the folder would read it, or why it is
    not read: a link leading out of the desired-state folder (or nowhere) is not followed."""
    inside = "" if folder in ("", ".") else folder.rstrip("/") + "/"
    item: git.Blob = link
    for _ in range(8):  # the kernel's own limit on links in a row is higher; a chain this long is a loop
        target = item.data_stream.read().decode("utf-8", "replace")
        path = posixpath.normpath(posixpath.join(posixpath.dirname(item.path), target))
        if target.startswith("/") or path.startswith("../") or not path.startswith(inside):
            return f"a symbolic link to {target}, outside the folder"
        try:
            found = commit.tree / path
        except KeyError:
            return f"a symbolic link to {target}, which does not exist"
        if not isinstance(found, git.Blob):
            return "not a regular file"
        if found.mode != git.Blob.link_mode:
            return found
        item = found
    return "a loop of symbolic links"


def _write_files(commit: git.Commit, folder: str, target: Path) -> None:
    root = commit.tree if folder in ("", ".") else commit.tree / folder
    for item in root.traverse():
        if not isinstance(item, git.Blob):
            continue
        path = Path(item.path)
        relpath = path.relative_to(folder).as_posix() if folder not in ("", ".") else path.as_posix()
        if is_desired_state_file(relpath) or is_skipped(relpath):
            continue
        blob = _link_target(commit, item, folder) if item.mode == git.Blob.link_mode else item
        if isinstance(blob, str):  # a link out of the folder is not followed here either
            continue
        destination = target / relpath
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(blob.data_stream.read())


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
        return _tree_files(commit, folder, revision, max_file_bytes, missing_ok=True)


def token_config() -> dict[str, str]:
    """An HTTP token from the environment becomes a git config entry in the environment: never in argv."""
    token = os.environ.get(TOKEN_ENV)
    if not token:
        return {}
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
    }


class BareRepository:
    """The agent's bare repository in ``workdir``, with ``origin`` set to ``url``."""

    def __init__(
        self,
        url: str,
        *,
        workdir: Path,
        timeout: float,
        allowed_signers: Path | None = None,
        gpg_home: Path | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        try:
            self.repo = self._open(workdir, url, allowed_signers)
        except (git.GitError, OSError, ValueError) as exc:
            raise SourceError(f"cannot open the agent's repository {workdir}: {git_detail(exc)}") from exc
        env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "SSH_ASKPASS": "true", **token_config()}
        if gpg_home is not None:
            env["GNUPGHOME"] = str(gpg_home)
        self.repo.git.update_environment(**env)
        self.lock = threading.RLock()

    @staticmethod
    def _open(workdir: Path, url: str, allowed_signers: Path | None) -> git.Repo:
        """The repository in ``workdir``, made on first use. An existing one is opened without a write, and its
        configuration is written only when it changes: an agent must start on a full disk and serve what it has."""
        if (workdir / "HEAD").is_file():
            repo = git.Repo(workdir)
        else:
            workdir.mkdir(parents=True, exist_ok=True)
            repo = git.Repo.init(workdir, bare=True)
        wanted = {('remote "origin"', "url"): url}
        if allowed_signers is not None:
            wanted[("gpg.ssh", "allowedSignersFile")] = str(allowed_signers)
        with repo.config_reader() as reader:
            changed = {key: value for key, value in wanted.items() if reader.get_value(*key, default="") != value}
        if changed:
            with repo.config_writer() as config:
                for (section, option), value in changed.items():
                    config.set_value(section, option, value)
        return repo

    def close(self) -> None:
        """Stop GitPython's long-lived helpers (``git cat-file --batch``): left to the garbage collector, they
        outlive the command that started them."""
        self.repo.close()

    @staticmethod
    def remote_ref(branch: str) -> str:
        return f"refs/remotes/origin/{branch}"

    def fetch_branch(self, branch: str) -> git.Commit:
        """Fetch ``branch`` from origin; its head commit. Raises GitCommandError."""
        ref = self.remote_ref(branch)
        self.repo.git.fetch(
            "--quiet", "--no-tags", "origin", f"+refs/heads/{branch}:{ref}", kill_after_timeout=self.timeout
        )
        return self.repo.commit(ref)

    @contextlib.contextmanager
    def translated(self, error: type[ReconcilerError], doing: str) -> Iterator[None]:
        """One git operation at a time on this repository, with GitPython's and the OS's errors as ours.

        The source (fetch, read a revision) and the status publisher run in different threads and share GitPython's
        long-lived ``cat-file --batch`` helpers, whose protocol is not thread-safe: interleaved, a reader got
        another's answer ("Non-hexadecimal digit found") or waited forever. Helper processes that died (a SIGTERM
        sent to the whole process group, say) are dropped so that the next call starts fresh ones."""
        with self.lock:
            try:
                yield
            except (git.GitError, OSError, ValueError) as exc:
                self.repo.git.clear_cache()
                raise error(f"{doing}: {git_detail(exc)}") from exc


class GitSource:
    """The desired state: ``path`` inside ``branch`` of the repository."""

    def __init__(self, bare: BareRepository, *, branch: str, path: str) -> None:
        self.bare = bare
        self.branch = branch
        self.path = path

    def close(self) -> None:
        self.bare.close()

    def fetch(self) -> str:
        try:
            with self.bare.translated(FetchError, f"cannot fetch {self.branch}"):
                return str(self.bare.fetch_branch(self.branch).hexsha)
        except FetchError as exc:
            missing = missing_remote(str(exc), self.bare.url, self.branch)
            if missing is not None:
                raise RemoteNotFoundError(missing) from exc
            raise

    def tree_at(self, revision: str, *, max_file_bytes: int) -> SourceTree:
        with self.bare.translated(SourceError, f"cannot read revision {revision[:12]}"):
            commit = self.bare.repo.commit(revision)
            return _tree_files(commit, self.path.strip("/"), revision[:12], max_file_bytes)

    def files_at(self, revision: str) -> str | None:
        """The revision's files other than desired-state YAML, written once to ``files/<revision>`` beside the
        bare repository (capabilities read them as files: nginx follows includes on disk). The two newest
        revisions are kept."""
        folder = Path(self.bare.repo.git_dir).parent / "files"
        target = folder / revision
        if target.is_dir():
            return str(target)
        with self.bare.translated(SourceError, f"cannot write the files of revision {revision[:12]}"):
            folder.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(prefix=".writing-", dir=folder))
            try:
                _write_files(self.bare.repo.commit(revision), self.path.strip("/"), scratch)
                scratch.rename(target)
            except BaseException:
                shutil.rmtree(scratch, ignore_errors=True)
                raise
        kept = sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=lambda p: p.stat().st_mtime)
        for old in kept[:-2]:
            if old != target:
                shutil.rmtree(old, ignore_errors=True)
        return str(target)

    def verify(self, revision: str) -> str | None:
        try:
            with self.bare.lock:
                self.bare.repo.git.verify_commit(revision, kill_after_timeout=self.bare.timeout)
        except git.GitCommandError as exc:
            return f"commit {revision[:12]} is not signed by an allowed key: {git_detail(exc)}"
        return None


STATUS_LAYOUTS = ("per-node", "shared")


def status_ref(status_branch: str, node: str, layout: str) -> str:
    """The branch a node publishes to: ``<status-branch>/<node>`` per node, ``<status-branch>`` when shared."""
    return f"{status_branch}/{node}" if layout == "per-node" else status_branch


class GitStatusPublisher:
    """Status files committed without a working tree to the node's own branch (``per-node``: no other node ever
    pushes there, so a push is never rejected because of another) or to one branch every node shares
    (``shared``: a rejected push is rebuilt on the new tip after a jittered, growing pause)."""

    def __init__(
        self,
        bare: BareRepository,
        *,
        status_branch: str,
        identity: GitIdentity,
        node: str,
        layout: str = "per-node",
        sign: bool = False,
        attempts: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff: tuple[float, float] = (0.05, 5.0),
    ) -> None:
        self.bare = bare
        self.repo = bare.repo
        self.status_branch = status_branch
        self.identity = identity
        self.node = node
        self.layout = layout
        self.ref = status_ref(status_branch, node, layout)
        self.sign = sign
        # per node, a rejection means the branch moved under us (another agent with this node's name) or the
        # remote refuses: a rebuild or two, not a race to win; shared, nodes race and may need many rounds
        self.attempts = attempts if attempts is not None else (3 if layout == "per-node" else 10)
        self.sleep = sleep
        self.backoff = backoff
        self.pushes = 0  # push attempts so far (the benchmark counts them)

    def _status_parent(self) -> git.Commit | None:
        """The tip of the branch this node publishes to: only that ref is fetched."""
        try:
            return self.bare.fetch_branch(self.ref)
        except git.GitCommandError as exc:
            if "couldn't find remote ref" not in str(exc):
                raise PublishError(f"cannot fetch {self.ref}: {git_detail(exc)}") from exc
            return None  # the branch does not exist yet: the first push creates it

    def publish(self, files: Mapping[str, bytes], *, prefix: str, message: str) -> str | None:
        with self.bare.translated(PublishError, f"cannot publish to {self.ref}"):
            return self._publish(files, prefix=prefix, message=message)

    def _pause(self, attempt: int) -> None:
        """Exponential with full jitter, so nodes that lost the same race do not meet again at once."""
        first, cap = self.backoff
        self.sleep(min(cap, first * 2**attempt) * random.uniform(0.5, 1.5))

    def _publish(self, files: Mapping[str, bytes], *, prefix: str, message: str) -> str | None:
        last_error = ""
        for attempt in range(1, self.attempts + 1):
            parent = self._status_parent()
            index = git.IndexFile.from_tree(self.repo, parent if parent is not None else EMPTY_TREE)
            for key in [k for k in index.entries if str(k[0]).startswith(prefix)]:
                del index.entries[key]
            for path, content in files.items():
                blob = self.repo.odb.store(IStream(git.Blob.type, len(content), io.BytesIO(content)))
                index.entries[(path, 0)] = IndexEntry.from_base(BaseIndexEntry((0o100644, blob.binsha, 0, path)))
            tree = index.write_tree()
            if parent is not None and tree.hexsha == parent.tree.hexsha:
                return None
            commit = self._commit(tree.hexsha, parent, message)
            self.pushes += 1
            try:
                self.repo.git.push(
                    "--quiet", "origin", f"{commit}:refs/heads/{self.ref}", kill_after_timeout=self.bare.timeout
                )
            except git.GitCommandError as exc:
                last_error = git_detail(exc)
                log.info("status push rejected ref=%s attempt=%d reason=%s", self.ref, attempt, last_error)
                if attempt < self.attempts:
                    self._pause(attempt)
                continue
            return commit
        raise PublishError(f"status push to {self.ref} failed {self.attempts} times: {last_error}")

    def _commit(self, tree: str, parent: git.Commit | None, message: str) -> str:
        args = [tree, "-m", message]
        if parent is not None:
            args += ["-p", parent.hexsha]
        if self.sign:
            args.insert(0, "-S")
        env = {
            "GIT_AUTHOR_NAME": self.identity.name,
            "GIT_AUTHOR_EMAIL": self.identity.email,
            "GIT_COMMITTER_NAME": self.identity.name,
            "GIT_COMMITTER_EMAIL": self.identity.email,
        }
        return str(self.repo.git.commit_tree(*args, env=env, kill_after_timeout=self.bare.timeout))


def open_repository(settings: AgentSettings) -> tuple[GitSource, GitStatusPublisher]:
    """The agent's source and publisher over its bare repository in the state dir."""
    bare = BareRepository(
        settings.repo,
        workdir=settings.state_dir / "repo.git",
        timeout=settings.git_timeout.total_seconds(),
        allowed_signers=settings.allowed_signers,
        gpg_home=settings.gpg_home,
    )
    source = GitSource(bare, branch=settings.branch, path=settings.path)
    publisher = GitStatusPublisher(
        bare,
        status_branch=settings.status_branch,
        identity=settings.author,
        node=settings.node,
        layout=settings.status_layout,
        sign=settings.sign_status,
    )
    return source, publisher


# what git says when the URL names no repository (local paths, and the hosts' answers over HTTPS and SSH)
_NO_REPOSITORY = ("does not appear to be a git repository", "Repository not found", "repository not found")
_TELLING = ("remote:", "error:", "fatal:", "!", "hint:")


def missing_remote(detail: str, url: str, branch: str) -> str | None:
    """What to say when git's ``detail`` means the repository or the branch does not exist; None otherwise."""
    if "couldn't find remote ref" in detail:
        return f"branch {branch} does not exist in {url}"
    if any(sign in detail for sign in _NO_REPOSITORY):
        return f"no git repository at {url}: {detail}"
    return None


def git_detail(exc: Exception) -> str:
    """What git said that explains the failure (the remote's own words first, e.g. a hook's), on one line."""
    text = str(getattr(exc, "stderr", "") or str(exc)).replace("stderr:", "").strip(" '\n")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    telling = [line for line in lines if line.startswith(_TELLING)] or lines
    return " ".join(" ".join(telling).split())[:400]
