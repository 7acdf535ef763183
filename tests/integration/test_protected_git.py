"""validate --base against a real git repository: protected entries may not be removed or weakened."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult

pytestmark = pytest.mark.integration

BASE = """apiVersion: reconciler/v1
kind: EgressAllowList
metadata: {name: partners}
spec:
  entries:
    - domain: api.partner.example
      ports: [443]
      protocol: tcp
      protected: true
    - cidr: 198.51.100.0/28
      protected: true
    - ip: 203.0.113.7
"""


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose first commit holds BASE under desired-state/egress/partners.yaml."""
    assert shutil.which("git"), "git is a Debian package of the project (debian-packages.txt)"
    root = tmp_path / "repo"
    (root / "desired-state" / "egress").mkdir(parents=True)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.email", "test@example.invalid")
    _git(root, "config", "user.name", "test")
    (root / "desired-state" / "egress" / "partners.yaml").write_text(BASE)
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "base")
    _git(root, "tag", "base")
    return root


def _commit(repo: Path, text: str | None) -> None:
    path = repo / "desired-state" / "egress" / "partners.yaml"
    if text is None:
        path.unlink()
    else:
        path.write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "change")


def _errors(result: CliResult) -> list[dict[str, object]]:
    return [p for p in result.json()["problems"] if p["severity"] == "error"]


def test_unchanged_protected_entries_pass(repo: Path, cli: Callable[..., CliResult]) -> None:
    """Changing an unprotected entry and widening a protected one is allowed."""
    _commit(repo, BASE.replace("203.0.113.7", "203.0.113.8").replace("ports: [443]", "ports: [443, 8443]"))
    result = cli("validate", repo / "desired-state", "--base", "base", "--format", "json")
    assert result.code == 0, result.out


def test_removal_is_refused(repo: Path, cli: Callable[..., CliResult]) -> None:
    """Removing a protected entry names the entry, the file and the base revision."""
    _commit(repo, BASE.replace("    - cidr: 198.51.100.0/28\n      protected: true\n", ""))
    result = cli("validate", repo / "desired-state", "--base", "base", "--format", "json")
    assert result.code == 1
    [error] = _errors(result)
    assert error["file"] == f"{repo}/desired-state/egress/partners.yaml"
    assert error["path"] == "spec.entries"
    assert error["line"] == 5
    assert "protected entry cidr 198.51.100.0/28 (at base in desired-state/egress/partners.yaml:10) was removed" in str(
        error["message"]
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (("ports: [443]", "ports: [8443]"), "ports narrowed from 443 to 8443"),
        (("protocol: tcp", "protocol: udp"), "protocol changed from tcp to udp"),
        (("      protocol: tcp\n      protected: true\n", "      protocol: tcp\n"), "'protected' was dropped"),
        (
            ("      protected: true\n    - cidr", "      protected: true\n      expires: 2027-01-01\n    - cidr"),
            "expiry",
        ),
    ],
)
def test_weakening_is_refused(repo: Path, cli: Callable[..., CliResult], change: tuple[str, str], reason: str) -> None:
    """Narrowed ports, a changed protocol, a dropped 'protected' or a new expiry are refused at the entry."""
    _commit(repo, BASE.replace(*change))
    result = cli("validate", repo / "desired-state", "--base", "base", "--format", "json")
    assert result.code == 1
    [error] = _errors(result)
    assert error["path"] == "spec.entries[0]"
    assert error["line"] == 6
    assert "protected entry domain api.partner.example" in str(error["message"])
    assert reason in str(error["message"])


def test_removing_the_whole_list_is_refused(repo: Path, cli: Callable[..., CliResult]) -> None:
    """Deleting the file reports each protected entry at its old place."""
    _commit(repo, None)
    result = cli("validate", repo / "desired-state", "--base", "base", "--format", "github")
    assert result.code == 1
    lines = [line for line in result.out.splitlines() if line.startswith("::error")]
    assert len(lines) == 2
    assert lines[0].startswith("::error file=desired-state/egress/partners.yaml,line=6,")


def test_unknown_revision_is_a_usage_error(repo: Path, cli: Callable[..., CliResult]) -> None:
    """A base that does not exist exits 2 and says so."""
    result = cli("validate", repo / "desired-state", "--base", "origin/nope")
    assert result.code == 2
    assert "unknown revision 'origin/nope'" in result.err
