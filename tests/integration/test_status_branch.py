"""The status branch against a real bare repository: creation, change-only commits, rejected pushes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.settings import GitIdentity
from reconciler.system.git import BareRepository, GitSource, GitStatusPublisher
from tests.integration.agents import Remote, git

pytestmark = pytest.mark.integration


@pytest.fixture
def opened() -> Iterator[list[BareRepository]]:
    """Repositories a test opened, closed after it (their git helper processes with them)."""
    repositories: list[BareRepository] = []
    yield repositories
    for repository in repositories:
        repository.close()


def _node(
    remote: Remote,
    tmp_path: Path,
    name: str,
    opened: list[BareRepository],
    *,
    layout: str = "shared",
    sleeps: list[float] | None = None,
) -> GitStatusPublisher:
    bare = BareRepository(remote.url, workdir=tmp_path / f"{name}.git", timeout=30)
    opened.append(bare)
    return GitStatusPublisher(
        bare,
        status_branch="reconciler-status",
        identity=GitIdentity(f"agent {name}", f"{name}@example.invalid"),
        node=name,
        layout=layout,
        sleep=(sleeps.append if sleeps is not None else lambda _: None),
    )


@pytest.mark.parametrize(("layout", "branch"), [("shared", "reconciler-status"), ("per-node", "reconciler-status/a")])
def test_the_branch_is_created_and_unchanged_content_makes_no_commit(
    tmp_path: Path, opened: list[BareRepository], layout: str, branch: str
) -> None:
    """The first publish creates the branch; the same files again make no commit; a change makes one."""
    remote = Remote(tmp_path)
    node = _node(remote, tmp_path, "a", opened, layout=layout)
    first = node.publish({"status/a/agent.yaml": b"ok: 1\n"}, prefix="status/a/", message="status a")
    assert first is not None
    assert node.publish({"status/a/agent.yaml": b"ok: 1\n"}, prefix="status/a/", message="status a") is None
    second = node.publish({"status/a/other.yaml": b"ok: 2\n"}, prefix="status/a/", message="status a")
    assert remote.status_log(branch) == [second, first]
    assert git(remote.bare, "ls-tree", "-r", "--name-only", branch).splitlines() == ["status/a/other.yaml"]
    assert git(remote.bare, "log", "-1", "--format=%an <%ae>", branch) == "agent a <a@example.invalid>"
    assert remote.status_file("status/a/other.yaml") == "ok: 2"


def test_per_node_branches_never_contend(tmp_path: Path, opened: list[BareRepository]) -> None:
    """Nodes publishing in turn each push once per change, to a branch of their own; nothing is rejected."""
    remote = Remote(tmp_path)
    nodes = [_node(remote, tmp_path, name, opened, layout="per-node") for name in ("a", "b", "c")]
    for round_ in range(3):
        for node in nodes:
            assert node.publish(
                {f"status/{node.node}/agent.yaml": f"v: {round_}\n".encode()},
                prefix=f"status/{node.node}/",
                message="s",
            )
    assert [node.pushes for node in nodes] == [3, 3, 3]
    heads = git(remote.bare, "for-each-ref", "--format=%(refname)", "refs/heads/reconciler-status").splitlines()
    assert heads == [f"refs/heads/reconciler-status/{name}" for name in ("a", "b", "c")]
    assert git(remote.bare, "ls-tree", "-r", "--name-only", "reconciler-status/b").splitlines() == [
        "status/b/agent.yaml"
    ]


def test_a_rejected_push_is_rebuilt_on_the_new_tip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opened: list[BareRepository]
) -> None:
    """Node a builds on a tip that node b has just moved: the push is rejected, a retries on b's commit, and
    both nodes' files are on the branch in a linear history."""
    remote = Remote(tmp_path)
    sleeps: list[float] = []
    a, b = _node(remote, tmp_path, "a", opened, sleeps=sleeps), _node(remote, tmp_path, "b", opened)
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
    assert len(sleeps) == 1
    assert 0.05 <= sleeps[0] <= 0.15  # the first pause: 0.05 * 2, jittered by half either way
    assert remote.status_log()[0] == commit
    assert git(remote.bare, "rev-list", "--merges", "reconciler-status") == ""
    assert remote.status_file("status/a/agent.yaml") == "v: 2"
    assert remote.status_file("status/b/agent.yaml") == "v: 1"


def test_source_and_publisher_share_one_repository_safely(tmp_path: Path, opened: list[BareRepository]) -> None:
    """The agent reads revisions and publishes status from two threads on one repository: GitPython's shared
    cat-file helpers must not see both at once (interleaved, a read got another's answer or hung)."""
    remote = Remote(tmp_path)
    revision = remote.commit({"a.yaml": "kind: nothing\n" * 50})
    bare = BareRepository(remote.url, workdir=tmp_path / "node.git", timeout=30)
    opened.append(bare)
    source = GitSource(bare, branch="main", path="")
    publisher = GitStatusPublisher(
        bare, status_branch="reconciler-status", identity=GitIdentity(), node="n", sleep=lambda _: None
    )
    source.fetch()
    errors: list[BaseException] = []
    deadline = time.monotonic() + 3

    def read() -> None:
        while time.monotonic() < deadline:
            try:
                assert source.tree_at(revision, max_file_bytes=1 << 20).files
            except BaseException as exc:
                errors.append(exc)
                return

    def publish() -> None:
        number = 0
        while time.monotonic() < deadline:
            number += 1
            try:
                publisher.publish({"status/n/agent.yaml": f"v: {number}\n".encode()}, prefix="status/n/", message="s")
            except BaseException as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=read), threading.Thread(target=publish)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a git call hung"
    assert errors == []
