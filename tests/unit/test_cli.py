"""The validate command: exit codes, output formats, summaries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.cli import main
from tests.conftest import ALLOW_LIST, EXAMPLE, CliResult

BAD = """apiVersion: reconciler/v1
kind: EgressAllowList
metadata: {name: partners}
spec:
  entries:
    - ip: 10.1.2.3
"""


def test_the_example_is_valid_and_summarised(cli: Callable[..., CliResult]) -> None:
    """Exit 0 and a line per kind with counts."""
    result = cli("validate", EXAMPLE)
    assert result.code == 0
    assert "valid: 12 document(s)" in result.out
    assert "EgressAllowList: 2 (partners, platform; 9 entries, 2 protected)" in result.out


def test_text_errors_name_file_line_column_kind_and_path(
    cli: Callable[..., CliResult], write_tree: Callable[[dict[str, str | bytes]], Path]
) -> None:
    """The text format is file:line:col: Kind/name: path: message."""
    root = write_tree({"egress/partners.yaml": BAD})
    result = cli("validate", root)
    assert result.code == 1
    assert (
        f"error: {root}/egress/partners.yaml:6:11: EgressAllowList/partners: spec.entries[0].ip: "
        "10.1.2.3 is an internal address (10.0.0.0/8): allow-lists reach the public internet only"
    ) in result.out


def test_github_annotations(
    cli: Callable[..., CliResult], write_tree: Callable[[dict[str, str | bytes]], Path]
) -> None:
    """--format github prints ::error annotations that GitHub shows on the pull request's lines."""
    root = write_tree({"partners.yaml": BAD})
    result = cli("validate", root, "--format", "github")
    assert result.code == 1
    assert result.out.splitlines()[0] == (
        f"::error file={root}/partners.yaml,line=6,col=11,title=EgressAllowList/partners::"
        "spec.entries[0].ip: 10.1.2.3 is an internal address (10.0.0.0/8): allow-lists reach the public internet only"
    )


def test_json_is_machine_readable(cli: Callable[..., CliResult]) -> None:
    """--format json lists resources by kind and every problem as an object."""
    report = cli("validate", EXAMPLE, "--format", "json").json()
    assert report["valid"] is True
    assert report["resources"]["HealthStrategy"] == ["consecutive-3", "fast-enough", "outlier"]
    assert report["problems"] == []


def test_usage_errors_exit_2(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    """A missing folder, an unknown option or a missing command is a usage error."""
    missing = cli("validate", tmp_path / "nope")
    assert missing.code == 2
    assert "does not exist" in missing.err
    assert cli("validate", "--format", "xml").code == 2
    assert cli().code == 2


def test_a_listen_port_out_of_range_is_refused(cli: Callable[..., CliResult]) -> None:
    """--listen 127.0.0.1:99999 was accepted and bound a random port; agent and console both refuse it now."""
    for command in (("run", "--repo", "file:///nowhere", "--node", "gw-1"), ("console", "--repo", "file:///nowhere")):
        for wrong in ("127.0.0.1:99999", "127.0.0.1:0", ":http"):
            refused = cli(*command, "--listen", wrong)
            assert refused.code == 2, (command, wrong, refused.err)
            assert "the port must be a number from 1 to 65535" in refused.err


def test_status_says_that_repo_needs_all_and_documents_the_status_branch(
    cli: Callable[..., CliResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``status --repo URL`` without --all read the state dir as if --repo were not there."""
    monkeypatch.delenv("RECONCILER_REPO", raising=False)
    alone = cli("status", "--repo", "file:///nowhere.git", "--state-dir", tmp_path)
    assert alone.code == 2
    assert "--repo is read with --all" in alone.err
    for command in ("status", "console"):
        assert main([command, "--help"]) == 0
        assert "the branch the agents publish" in capsys.readouterr().out, command


def test_base_outside_git_is_a_usage_error(
    cli: Callable[..., CliResult], write_tree: Callable[[dict[str, str | bytes]], Path]
) -> None:
    """--base needs a git repository around the tree."""
    root = write_tree({"a.yaml": "# empty\n"})
    result = cli("validate", root, "--base", "HEAD")
    assert result.code == 2
    assert "not inside a git repository" in result.err


def test_github_warnings_do_not_fail_and_are_counted(
    cli: Callable[..., CliResult], write_tree: Callable[[dict[str, str | bytes]], Path]
) -> None:
    """A duplicate entry is a ::warning annotation; the run exits 0 and its summary counts the warning."""
    root = write_tree({"partners.yaml": BAD.replace("10.1.2.3", "203.0.113.7") + "    - ip: 203.0.113.7\n"})
    result = cli("validate", root, "--format", "github")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].startswith(f"::warning file={root}/partners.yaml,line=7,col=7,")
    assert lines[1] == f"{root}: valid: 1 document(s), 1 warning(s)"


def test_validate_files_for_a_pre_commit_hook(
    cli: Callable[..., CliResult], write_tree: Callable[[dict[str, str | bytes]], Path]
) -> None:
    """Files are validated as given (references to the rest of the tree are not errors); a file's own errors are."""
    root = write_tree(
        {
            "pool.yaml": (EXAMPLE / "pools" / "egress-pool.yaml").read_text(),
            "bad.yaml": ALLOW_LIST.format(name="bad", entries="    - ip: 10.1.2.3"),
        }
    )
    good = cli("validate", root / "pool.yaml")
    assert good.code == 0, good.out
    both = cli("validate", root / "pool.yaml", root / "bad.yaml")
    assert both.code == 1
    assert "bad.yaml:6" in both.out


def test_validate_says_what_is_missing_or_empty(
    cli: Callable[..., CliResult], write_tree: Callable[[dict[str, str | bytes]], Path], tmp_path: Path
) -> None:
    missing = cli("validate", tmp_path / "nope")
    assert missing.code == 2
    assert f"{tmp_path / 'nope'} does not exist" in missing.err
    empty = write_tree({"README.md": "nothing"})
    assert cli("validate", empty).code == 1
    assert "no documents found (pass --allow-empty" in cli("validate", empty).out
    assert cli("validate", empty, "--allow-empty").code == 0


def test_validate_warns_about_entries_that_cannot_work(
    cli: Callable[..., CliResult], write_tree: Callable[[dict[str, str | bytes]], Path]
) -> None:
    entries = "\n".join(
        [
            "    - {ip: 203.0.113.1, expires: 2020-01-31}",
            "    - domain: localhost",
            "    - domain: intranet",
            "    - domain: printer.local",
            "    - domain: api.corp.internal",
            "    - domain: api.partner.example",
        ]
    )
    root = write_tree({"a.yaml": ALLOW_LIST.format(name="a", entries=entries)})
    result = cli("validate", root)
    assert result.code == 0
    assert "expired on 2020-01-31: the entry is no longer enforced" in result.out
    assert "localhost cannot be reached on the public internet (localhost is this machine)" in result.out
    assert "intranet cannot be reached on the public internet (a single-label name" in result.out
    assert "printer.local cannot be reached on the public internet (names under .local are not public)" in result.out
    assert "api.corp.internal cannot be reached" in result.out
    assert "api.partner.example" not in result.out
    assert "5 warning(s)" in result.out
