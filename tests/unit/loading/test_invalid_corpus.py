"""Every document in tests/data/invalid/ is refused with the file, line, field path and message it announces.

Each case file starts with ``# expect-path:`` and ``# expect-message:`` lines; the expected line is the one
marked ``# <-`` (or given by ``# expect-line:`` where a marker cannot be written, e.g. in a non-UTF-8 file).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import DATA, CliResult

CASES = sorted((DATA / "invalid").glob("*.yaml"))


def _expectations(raw: bytes) -> tuple[str, str, int]:
    headers: dict[str, str] = {}
    lines = raw.split(b"\n")
    for line in lines:
        if line.startswith(b"# expect-"):
            key, _, value = line.decode("ascii")[len("# expect-") :].partition(":")
            headers[key] = value.strip()
    if "line" in headers:
        expected_line = int(headers["line"])
    else:
        marked = [n for n, line in enumerate(lines, start=1) if line.rstrip().endswith(b"# <-")]
        assert len(marked) == 1, "a case marks exactly one line with '# <-'"
        expected_line = marked[0]
    return headers["path"], headers["message"], expected_line


def test_the_corpus_is_large_enough() -> None:
    """The issue asks for at least 40 invalid documents."""
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_invalid_document_is_located(case: Path, tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    """validate exits 1 and reports the announced problem at the marked line, with its field path."""
    path, fragment, line = _expectations(case.read_bytes())
    root = tmp_path / "tree"
    root.mkdir()
    shutil.copy(case, root / case.name)

    result = cli("validate", root, "--format", "json")

    assert result.code == 1
    report = result.json()
    assert report["valid"] is False
    errors = [p for p in report["problems"] if p["severity"] == "error"]
    matching = [p for p in errors if fragment in p["message"]]
    assert matching, f"no error mentions {fragment!r}: {errors}"
    problem = matching[0]
    assert problem["file"] == f"{root}/{case.name}"
    assert (problem["line"], problem["path"]) == (line, path), problem
    assert problem["column"] >= 1


PYDANTIC_WORDING = (
    "Input should",
    "String should",
    "Tuple should",
    "List should",
    "should have at least",
    "valid tuple",
)


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_no_message_leaks_pydantic_wording(case: Path, tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    """Operators read our words, not the validation library's."""
    root = tmp_path / "tree"
    root.mkdir()
    shutil.copy(case, root / case.name)
    problems = cli("validate", root, "--format", "json").json()["problems"]
    for problem in problems:
        assert not any(words in problem["message"] for words in PYDANTIC_WORDING), problem["message"]
