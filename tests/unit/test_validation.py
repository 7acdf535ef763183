"""Validation as CI and the console use it: an empty tree is a problem only when nothing else is wrong and it is
not allowed; every problem is reported sorted by place."""

from __future__ import annotations

from pathlib import Path

from reconciler.loading.loader import LoadOptions
from reconciler.testing import tree_of
from reconciler.validation import NO_DOCUMENTS, validate_path, validate_paths, validate_tree

LIST = """apiVersion: reconciler/v1
kind: EgressAllowList
metadata: {name: a}
spec:
  entries: [{ip: 203.0.113.10}]
"""


def test_an_empty_tree_is_a_problem_unless_allowed(tmp_path: Path) -> None:
    refused = validate_paths([tmp_path])
    assert [p.message for p in refused.errors] == [NO_DOCUMENTS]
    assert validate_paths([tmp_path], allow_empty=True).valid
    assert validate_path(tmp_path).valid  # the console's edits: an emptied tree is the protected check's to refuse


def test_an_empty_tree_with_other_errors_reports_only_those(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("kind: [\n")
    report = validate_paths([tmp_path])
    assert report.errors
    assert NO_DOCUMENTS not in [p.message for p in report.errors]


def test_problems_are_sorted_by_file_and_line() -> None:
    tree = tree_of({"b.yaml": LIST.replace("203.0.113.10", "10.0.0.1"), "a.yaml": "kind: Nothing\n"})
    report = validate_tree(tree, LoadOptions())
    assert not report.valid
    assert [p.sort_key for p in report.problems] == sorted(p.sort_key for p in report.problems)
    assert validate_tree(tree_of({"a.yaml": LIST}), LoadOptions()).valid
