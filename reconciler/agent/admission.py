"""Which revision may become the desired state in force: a revision is admitted whole or not at all.

It is refused (and the last admitted one stays in force) when its signature is not allowed, its ``--path`` names
no folder, it cannot be read, it fails validation, or it would remove every resource this node enforces.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from reconciler.agent.metrics import Metrics
from reconciler.capabilities.registry import AnyCapability
from reconciler.errors import PathNotFoundError, Problem, ReconcilerError
from reconciler.loading.loader import FileCache, LoadOptions, LoadResult
from reconciler.model import DesiredState
from reconciler.model.common import Resource
from reconciler.settings import AgentSettings
from reconciler.system.source import DesiredStateSource
from reconciler.validation import validate_tree

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Admission:
    """What came of one revision: this node's desired state, or why it was refused (``stall``: reason, message)."""

    revision: str
    desired: DesiredState | None = None
    problems: tuple[Problem, ...] = ()
    stall: tuple[str, str] | None = None


class RevisionAdmission:
    def __init__(
        self,
        settings: AgentSettings,
        *,
        source: DesiredStateSource,
        capabilities: Mapping[str, AnyCapability],
        metrics: Metrics,
        load_options: LoadOptions,
    ) -> None:
        self.settings = settings
        self.source = source
        self.capabilities = capabilities
        self.metrics = metrics
        self.load_options = load_options
        self.file_cache = FileCache()  # files unchanged since the last revision are not parsed again

    def _refused(self, revision: str, reason: str, message: str, component: str) -> Admission:
        if component:
            self.metrics.errors.labels(component).inc()
        log.warning("revision refused revision=%s reason=%s", revision[:12], message)
        return Admission(revision, stall=(reason, message))

    async def admit(self, revision: str, in_force: DesiredState | None) -> Admission:
        """Read, validate and select ``revision`` for this node; ``in_force`` is the desired state it replaces."""
        if self.settings.verify_signatures:
            refusal = await asyncio.to_thread(self.source.verify, revision)
            if refusal is not None:
                return self._refused(revision, "UnsignedRevision", refusal, "signature")
        try:
            tree = await asyncio.to_thread(
                self.source.tree_at, revision, max_file_bytes=self.load_options.max_file_bytes
            )
        except PathNotFoundError as exc:
            return self._refused(revision, "PathNotFound", str(exc), "source")
        except ReconcilerError as exc:
            return self._refused(revision, "SourceUnreadable", str(exc), "source")
        report = await asyncio.to_thread(validate_tree, tree, self.load_options, cache=self.file_cache)
        result, errors = report.result, report.errors
        if errors:
            self.metrics.errors.labels("validation").inc()
            log.warning("revision invalid revision=%s errors=%d first=%s", revision[:12], len(errors), errors[0])
            stall = ("InvalidDesiredState", f"{len(errors)} error(s); first: {errors[0]}")
            return Admission(revision, problems=report.problems, stall=stall)
        return await self._select(revision, result, in_force)

    async def _select(self, revision: str, result: LoadResult, in_force: DesiredState | None) -> Admission:
        """A valid revision's resources for this node, with the files they name, unless it removes too much."""
        try:
            files = await asyncio.to_thread(self.source.files_at, revision)
        except ReconcilerError as exc:
            return replace(self._refused(revision, "SourceUnreadable", str(exc), "source"), problems=result.problems)
        desired = replace(result.state.for_node(self.settings.node), files_root=files)
        removal = self._removes_everything(desired, in_force, revision)
        if removal:
            return replace(self._refused(revision, "SafetyGate", removal, ""), problems=result.problems)
        log.info("revision loaded revision=%s resources=%d", revision[:12], len(desired))
        return Admission(revision, desired, result.problems)

    def _enforced(self, resources: Iterable[Resource]) -> list[str]:
        enforced = []
        for resource in resources:
            capability = self.capabilities.get(resource.KIND)
            if capability is not None and capability.enforces:
                enforced.append(f"{resource.KIND}/{resource.metadata.name}")
        return enforced

    def _removes_everything(self, desired: DesiredState, in_force: DesiredState | None, revision: str) -> str:
        """Why ``desired`` is held: it would remove every resource this node enforces (empty when it is not).
        A large removal of one target is the safety gate's to refuse; losing everything at once is refused the
        same way, unless forced or nothing was enforced before."""
        if self.settings.force or in_force is None or self._enforced(desired):
            return ""
        before = self._enforced(in_force)
        if not before:
            return ""
        shown = ", ".join(before[:5]) + (f" and {len(before) - 5} more" if len(before) > 5 else "")
        return (
            f"revision {revision[:12]} would remove every resource this node enforces ({len(before)}: {shown}): "
            "if that is intended, run once with --force"
        )
