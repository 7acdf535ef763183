"""The status documents an agent publishes: ``status/<node>/agent.yaml`` and one file per resource.

Nothing in them changes unless the world or the desired state changes, so that publishing an unchanged status
makes no commit; the one exception is agent.yaml's ``heartbeat``, moved on every few minutes (``--status-heartbeat``)
so that a fleet view can tell a node that stopped from one that has nothing new to say.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML

from reconciler.errors import Problem
from reconciler.status.conditions import Condition

STATUS_API_VERSION = "reconciler/v1"


@dataclass(frozen=True, slots=True)
class ResourceStatus:
    kind: str
    name: str
    observed_revision: str
    conditions: tuple[Condition, ...]
    observations: Mapping[str, Any] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)  # beside the observations, except in git
    applied_revision: str | None = None  # its last pass that applied all it planned (None: none in this run yet)

    def as_dict(self, *, details: bool = True) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "observedRevision": self.observed_revision,
            "appliedRevision": self.applied_revision,
            "conditions": [c.as_dict() for c in self.conditions],
            "observations": {**self.observations, **self.details} if details else dict(self.observations),
        }


@dataclass(frozen=True, slots=True)
class NodeStatus:
    node: str
    branch: str
    applied_revision: str | None
    attempted_revision: str | None
    dry_run: bool
    conditions: tuple[Condition, ...]
    problems: tuple[Problem, ...] = ()
    resources: tuple[ResourceStatus, ...] = ()
    problems_not_shown: int = 0  # beyond the ones listed (``reconciler validate`` lists them all)

    def summary(self) -> dict[str, Any]:
        return {
            "apiVersion": STATUS_API_VERSION,
            "kind": "NodeStatus",
            "node": self.node,
            "branch": self.branch,
            "lastAppliedRevision": self.applied_revision,
            "lastAttemptedRevision": self.attempted_revision,
            "dryRun": self.dry_run,
            "conditions": [c.as_dict() for c in self.conditions],
            "problems": [_problem(p) for p in self.problems],
            "problemsNotShown": self.problems_not_shown,
        }

    def as_dict(self) -> dict[str, Any]:
        return {**self.summary(), "resources": [r.as_dict() for r in self.resources]}


def _problem(problem: Problem) -> dict[str, Any]:
    return {
        "severity": problem.severity.value,
        "location": f"{problem.file}:{problem.line}:{problem.column}",
        "resource": f"{problem.kind}/{problem.name}" if problem.kind else "",
        "path": problem.path,
        "message": problem.message,
    }


def _yaml(data: Mapping[str, Any]) -> bytes:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096  # messages stay on one line
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    stream = io.StringIO()
    yaml.dump(dict(data), stream)
    return stream.getvalue().encode()


def status_prefix(node: str) -> str:
    return f"status/{node}/"


def status_files(status: NodeStatus, *, heartbeat: str | None = None) -> dict[str, bytes]:
    """Path -> YAML content of every status file of the node; ``heartbeat`` (when the node last said it is
    alive, refreshed every few minutes only) in agent.yaml."""
    prefix = status_prefix(status.node)
    summary = status.summary() | ({"heartbeat": heartbeat} if heartbeat is not None else {})
    files = {f"{prefix}agent.yaml": _yaml(summary)}
    for resource in status.resources:
        document = {
            "apiVersion": STATUS_API_VERSION,
            "kind": "ResourceStatus",
            "node": status.node,
            **resource.as_dict(details=False),  # what changes at every observation makes no commit
        }
        files[f"{prefix}{resource.kind}/{resource.name}.yaml"] = _yaml(document)
    return files
