"""Helpers for integration tests that run the real ``reconciler run`` against a bare git repository."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tests.conftest import allow_list


def git(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    return done.stdout.strip()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports: the sockets stay bound until all are chosen (one at a time, the kernel may
    hand out the same port twice)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def wait_for(
    condition: Callable[[], Any],
    *,
    timeout: float,
    interval: float = 0.05,
    what: str = "condition",
    explain: Callable[[], str] | None = None,
) -> Any:
    """``explain``: what to show when it times out (an agent's log), for a failure in CI to say why."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            said = f":\n{explain()}" if explain is not None else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{said}")
        time.sleep(interval)


class Remote:
    """A bare repository (the remote) and a working clone that commits desired state to it."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "remote.git"
        self.work = root / "work"
        git(root, "init", "-q", "--bare", "-b", "main", str(self.bare))
        git(root, "init", "-q", "-b", "main", str(self.work))
        git(self.work, "config", "user.email", "operator@example.invalid")
        git(self.work, "config", "user.name", "operator")
        git(self.work, "remote", "add", "origin", str(self.bare))

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    def commit(self, files: Mapping[str, str], *, message: str = "change", sign_with: Path | None = None) -> str:
        """Replace the tree with ``files``, commit (signed with an SSH key if given) and push; the commit id."""
        for path in self.work.rglob("*.yaml"):
            path.unlink()
        for name, text in files.items():
            (self.work / name).parent.mkdir(parents=True, exist_ok=True)
            (self.work / name).write_text(text)
        git(self.work, "add", "-A")
        signing = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={sign_with}"] if sign_with else []
        git(self.work, *signing, "commit", "-q", "--allow-empty", *(["-S"] if sign_with else []), "-m", message)
        git(self.work, "push", "-q", "origin", "HEAD:main")
        return git(self.work, "rev-parse", "HEAD")

    def status_file(self, path: str, branch: str = "reconciler-status") -> str | None:
        """A status file (``status/<node>/...``) from the node's own branch, or from the shared one."""
        node = path.split("/")[1] if path.startswith("status/") else ""
        for ref in (f"{branch}/{node}", branch):
            try:
                return git(self.bare, "show", f"{ref}:{path}")
            except subprocess.CalledProcessError:
                continue
        return None

    def status_log(self, branch: str = "reconciler-status") -> list[str]:
        try:
            return git(self.bare, "rev-list", branch).splitlines()
        except subprocess.CalledProcessError:
            return []


def lists(**entries: str) -> dict[str, str]:
    return {f"egress/{name}.yaml": allow_list(name, ip) for name, ip in entries.items()}


class AgentProcess:
    """``reconciler run`` as a child process, with its own port and state dir."""

    def __init__(
        self,
        remote: Remote,
        state_dir: Path,
        *,
        node: str,
        args: tuple[str, ...] = (),
        env: Mapping[str, str] | None = None,
        netns: str | None = None,
        host: str = "127.0.0.1",
        nameserver: str | None = None,
        nofile: int | None = None,
        own_group: bool = False,
    ) -> None:
        """``netns``: run inside that network namespace, its API on ``host`` (an address the test reaches);
        ``nameserver``: the DNS server it asks (default a loopback port where nothing listens); ``nofile``: its
        descriptor limit (soft and hard, with prlimit); ``own_group``: in a process group of its own, as a
        terminal's foreground job is (``interrupt`` then sends SIGINT to the whole group, as Ctrl-C does)."""
        self.remote = remote
        self.state_dir = state_dir
        self.node = node
        self.args = args
        self.env = dict(env or {})
        self.port = free_port()
        self.log = state_dir.parent / f"{node}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.netns = netns
        self.address = f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
        self.nameserver = nameserver
        self.nofile = nofile
        self.own_group = own_group

    def start(self) -> AgentProcess:
        self.launch()
        wait_for(self._answers, timeout=15, what=f"{self.node} to serve /healthz")
        return self

    def launch(self) -> None:
        """Start the process without waiting for it (many agents at once: wait with ``ready``)."""
        command = [
            *(["ip", "netns", "exec", self.netns] if self.netns else []),
            *(["prlimit", f"--nofile={self.nofile}:{self.nofile}", "--"] if self.nofile else []),
            sys.executable,
            "-m",
            "reconciler",
            "run",
            "--repo",
            self.remote.url,
            "--node",
            self.node,
            "--state-dir",
            str(self.state_dir),
            "--listen",
            self.address,
            # by default names are asked of a loopback port where no server listens: a test agent never asks a
            # real DNS
            "--nameserver",
            self.nameserver or f"127.0.0.1:{free_port()}",
            *self.args,
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                process_group=0 if self.own_group else None,
            )

    def ready(self) -> bool:
        return self._answers()

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"agent exited {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
        try:
            return self.request("/healthz")[0] == 200
        except OSError:
            return False

    def request(
        self, path: str, *, data: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, bytes]:
        request = urllib.request.Request(f"http://{self.address}{path}", data=data, headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def status(self) -> dict[str, Any]:
        code, body = self.request("/status")
        assert code == 200
        result: dict[str, Any] = json.loads(body)
        return result

    def applied(self) -> str | None:
        revision: str | None = self.status()["lastAppliedRevision"]
        return revision

    def metrics(self) -> str:
        return self.request("/metrics")[1].decode()

    def signal(self, signum: int = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def interrupt(self) -> None:
        """Ctrl-C: SIGINT to every process of the agent's group (it, git, proxy workers)."""
        assert self.process is not None
        assert self.own_group
        os.killpg(self.process.pid, signal.SIGINT)

    def children(self) -> list[str]:
        """The command lines of the agent's child processes now."""
        assert self.process is not None
        found = []
        for entry in Path("/proc").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                if (
                    entry.name.isdigit()
                    and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == self.process.pid
                ):
                    found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        return found

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
