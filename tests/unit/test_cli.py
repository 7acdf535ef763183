"""The validate command: exit codes, output formats, summaries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import EXAMPLE, CliResult

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
    assert "not a directory" in missing.err
    assert cli("validate", "--format", "xml").code == 2
    assert cli().code == 2


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
