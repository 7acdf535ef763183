"""Plan renderings: text for a terminal, Markdown for a pull-request comment, JSON for tools."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from reconciler.planning.plan import Action, Change, Plan

_SIGN = {Action.ADD: "+", Action.CHANGE: "~", Action.REMOVE: "-"}


def _changed_fields(before: Any, after: Any, prefix: str = "") -> list[str]:
    """``field: old -> new`` for each field that differs between two dataclasses of one type (nested too)."""
    if not (dataclasses.is_dataclass(before) and type(before) is type(after)):
        return [f"{prefix}{before} -> {after}"] if before != after else []
    shown = []
    for item in dataclasses.fields(before):
        old, new = getattr(before, item.name), getattr(after, item.name)
        if dataclasses.is_dataclass(old) and type(old) is type(new):
            shown += _changed_fields(old, new, f"{prefix}{item.name}.")
        elif old != new:
            shown.append(f"{prefix}{item.name}: {old} -> {new}")
    return shown


def _value(change: Change[Any]) -> str:
    """What changes, in words; empty when the key already says it all (``+ listen 127.0.0.1:80``). A change of
    structured value (a weight, an app's settings) names only the fields that differ."""
    before, after = change.shown_before, change.shown_after
    if change.action is Action.CHANGE:
        old, new = change.before, change.after
        if dataclasses.is_dataclass(old) and type(old) is type(new):
            return ", ".join(_changed_fields(old, new))
        return f"{before} -> {after}"
    value = (after if change.action is Action.ADD else before) or ""
    return "" if change.key.endswith(value) else value


def render_text(plan: Plan) -> str:
    head = f"plan for node {plan.node} at {plan.revision[:12] or '-'}: {plan.changes} change(s)"
    lines = [head]
    for target in plan.targets:
        if not target.changes:
            continue
        lines.append(f"  {target.resource} {target.target} ({target.size} now)")
        for change in target.changes:
            value = _value(change)
            lines.append(f"    {_SIGN[change.action]} {change.key}" + (f": {value}" if value else ""))
    if plan.empty:
        lines.append("  no changes")
    return "\n".join(lines)


def render_markdown(plan: Plan) -> str:
    lines = [f"### reconciler plan for `{plan.node}` at `{plan.revision[:12] or '-'}`", ""]
    if plan.empty:
        lines.append("No changes.")
        return "\n".join(lines) + "\n"
    lines += ["| resource | target | | member | value |", "|---|---|---|---|---|"]
    for target in plan.targets:
        for change in target.changes:
            value = _value(change).replace("|", "\\|")
            lines.append(f"| {target.resource} | {target.target} | {_SIGN[change.action]} | `{change.key}` | {value} |")
    lines += ["", f"{plan.changes} change(s); plan checksum `{plan.checksum[:16]}`"]
    return "\n".join(lines) + "\n"


def render_json(plan: Plan) -> str:
    document = plan.as_dict()
    for shown, target in zip(document["targets"], plan.targets, strict=True):
        if target.payload:
            shown["payload"] = target.payload
    return json.dumps({**document, "checksum": plan.checksum, "changes": plan.changes}, indent=2)


RENDERERS = {"text": render_text, "markdown": render_markdown, "json": render_json}
