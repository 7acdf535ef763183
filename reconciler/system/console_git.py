"""The console's clone of the desired-state repository: a working tree in its state dir where an edit is made on
the branch's tip, validated, committed with the person's name and pushed; or pushed to a branch of its own for a
pull request. One edit at a time per clone (the caller holds a lock); a push refused because the tip moved is
retried by making the same edit again on the new tip.

Nothing from a request becomes a command-line option: paths are checked to stay inside the tree and given after
``--``, names and e-mails go through the environment, branch names are built from checked characters.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import git

from reconciler.errors import SourceError
from reconciler.settings import GitIdentity
from reconciler.system.git import git_detail, missing_remote, token_config
from reconciler.system.status_fleet import NodeFiles, fleet_in, refs_in

REJECTED = ("rejected", "fetch first", "non-fast-forward", "failed to push", "stale info")


class PushRejectedError(SourceError):
    """The remote refused the push because its branch moved on."""


@dataclass(frozen=True)
class Committed:
    commit: str
    branch: str


class ConsoleClone:
    def __init__(
        self, url: str, *, workdir: Path, branch: str, path: str, timeout: float, committer: GitIdentity
    ) -> None:
        self.url = url
        self.branch = branch
        self.path = path.strip("/")
        self.timeout = timeout
        self.committer = committer
        env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "SSH_ASKPASS": "true", **token_config()}
        try:
            if (workdir / ".git").is_dir():
                self.repo = git.Repo(workdir)
            else:
                workdir.mkdir(parents=True, exist_ok=True)
                self.repo = git.Repo.init(workdir)
            with self.repo.config_writer() as config:
                config.set_value('remote "origin"', "url", url)
                config.set_value('remote "origin"', "fetch", "+refs/heads/*:refs/remotes/origin/*")
            self.repo.git.update_environment(**env)
        except (git.GitError, OSError) as exc:
            raise SourceError(f"cannot prepare the console's clone in {workdir}: {git_detail(exc)}") from exc

    @property
    def root(self) -> Path:
        return Path(self.repo.working_tree_dir or ".")

    @property
    def folder(self) -> Path:
        return self.root / self.path if self.path else self.root

    def close(self) -> None:
        self.repo.close()

    def refresh(self, ref: str | None = None) -> str:
        """The working tree at the tip of the branch (or ``ref`` of the remote); the tip's commit."""
        ref = ref or self.branch
        try:
            self.repo.git.fetch("--quiet", "--no-tags", "--prune", "origin", kill_after_timeout=self.timeout)
        except (git.GitError, OSError) as exc:
            missing = missing_remote(git_detail(exc), self.url, ref)
            if missing is not None:
                raise SourceError(missing) from exc
            raise SourceError(f"cannot read {ref} of the desired-state repository: {git_detail(exc)}") from exc
        if f"origin/{ref}" not in {r.name for r in self.repo.remote("origin").refs}:
            raise SourceError(f"branch {ref} does not exist in {self.url}")
        try:
            tip = self.repo.commit(f"refs/remotes/origin/{ref}").hexsha
            self.repo.git.checkout("--quiet", "--force", "--detach", tip)
            self.repo.git.clean("-fdxq")
        except (git.GitError, OSError, ValueError) as exc:
            raise SourceError(f"cannot read {ref} of the desired-state repository: {git_detail(exc)}") from exc
        return str(tip)

    def head(self) -> str:
        return str(self.repo.head.commit.hexsha)

    def discard(self) -> None:
        """The working tree back to the checked-out commit (what a preview wrote is gone)."""
        try:
            self.repo.git.checkout("--quiet", "--force", "HEAD")
            self.repo.git.clean("-fdxq")
        except git.GitError as exc:
            raise SourceError(f"cannot reset the console's working tree: {git_detail(exc)}") from exc

    def inside(self, relpath: str) -> Path:
        """``relpath`` under the desired-state folder; anything that leaves it is refused."""
        target = (self.folder / relpath).resolve()
        if not target.is_relative_to(self.folder.resolve()) or not relpath or relpath.startswith("-"):
            raise SourceError(f"{relpath!r} is not a file of the desired state")
        return target

    def read(self, relpath: str) -> str:
        # newline="": CRLF files are read and written back as they are, not converted (every line in the diff)
        with self.inside(relpath).open(encoding="utf-8", newline="") as handle:
            return handle.read()

    def commit(self, relpath: str, message: str, author: GitIdentity) -> str:
        """Commit ``relpath`` as it is in the working tree, on the detached tip; the new commit."""
        target = self.inside(relpath)
        env = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": self.committer.name,
            "GIT_COMMITTER_EMAIL": self.committer.email,
        }
        try:
            self.repo.git.add("--", str(target.relative_to(self.root)))
            # the message goes through a file of ours: never through argv
            message_file = Path(self.repo.git_dir) / "CONSOLE_MESSAGE"
            message_file.write_text(message, encoding="utf-8")
            self.repo.git.commit("--quiet", "--no-verify", "-F", str(message_file), env=env)
            return str(self.repo.head.commit.hexsha)
        except (git.GitError, OSError) as exc:
            raise SourceError(f"cannot commit the edit: {git_detail(exc)}") from exc

    def push(self, branch: str) -> None:
        """Push the commit to ``branch`` of the remote, fast-forward only."""
        if not re.fullmatch(r"[A-Za-z0-9._/-]+", branch) or branch.startswith("-") or ".." in branch:
            raise SourceError(f"{branch!r} is not a branch name the console pushes to")
        try:
            self.repo.git.push("--quiet", "origin", f"HEAD:refs/heads/{branch}", kill_after_timeout=self.timeout)
        except git.GitCommandError as exc:
            detail = git_detail(exc)
            if any(word in detail for word in REJECTED):
                raise PushRejectedError(f"the remote's {branch} moved on: {detail}") from exc
            raise SourceError(f"cannot push to {branch}: {detail}") from exc

    def status(self, branch: str) -> dict[str, NodeFiles]:
        """Every node's status files on the remote (as of the last refresh), per-node branches and the shared one."""
        shared, per_node = refs_in(
            self.repo, shared=f"refs/remotes/origin/{branch}", nodes=f"refs/remotes/origin/{branch}"
        )
        try:
            return fleet_in(self.repo, shared=shared, per_node=per_node)
        except (git.GitError, ValueError) as exc:
            raise SourceError(f"cannot read the status of the nodes: {git_detail(exc)}") from exc

    def changes_since(self, revision: str) -> str:
        """What changed in the desired-state folder between ``revision`` and the branch's tip (``git diff
        --stat``); empty when they are the same, or when ``revision`` is unknown here."""
        if not re.fullmatch(r"[0-9a-f]{40}", revision):
            return ""
        tip = f"refs/remotes/origin/{self.branch}"
        try:
            return str(self.repo.git.diff("--stat", revision, tip, "--", self.path or "."))
        except git.GitCommandError:
            return f"{revision[:12]} is not in this repository's history"

    def edit(
        self,
        relpath: str,
        change: Callable[[str], str],
        validate: Callable[[str], None],
        message: str,
        author: GitIdentity,
        *,
        branch: str | None = None,
        attempts: int = 5,
        fresh: bool = False,
    ) -> Committed:
        """Make ``change`` on the tip, ``validate`` the tree (given the tip), commit and push to ``branch`` (default
        the console's branch); a push refused because the tip moved makes the edit again on the new tip.
        ``fresh``: the caller has just refreshed, so the first attempt starts from the checked-out tip."""
        for attempt in range(attempts):
            base = self.head() if fresh and attempt == 0 else self.refresh()
            after = change(self.read(relpath))
            self.inside(relpath).write_text(after, encoding="utf-8", newline="")
            validate(base)
            commit = self.commit(relpath, message, author)
            try:
                self.push(branch or self.branch)
            except PushRejectedError:
                if attempt == attempts - 1:
                    raise
                continue
            return Committed(commit, branch or self.branch)
        raise AssertionError("unreachable")
