"""Golden files: a renderer's whole output compared with a reviewed file under ``tests/data/golden/``.

Run with ``UPDATE_GOLDEN=1`` to write the files from the current output, then review the diff like any change.
A missing golden file fails in CI (``CI=true``) rather than being written silently.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from tests.conftest import DATA, IN_CI

GOLDEN = DATA / "golden"


def assert_golden(name: str, actual: str, folder: Path = GOLDEN) -> None:
    path = folder / name
    if os.environ.get("UPDATE_GOLDEN") == "1" or (not path.exists() and not IN_CI):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
        return
    if not path.exists():
        raise AssertionError(f"{path} is missing: run the test with UPDATE_GOLDEN=1 and review the file")
    expected = path.read_text()
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), str(path), "actual"))
        raise AssertionError(f"output differs from {path} (UPDATE_GOLDEN=1 rewrites it):\n{diff}")
