"""The status branch against a real bare repository: creation, change-only commits, rejected pushes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.settings import GitIdentity
from reconciler.system.git import BareRepository, GitStatusPublisher
from tests.integration.agents import Remote, git

pytestmark = pytest.mark.integration


@pytest.fixture
def opened() -> Iterator[list[BareRepository]]:
    """Repositories a test opened, closed after it (their git helper processes with them)."""
    repositories: list[BareRepository] = []
    yield repositories
    for repository in repositories:
        repository.close()


def _node(remote: Remote, tmp_path: Path, name: str, opened: list[BareRepository]) -> GitStatusPublisher:
    bare = BareRepository(remote.url, workdir=tmp_path / f"{name}.git", timeout=30)
    opened.append(bare)
    return GitStatusPublisher(
        bare, status_branch="reconciler-status", identity=GitIdentity(f"agent {name}", f"{name}@example.invalid")
    )


def test_the_branch_is_created_and_unchanged_content_makes_no_commit(
    tmp_path: Path, opened: list[BareRepository]
) -> None:
    """The first publish creates the branch; the same files again make no commit; a change makes one."""
    remote = Remote(tmp_path)
    node = _node(remote, tmp_path, "a", opened)
    first = node.publish({"status/a/agent.yaml": b"ok: 1\n"}, prefix="status/a/", message="status a")
    assert first is not None
    assert node.publish({"status/a/agent.yaml": b"ok: 1\n"}, prefix="status/a/", message="status a") is None
    second = node.publish({"status/a/other.yaml": b"ok: 2\n"}, prefix="status/a/", message="status a")
    assert remote.status_log() == [second, first]
    assert git(remote.bare, "ls-tree", "-r", "--name-only", "reconciler-status").splitlines() == ["status/a/other.yaml"]
    assert git(remote.bare, "log", "-1", "--format=%an <%ae>", "reconciler-status") == "agent a <a@example.invalid>"


def test_a_rejected_push_is_rebuilt_on_the_new_tip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opened: list[BareRepository]
) -> None:
    """Node a builds on a tip that node b has just moved: the push is rejected, a retries on b's commit, and
    both nodes' files are on the branch in a linear history."""
    remote = Remote(tmp_path)
    a, b = _node(remote, tmp_path, "a", opened), _node(remote, tmp_path, "b", opened)
    base = a.publish({"status/a/agent.yaml": b"v: 1\n"}, prefix="status/a/", message="a 1")
    stale = a.repo.commit(base)
    b.publish({"status/b/agent.yaml": b"v: 1\n"}, prefix="status/b/", message="b 1")

    real_parent = a._status_parent
    calls: list[str] = []

    def parent_once_stale() -> object:
        calls.append("parent")
        return stale if len(calls) == 1 else real_parent()

    monkeypatch.setattr(a, "_status_parent", parent_once_stale)
    commit = a.publish({"status/a/agent.yaml": b"v: 2\n"}, prefix="status/a/", message="a 2")

    assert len(calls) == 2, "the first push must have been rejected and retried"
    assert remote.status_log()[0] == commit
    assert git(remote.bare, "rev-list", "--merges", "reconciler-status") == ""
    assert remote.status_file("status/a/agent.yaml") == "v: 2"
    assert remote.status_file("status/b/agent.yaml") == "v: 1"
