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
        observations = resource.get("observations", {})
        lines += _apps(observations.get("apps", {}))
        lines += _DETAILS.get(resource["kind"], _nothing)(observations)
    return "\n".join(lines)


def _nothing(observations: Mapping[str, Any]) -> list[str]:
    return []


def _gateway(observations: Mapping[str, Any]) -> list[str]:
    """Set sizes, each domain's addresses (and refused answers), entries not enforced as written."""
    sets = ", ".join(f"{name} {size}" for name, size in observations.get("sets", {}).items()) or "none"
    lines = [f"    sets: {sets}"]
    for domain, found in observations.get("domains", {}).items():
        addresses = ", ".join(a["address"] for a in found.get("addresses", [])) or "no address"
        refused = f"; refused {', '.join(found['refused'])}" if found.get("refused") else ""
        error = f"; {found['error']}" if found.get("error") else ""
        lines.append(f"    domain {domain}: {addresses}{refused}{error}")
    lines += [f"    entry {e['entry']}: {e['reason']}: {e['message']}" for e in observations.get("entries", [])]
    return lines


def _route(observations: Mapping[str, Any]) -> list[str]:
    hops = ", ".join(str(hop) for hop in observations.get("nextHops", [])) or "none"
    return [f"    {observations.get('routes', 0)} route(s) via {hops}"]


def _pool(observations: Mapping[str, Any]) -> list[str]:
    lines = []
    for member in observations.get("members", []):
        state = "available" if member.get("available") else "unavailable"
        reason = f" ({member['reason']})" if member.get("reason") else ""
        lines.append(f"    member {member['ip']}:{member['port']}: {state}{reason}")
    return lines + [f"    problem: {problem}" for problem in observations.get("problems", [])]


def _edges(observations: Mapping[str, Any]) -> list[str]:
    """Live set, then each edge: tier, live, mode, times (when shown), comment, error."""
    lines = [f"    live: {', '.join(observations.get('live', [])) or 'none'}"]
    if observations.get("selected"):
        lines.append(f"    selected, not yet published: {', '.join(observations['selected'])}")
    timings = observations.get("timings", {})
    for edge in observations.get("edges", []):
        parts = [edge.get("tier", "?"), "live" if edge.get("live") else "not live", edge.get("mode", "")]
        if edge["host"] in timings:
            times = timings[edge["host"]]
            parts.append(f"last {times['last']} s, mean {times['average']} s")
        parts += [f"# {edge['comment']}"] if edge.get("comment") else []
        parts += [f"error: {edge['error']}"] if edge.get("error") else []
        lines.append(f"    edge {edge['host']}: {', '.join(p for p in parts if p)}")
    return lines + [f"    problem: {problem}" for problem in observations.get("problems", [])]


_DETAILS = {"EgressGateway": _gateway, "EgressRoute": _route, "IPPool": _pool, "EdgeNetwork": _edges}


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
