"""How validation results are shown: text for people, JSON for tools, GitHub Actions annotations for PRs."""

from __future__ import annotations

import json
from collections.abc import Sequence

from reconciler.errors import Problem, Severity
from reconciler.model import DesiredState, EgressAllowList

FORMATS = ("text", "json", "github")


def summarize(state: DesiredState) -> list[str]:
    """One line per kind present: how many resources, and the allow-list entries they hold."""
    lines = []
    for kind in sorted({r.KIND for r in state}):
        resources = [r for r in state if kind == r.KIND]
        names = ", ".join(r.metadata.name for r in resources[:6]) + (", ..." if len(resources) > 6 else "")
        extra = ""
        if kind == EgressAllowList.KIND:
            entries = [e for r in state.of_kind(EgressAllowList) for e in r.spec.entries]
            extra = f"; {len(entries)} entries, {sum(e.protected for e in entries)} protected"
        lines.append(f"  {kind}: {len(resources)} ({names}{extra})")
    return lines


def _verdict(root: str, problems: Sequence[Problem], state: DesiredState | None, documents: int) -> list[str]:
    """The closing lines: valid or invalid with counts, and what a valid tree holds."""
    errors = sum(p.severity is Severity.ERROR for p in problems)
    warnings = len(problems) - errors
    if errors:
        return [f"{root}: invalid: {errors} error(s), {warnings} warning(s)"]
    lines = [f"{root}: valid: {documents} document(s), {warnings} warning(s)"]
    if state is not None:
        lines.extend(summarize(state))
    return lines


def format_text(root: str, problems: Sequence[Problem], state: DesiredState | None, documents: int) -> str:
    lines = [f"{p.severity.value}: {p}" for p in problems]
    return "\n".join(lines + _verdict(root, problems, state, documents))


def format_json(root: str, problems: Sequence[Problem], state: DesiredState | None, documents: int) -> str:
    errors = [p for p in problems if p.severity is Severity.ERROR]
    document = {
        "root": root,
        "valid": not errors,
        "documents": documents,
        "resources": {r.KIND: sorted(x.metadata.name for x in state if x.KIND == r.KIND) for r in state}
        if state is not None
        else {},
        "problems": [
            {
                "severity": p.severity.value,
                "file": p.file,
                "line": p.line,
                "column": p.column,
                "kind": p.kind,
                "name": p.name,
                "path": p.path,
                "message": p.message,
            }
            for p in problems
        ],
    }
    return json.dumps(document, indent=2)


def _escape(text: str, *, property_value: bool = False) -> str:
    """GitHub's workflow-command escaping (``%``, CR, LF; and ``:``/``,`` inside properties)."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def format_github(root: str, problems: Sequence[Problem], state: DesiredState | None, documents: int) -> str:
    lines = []
    for p in problems:
        title = f"{p.kind}/{p.name}" if p.kind else "desired state"
        message = f"{p.path}: {p.message}" if p.path else p.message
        lines.append(
            f"::{p.severity.value} file={_escape(p.file, property_value=True)},line={p.line},col={p.column},"
            f"title={_escape(title, property_value=True)}::{_escape(message)}"
        )
    return "\n".join(lines + _verdict(root, problems, state, documents))


FORMATTERS = {"text": format_text, "json": format_json, "github": format_github}
