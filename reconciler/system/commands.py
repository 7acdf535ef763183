"""The process seam: every outside command runs here, as an argument list (never through a shell), with a timeout."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from reconciler.errors import CommandError


@dataclass(frozen=True, slots=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    def check(self) -> CommandResult:
        if self.returncode != 0:
            detail = self.stderr.decode(errors="replace").strip()[-500:]
            raise CommandError(f"{self.argv[0]} exited {self.returncode}: {detail}")
        return self


class CommandRunner(Protocol):
    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        stdin: bytes | None = None,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult: ...


class SubprocessRunner:
    """Runs commands for real."""

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        stdin: bytes | None = None,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        try:
            done = subprocess.run(
                list(argv), input=stdin, capture_output=True, timeout=timeout, cwd=cwd, env=env, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CommandError(f"{argv[0]}: {exc}") from exc
        return CommandResult(tuple(argv), done.returncode, done.stdout, done.stderr)


class NamespaceRunner:
    """Runs every command inside a network namespace (``ip netns exec``): tests, and agents that manage one."""

    def __init__(self, runner: CommandRunner, namespace: str) -> None:
        self.runner = runner
        self.namespace = namespace

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        stdin: bytes | None = None,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        wrapped = ["ip", "netns", "exec", self.namespace, *argv]
        result = self.runner.run(wrapped, timeout=timeout, stdin=stdin, cwd=cwd, env=env)
        return CommandResult(tuple(argv), result.returncode, result.stdout, result.stderr)
