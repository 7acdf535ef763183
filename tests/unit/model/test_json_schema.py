"""JSON Schemas: generated from the models, committed, and true to the example documents."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from reconciler.loading.yaml_reader import read_yaml
from reconciler.model import KINDS
from tests.conftest import EXAMPLE, REPO, CliResult

SCHEMAS = REPO / "schemas"


def _plain(value: Any) -> Any:
    """What an editor's YAML server sees: dates are strings."""
    return json.loads(json.dumps(value, default=str))


def _examples() -> list[tuple[Path, int, Any]]:
    return [
        (path, document.index, document.data)
        for path in sorted(EXAMPLE.rglob("*.yaml"))
        for document in read_yaml(path.read_text())
        if document.data is not None
    ]


def test_committed_schemas_are_fresh(cli: Callable[..., CliResult]) -> None:
    """reconciler schema --check passes on the committed files."""
    result = cli("schema", "--check", "--dir", SCHEMAS)
    assert result.code == 0, result.out


def test_check_detects_a_stale_schema(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    """--check exits 1 and names the file when a schema differs from the models; writing fixes it."""
    assert cli("schema", "--dir", tmp_path).code == 0
    (tmp_path / "TCPProxy.schema.json").write_text("{}\n")
    stale = cli("schema", "--check", "--dir", tmp_path)
    assert stale.code == 1
    assert "TCPProxy.schema.json" in stale.out
    assert cli("schema", "--dir", tmp_path).code == 0
    assert cli("schema", "--check", "--dir", tmp_path).code == 0


@pytest.mark.parametrize(
    ("path", "index", "document"), _examples(), ids=lambda v: str(v)[-40:] if isinstance(v, Path) else ""
)
def test_examples_validate_against_the_schemas(path: Path, index: int, document: Any) -> None:
    """Every example document is valid for its kind's schema and for the any-kind schema."""
    for name in (document["kind"], "desired-state"):
        schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
        errors = [e.message for e in validator.iter_errors(_plain(document))]
        assert not errors, f"{path}#{index}: {errors}"


def test_examples_point_editors_at_the_schema() -> None:
    """Every example file starts with a yaml-language-server line naming an existing schema."""
    for path in sorted(EXAMPLE.rglob("*.yaml")):
        first = path.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
        target = (path.parent / first.split("=", 1)[1]).resolve()
        assert target.exists(), f"{path}: {target}"


def test_schemas_refuse_unknown_fields() -> None:
    """The schemas are strict like the models: a misspelt field is flagged in the editor too."""
    schema = json.loads((SCHEMAS / "EgressAllowList.schema.json").read_text())
    document = {
        "apiVersion": "reconciler/v1",
        "kind": "EgressAllowList",
        "metadata": {"name": "a"},
        "spec": {"entrys": []},
    }
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(document))
    assert set(KINDS) | {"desired-state"} == {p.name.removesuffix(".schema.json") for p in SCHEMAS.glob("*.json")}
