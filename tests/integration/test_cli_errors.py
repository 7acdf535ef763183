"""Ordinary errors get one clear line and the right exit code, never a traceback: a port in use, a closed pipe,
a repository or branch that does not exist."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE
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


@pytest.mark.parametrize(
    "command",
    [["validate", str(EXAMPLE), "--format", "json"], ["plan", str(EXAMPLE), "--node", "gw-1", "--format", "json"]],
)
def test_a_closed_pipe_ends_quietly(command: list[str]) -> None:
    """`reconciler validate --format json | head -1`: exit 0 and nothing on stderr, as `git log | head` does."""
    writer = subprocess.Popen([*RECONCILER, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert writer.stdout is not None
    writer.stdout.readline()
    writer.stdout.close()  # the reader goes away after one line
    _, stderr = writer.communicate(timeout=60)
    assert writer.returncode == 0
    assert b"Error" not in stderr


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
