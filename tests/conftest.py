"""Shared helpers: run the CLI in-process, build desired-state trees in temporary folders."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reconciler.cli import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "desired-state"
DATA = Path(__file__).resolve().parent / "data"
IN_CI = os.environ.get("CI", "").lower() == "true"
DEAD_NAMESERVER = "127.0.0.1:9"  # loopback, nothing listens: a test never asks the machine's own resolver


@pytest.fixture(autouse=True)
def _no_outside_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Agents and CLI runs in tests resolve through a dead loopback server unless a test names its own: the
    machine's resolver is an address outside the test's world."""
    monkeypatch.setenv("RECONCILER_NAMESERVERS", DEAD_NAMESERVER)


def require_root(*tools: str) -> None:
    """Tests of the kernel's firewall and namespaces need root and these programs: in CI they fail without them
    (CI is root and installs them), elsewhere they are skipped."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if os.geteuid() != 0 or missing:
        why = f"needs root and {', '.join(missing) or 'nothing else'}"
        if IN_CI:
            pytest.fail(why)
        pytest.skip(why)


def require_tools(*tools: str) -> None:
    """Programs a test drives (a browser, say): in CI they fail without them, elsewhere they are skipped."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        why = f"needs {', '.join(missing)}"
        if IN_CI:
            pytest.fail(why)
        pytest.skip(why)


ALLOW_LIST = """apiVersion: reconciler/v1
kind: EgressAllowList
metadata: {{name: {name}}}
spec:
  entries:
{entries}
"""


def allow_list(name: str, *ips: str) -> str:
    """An EgressAllowList document whose entries (from line 6 on) are the given addresses."""
    return ALLOW_LIST.format(name=name, entries="\n".join(f"    - ip: {ip}" for ip in ips))


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``reconciler ARGS`` in-process and return its exit code and output."""

    def run(*args: str | Path) -> CliResult:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def write_tree(tmp_path: Path) -> Callable[[dict[str, str | bytes]], Path]:
    """Write {relative path: content} under a fresh folder and return the folder."""

    def write(files: dict[str, str | bytes]) -> Path:
        root = tmp_path / "desired-state"
        for name, content in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        root.mkdir(exist_ok=True)
        return root

    return write


@contextlib.contextmanager
def descriptors_exhausted(spare: int = 8) -> Iterator[None]:
    """This process out of file descriptors (EMFILE for every new socket or file) until the block ends: the soft
    limit lowered to what is open plus ``spare``, and those taken."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held: list[int] = []
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + spare, hard))
        with contextlib.suppress(OSError):
            while True:
                held.append(os.open("/dev/null", os.O_RDONLY))
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
