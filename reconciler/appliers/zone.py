"""The zone applier: a zone file replaced atomically, and only after ``named-checkzone`` accepted it (a zone that
fails the check leaves the old file in place and says why); the operator's after-change command run as an
argument list."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from reconciler.errors import ApplyError, CommandError
from reconciler.system.commands import CommandRunner
from reconciler.system.files import write_checked

TIMEOUT = 30.0


class ZoneApplier:
    def __init__(self, runner: CommandRunner) -> None:
        self.runner = runner

    def write(self, path: Path, zone: str, text: str, *, check: bool) -> None:
        def checked(candidate: Path) -> None:
            if not check:
                return
            result = self.runner.run(["named-checkzone", "-q", zone, str(candidate)], timeout=TIMEOUT)
            if result.returncode != 0:
                result = self.runner.run(["named-checkzone", zone, str(candidate)], timeout=TIMEOUT)
                said = (result.stdout + result.stderr).decode(errors="replace").strip().splitlines()
                detail = "; ".join(line for line in said if str(candidate) not in line or "error" in line)[-500:]
                raise ApplyError(f"zone {zone} fails named-checkzone, the old zone stays: {detail}")

        try:
            write_checked(path, text.encode(), checked)
        except OSError as exc:
            raise ApplyError(f"cannot write zone {zone} to {path}: {exc}") from exc

    def after_change(self, argv: Sequence[str]) -> None:
        try:
            self.runner.run(list(argv), timeout=TIMEOUT).check()
        except CommandError as exc:
            raise ApplyError(f"the afterChange command failed: {exc}") from exc
