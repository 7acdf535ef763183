"""Plan renderings: text for a terminal, Markdown for a pull-request comment, JSON for tools."""

from __future__ import annotations

import json

from reconciler.planning.plan import Action, Plan

_SIGN = {Action.ADD: "+", Action.CHANGE: "~", Action.REMOVE: "-"}


def _value(before: str | None, after: str | None, action: Action) -> str:
    if action is Action.CHANGE:
        return f"{before} -> {after}"
    return (after if action is Action.ADD else before) or ""


def render_text(plan: Plan) -> str:
    head = f"plan for node {plan.node} at {plan.revision[:12] or '-'}: {plan.changes} change(s)"
    lines = [head]
    for target in plan.targets:
        if not target.changes:
            continue
        lines.append(f"  {target.resource} {target.target} ({target.size} now)")
        for change in target.changes:
            value = _value(change.before, change.after, change.action)
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
            value = _value(change.before, change.after, change.action).replace("|", "\\|")
            lines.append(f"| {target.resource} | {target.target} | {_SIGN[change.action]} | `{change.key}` | {value} |")
    lines += ["", f"{plan.changes} change(s); plan checksum `{plan.checksum[:16]}`"]
    return "\n".join(lines) + "\n"


def render_json(plan: Plan) -> str:
    return json.dumps({**plan.as_dict(), "checksum": plan.checksum, "changes": plan.changes}, indent=2)


RENDERERS = {"text": render_text, "markdown": render_markdown, "json": render_json}
