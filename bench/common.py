"""What the benchmarks share: a desired-state remote, ports, and the agent's command line."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def make_remote(root: Path, write: Callable[[Path], object]) -> tuple[Path, Path]:
    """A bare remote and a working clone whose first commit holds what ``write`` put in the folder."""
    root.mkdir(parents=True, exist_ok=True)
    bare, work = root / "remote.git", root / "work"
    git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    git(work, "config", "user.email", "bench@example.invalid")
    git(work, "config", "user.name", "bench")
    git(work, "remote", "add", "origin", str(bare))
    write(work)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "bench")
    git(work, "push", "-q", "origin", "HEAD:main")
    return bare, work


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def agent_command(bare: Path, state: Path, api_port: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "reconciler",
        "run",
        "--repo",
        f"file://{bare}",
        "--node",
        "bench",
        "--state-dir",
        str(state),
        "--listen",
        f"127.0.0.1:{api_port}",
        *extra,
    ]
