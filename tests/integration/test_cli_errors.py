"""Ordinary errors get one clear line and the right exit code, never a traceback: a port in use, a closed pipe,
a repository or branch that does not exist."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ALLOW_LIST
from tests.integration.agents import Remote, lists

pytestmark = pytest.mark.integration

RECONCILER = [sys.executable, "-m", "reconciler"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RECONCILER, *args], capture_output=True, text=True, timeout=60, check=False)


def test_a_port_in_use_is_a_usage_error_naming_the_address(tmp_path: Path) -> None:
    remote = Remote(tmp_path)
    remote.commit(lists(a="203.0.113.1"))
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = _run("run", "--repo", remote.url, "--state-dir", str(tmp_path / "s"), "--listen", f"127.0.0.1:{port}")
    assert done.returncode == 2
    assert f"reconciler: --listen 127.0.0.1:{port}: cannot listen there: Address already in use" in done.stderr
    assert "Traceback" not in done.stderr


def _big_tree(root: Path, lists: int, entries: int) -> Path:
    """Output larger than a pipe's buffer, so that the writer really meets the closed pipe."""
    root.mkdir()
    for number in range(lists):
        body = "\n".join("    - ip: 203.0.113.7" for _ in range(entries))  # duplicates: a warning each
        (root / f"l{number}.yaml").write_text(ALLOW_LIST.format(name=f"l{number}", entries=body))
    return root


def _into_closed_pipe(*args: str) -> tuple[int, bytes]:
    writer = subprocess.Popen([*RECONCILER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert writer.stdout is not None
    writer.stdout.readline()
    writer.stdout.close()  # the reader goes away after one line
    _, stderr = writer.communicate(timeout=120)
    return writer.returncode, stderr


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`validate --format json | head -1` and `status --format json | head -1` with output larger than the pipe
    holds: exit 0 and nothing on stderr, as `git log | head` does."""
    warned = _big_tree(tmp_path / "warned", 1, 3000)
    assert _into_closed_pipe("validate", str(warned), "--format", "json") == (0, b"")
    many = _big_tree(tmp_path / "many", 800, 1)
    state = tmp_path / "state"
    assert _run("apply", str(many), "--once", "--node", "gw-1", "--state-dir", str(state)).returncode == 0
    assert _into_closed_pipe("status", "--state-dir", str(state), "--format", "json") == (0, b"")


def test_a_repository_or_branch_that_does_not_exist_is_an_input_error(tmp_path: Path) -> None:
    remote = Remote(tmp_path)
    remote.commit(lists(a="203.0.113.1"))
    missing = _run("run", "--once", "--repo", f"file://{tmp_path}/nothing.git", "--state-dir", str(tmp_path / "s1"))
    assert missing.returncode == 2
    assert f"reconciler: no git repository at file://{tmp_path}/nothing.git" in missing.stderr
    branch = _run("run", "--once", "--repo", remote.url, "--branch", "nope", "--state-dir", str(tmp_path / "s2"))
    assert branch.returncode == 2
    assert f"reconciler: branch nope does not exist in {remote.url}" in branch.stderr
    assert "Traceback" not in missing.stderr + branch.stderr
    path = _run("run", "--once", "--repo", remote.url, "--path", "typo", "--state-dir", str(tmp_path / "s3"))
    assert path.returncode == 2  # as the README says: a path that does not exist is an input error
    assert "reconciler: path typo is not in revision " in path.stderr


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"\xff\xfe", "Expecting value"),
        (b'{"node": "gw-1"', "Expecting ',' delimiter"),
        (b"[1, 2]", "AttributeError"),
        (b'{"node": "gw-1"}', "KeyError: 'lastAppliedRevision'"),
    ],
    ids=["not-utf8", "cut-short", "a-list", "missing-fields"],
)
def test_a_status_snapshot_that_cannot_be_read_is_one_line(tmp_path: Path, content: bytes, why: str) -> None:
    """A status.json damaged by hand or by a disk: `reconciler status` says which file and why, exit 3."""
    (tmp_path / "status.json").write_bytes(content)
    # text needs a whole status document; json and csv show any JSON (csv: the edges it has, maybe none)
    formats = ("text", "json", "csv") if why.startswith("Expecting") else ("text",)
    for output in formats:
        done = _run("status", "--state-dir", str(tmp_path), "--format", output)
        assert done.returncode == 3, done.stderr
        assert done.stderr.startswith(f"reconciler: {tmp_path / 'status.json'} cannot be read (")
        assert why in done.stderr
        assert "Traceback" not in done.stderr


def test_a_console_on_a_repository_or_branch_that_does_not_exist_does_not_start(tmp_path: Path) -> None:
    """It used to start, answer /healthz, then 502 every call; it now says why and exits 2, as the agent does."""
    remote = Remote(tmp_path)
    remote.commit(lists(a="203.0.113.1"))
    base = ("console", "--listen", "127.0.0.1:9", "--state-dir")
    missing = _run(*base, str(tmp_path / "c1"), "--repo", f"file://{tmp_path}/nothing.git")
    assert missing.returncode == 2
    assert f"reconciler console: no git repository at file://{tmp_path}/nothing.git" in missing.stderr
    branch = _run(*base, str(tmp_path / "c2"), "--repo", remote.url, "--branch", "nope")
    assert branch.returncode == 2
    assert f"reconciler console: branch nope does not exist in {remote.url}" in branch.stderr
    assert "Traceback" not in missing.stderr + branch.stderr
