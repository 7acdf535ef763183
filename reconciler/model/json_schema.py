"""JSON Schemas of the desired state, generated from the models (``reconciler schema`` writes ``schemas/``).

Editors use them through the ``# yaml-language-server: $schema=...`` line of each file; CI checks that the
committed files match what the models generate.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter

from reconciler.model import KINDS, AnyResource

DRAFT = "https://json-schema.org/draft/2020-12/schema"
ANY_KIND = "desired-state"


def _finish(schema: dict[str, Any], title: str, description: str) -> dict[str, Any]:
    return {"$schema": DRAFT, "title": title, "description": description, **schema}


def generate_schemas() -> dict[str, dict[str, Any]]:
    """File stem -> schema: one per kind, and ``desired-state`` for a document of any kind."""
    schemas = {
        kind: _finish(model.model_json_schema(), kind, (model.__doc__ or kind).strip()) for kind, model in KINDS.items()
    }
    any_kind = TypeAdapter(AnyResource).json_schema()
    schemas[ANY_KIND] = _finish(any_kind, "reconciler desired state", "Any reconciler/v1 resource document.")
    return schemas


def render_schema(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
