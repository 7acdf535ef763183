"""The node's status document as text for a terminal (``reconciler status``, ``apply --once``, ``run --once``),
and the edges of its EdgeNetworks as CSV (``reconciler status --format csv``, the old tool's edge list)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

EDGE_COLUMNS = ("network", "edge", "tier", "live", "mode", "last", "average", "comment", "error")


def _condition(condition: Mapping[str, str]) -> str:
    line = f"{condition['type']}={condition['status']} {condition['reason']}"
    return f"{line}: {condition['message']}" if condition.get("message") else line


def _problem(problem: Mapping[str, str]) -> str:
    parts = [problem["severity"], problem["location"], problem["resource"], problem["path"], problem["message"]]
    return ": ".join(part for part in parts if part)


def _apps(apps: Mapping[str, Any]) -> list[str]:
    """What a proxy runs: each app's listeners, then its targets with weight and health."""
    lines = []
    for key, app in sorted(apps.items()):
        listen = ", ".join(app.get("listen", [])) or "nothing"
        lines.append(f"    app {key}: listening on {listen}")
        for target in app.get("targets", []):
            health = target.get("health", "unknown")
            reason = f" ({target['reason']})" if target.get("reason") else ""
            via = f" via {target['resolved']}" if target.get("resolved") not in (None, target["address"]) else ""
            lines.append(f"      {target['address']} weight {target.get('weight', 1)}{via}: {health}{reason}")
    return lines


def render_status_text(document: Mapping[str, Any]) -> str:
    source = f"branch {document['branch']}" if document.get("branch") else "a folder (no branch)"
    lines = [
        f"node {document['node']}: desired state from {source}",
        f"  applied revision:   {document['lastAppliedRevision'] or '-'}",
        f"  attempted revision: {document['lastAttemptedRevision'] or '-'}",
    ]
    lines += [f"  {_condition(c)}" for c in document["conditions"]]
    lines += [f"  {_problem(p)}" for p in document["problems"]]
    if document.get("problemsNotShown"):
        lines.append(f"  ... and {document['problemsNotShown']} more (reconciler validate lists them all)")
    publish = document.get("statusPublish")
    if publish and not publish.get("ok", True):
        lines.append(f"  status publish failing ({publish['failuresInARow']} in a row): {publish['error']}")
    for resource in document.get("resources", []):
        ready = next((c for c in resource["conditions"] if c["type"] == "Ready"), None)
        if ready is None:
            state = "Ready=?"
        elif ready["reason"] == "NotEnforced":
            state = "not enforced by this agent yet (validated only)"
        else:
            state = _condition(ready)
        lines.append(f"  {resource['kind']}/{resource['name']}: {state}")
        lines += _apps(resource.get("observations", {}).get("apps", {}))
    return "\n".join(lines)


def render_edges_csv(document: Mapping[str, Any]) -> str:
    """One row per edge of every EdgeNetwork on the node, in the order of the desired state; times in seconds,
    empty before the first probe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EDGE_COLUMNS)
    for resource in document.get("resources", []):
        if resource["kind"] != "EdgeNetwork":
            continue
        observations = resource.get("observations", {})
        timings = observations.get("timings", {})
        for edge in observations.get("edges", []):
            row = {"network": resource["name"], "edge": edge["host"], **timings.get(edge["host"], {}), **edge}
            row["live"] = "true" if edge.get("live") else "false"
            writer.writerow([row.get(column, "") for column in EDGE_COLUMNS])
    return out.getvalue()


def render_fleet_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """One line per node: name, applied revision, Ready, age, and STOPPED or STALE when it is."""
    if not rows:
        return "no node has published a status"
    width = max(len(str(row["node"])) for row in rows)
    lines = []
    for row in rows:
        ready = next((c for c in row["conditions"] if c.get("type") == "Ready"), None)
        state = f"Ready={ready['status']} {ready['reason']}" if ready else "Ready=?"
        revision = (row["appliedRevision"] or "-")[:12]
        mark = "  STOPPED" if row.get("stopped") else "  STALE" if row["stale"] else ""
        lines.append(f"{row['node']:<{width}}  {revision:<12}  {state}  {row['ageSeconds']:.0f}s ago{mark}")
    stopped = sum(1 for row in rows if row.get("stopped"))
    stale_count = sum(1 for row in rows if row["stale"] and not row.get("stopped"))
    lines.append(f"{len(rows)} node(s), {stale_count} stale, {stopped} stopped")
    return "\n".join(lines)
