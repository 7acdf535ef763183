"""The zone applier: a zone file replaced atomically, and only after ``named-checkzone`` accepted it (a zone that
fails the check leaves the old file, or no file, in place and says why), with the permissions ``named`` needs to
read it; the operator's after-change command run as an argument list."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from reconciler.errors import ApplyError, CommandError
from reconciler.system.commands import CommandRunner
from reconciler.system.files import group_id, set_permissions, write_checked

TIMEOUT = 30.0


def zone_group(group: str | None) -> int | None:
    """The gid of ``output.group``; an ApplyError that names it when this machine has no such group."""
    if group is None:
        return None
    try:
        return group_id(group)
    except KeyError:
        raise ApplyError(f"output.group {group} is not a group on this machine") from None


class ZoneApplier:
    def __init__(self, runner: CommandRunner) -> None:
        self.runner = runner

    def write(self, path: Path, zone: str, text: str, *, check: bool, mode: int, group: str | None) -> None:
        kept = "the old zone stays" if path.exists() else f"no file is written to {path} until it passes"

        def checked(candidate: Path) -> None:
            if not check:
                return
            result = self.runner.run(["named-checkzone", "-q", zone, str(candidate)], timeout=TIMEOUT)
            if result.returncode != 0:
                result = self.runner.run(["named-checkzone", zone, str(candidate)], timeout=TIMEOUT)
                said = (result.stdout + result.stderr).decode(errors="replace").strip().splitlines()
                detail = "; ".join(line for line in said if str(candidate) not in line or "error" in line)[-500:]
                raise ApplyError(f"zone {zone} fails named-checkzone, {kept}: {detail}")

        gid = zone_group(group)
        try:
            write_checked(path, text.encode(), checked, mode=mode, gid=gid)
        except OSError as exc:
            raise ApplyError(f"cannot write zone {zone} to {path}: {exc}") from exc

    def permit(self, path: Path, zone: str, mode: int, group: str | None) -> None:
        """Put back the permissions of a zone file whose text is as written (someone ran chmod or chgrp)."""
        gid = zone_group(group)
        try:
            set_permissions(path, mode, gid)
        except OSError as exc:
            raise ApplyError(f"cannot set the permissions of zone {zone} file {path}: {exc}") from exc

    def after_change(self, argv: Sequence[str]) -> None:
        try:
            self.runner.run(list(argv), timeout=TIMEOUT).check()
        except CommandError as exc:
            raise ApplyError(f"the afterChange command failed: {exc}") from exc
