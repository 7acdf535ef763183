"""The zone applier through FakeCommandRunner (no named, no root): a zone named-checkzone accepts replaces the
old file atomically with the spec's mode; one it refuses leaves the old file (or none) and says why in its words;
a chmod is put back; an afterChange that fails is an ApplyError. The real named-checkzone: tests/integration."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler.appliers.zone import ZoneApplier, zone_group
from reconciler.errors import ApplyError
from reconciler.system.commands import CommandResult
from reconciler.testing import FakeCommandRunner

REFUSED = (
    b"zone example.org/IN: NS 'ns1.example.org' has no address records (A or AAAA)\n"
    b"zone example.org/IN: not loaded due to errors.\n"
)


def _refusing() -> FakeCommandRunner:
    return FakeCommandRunner({("named-checkzone",): CommandResult(("named-checkzone",), 1, REFUSED, b"")})


def test_a_checked_zone_replaces_the_file_with_its_mode(tmp_path: Path) -> None:
    runner = FakeCommandRunner()
    path = tmp_path / "example.org.zone"
    path.write_text("old\n")
    path.chmod(0o600)
    ZoneApplier(runner).write(path, "example.org", "new\n", check=True, mode=0o640, group=None)
    assert path.read_text() == "new\n"
    assert path.stat().st_mode & 0o777 == 0o640
    [(tool, quiet, zone, candidate)] = runner.calls
    assert (tool, quiet, zone) == ("named-checkzone", "-q", "example.org")
    assert Path(candidate).parent == tmp_path  # the temporary file beside it, checked before the rename
    assert candidate != str(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["example.org.zone"]


def test_a_refused_zone_keeps_the_old_file_or_writes_none(tmp_path: Path) -> None:
    path = tmp_path / "example.org.zone"
    written = re.escape(f"no file is written to {path} until it passes: ")
    with pytest.raises(ApplyError, match=f"{written}.*has no address records"):
        ZoneApplier(_refusing()).write(path, "example.org", "new\n", check=True, mode=0o644, group=None)
    assert list(tmp_path.iterdir()) == []
    path.write_text("old\n")
    with pytest.raises(ApplyError, match=r"fails named-checkzone, the old zone stays: "):
        ZoneApplier(_refusing()).write(path, "example.org", "new\n", check=True, mode=0o644, group=None)
    assert path.read_text() == "old\n"
    unchecked = ZoneApplier(_refusing())
    unchecked.write(path, "example.org", "new\n", check=False, mode=0o644, group=None)  # output.check: false
    assert (path.read_text(), unchecked.runner.calls) == ("new\n", [])  # type: ignore[attr-defined]


def test_permissions_are_put_back_and_an_unknown_group_is_named(tmp_path: Path) -> None:
    path = tmp_path / "example.org.zone"
    path.write_text("zone\n")
    path.chmod(0o600)
    applier = ZoneApplier(FakeCommandRunner())
    applier.permit(path, "example.org", 0o644, None)
    assert path.stat().st_mode & 0o777 == 0o644
    assert zone_group(None) is None
    assert zone_group("0") == 0
    with pytest.raises(ApplyError, match=r"output\.group no-such-group is not a group on this machine"):
        applier.permit(path, "example.org", 0o644, "no-such-group")
    with pytest.raises(ApplyError, match=r"cannot set the permissions of zone example\.org"):
        applier.permit(tmp_path / "gone.zone", "example.org", 0o644, None)


def test_an_after_change_command_that_fails_is_an_apply_error() -> None:
    argv = ("rndc", "reload")
    runner = FakeCommandRunner({argv: CommandResult(argv, 1, b"", b"rndc: connect failed: 127.0.0.1#953")})
    with pytest.raises(ApplyError, match=r"the afterChange command failed: .*connect failed"):
        ZoneApplier(runner).after_change(list(argv))
    assert runner.calls == [argv]
