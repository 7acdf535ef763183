"""What the HTTP API serves (``api.server.AgentHandle``): readiness, the status and config documents, the plan
and its approval, metrics, and the webhook's wake-up of the fetch loop."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from reconciler.agent.composition import AgentParts
from reconciler.agent.fetching import FetchLoop
from reconciler.agent.metrics import Metrics
from reconciler.planning.plan import Plan

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT = 5.0  # seconds a capability may take to read its metrics before a scrape (Prometheus: 10 s)


class HttpHandle:
    def __init__(self, parts: AgentParts, fetching: FetchLoop) -> None:
        self.parts = parts
        self.reconciler = parts.reconciler
        self.fetching = fetching
        self.webhook_secret = parts.settings.webhook_secret

    def is_ready(self) -> bool:
        return self.reconciler.ready

    def status_document(self) -> dict[str, Any]:
        """The node's status, with a False condition for each of the node's own troubles: StatusPublished while
        publishing fails (the status branch cannot carry the news that it cannot be reached) and StateSaved while
        the state file cannot be written. Shown here and in `reconciler status`."""
        publishing, store = self.parts.publishing, self.parts.store
        document = {**self.reconciler.status.as_dict(), "statusPublish": publishing.state()}
        troubles = [
            ("StatusPublished", "PublishFailing", publishing.error, f"{publishing.failures} failure(s) in a row"),
            ("StateSaved", "WriteFailing", store.error, "kept in memory until it can be written"),
            ("StateRestored", "Damaged", store.damaged, "until the next write of the state file"),
        ]
        document["conditions"] = [
            *document["conditions"],
            *(
                {"type": kind, "status": "False", "reason": reason, "message": f"{detail}: {error}"}
                for kind, reason, error, detail in troubles
                if error is not None
            ),
        ]
        return document

    def config_document(self) -> dict[str, Any]:
        desired = self.reconciler.desired
        resources = [r.model_dump(mode="json", by_alias=True) for r in desired] if desired is not None else []
        return {
            "settings": self.parts.settings.public(),
            "revision": self.reconciler.desired_revision,
            "resources": resources,
        }

    def current_plan(self) -> Plan:
        return self.reconciler.plan

    async def metrics_exposition(self) -> bytes:
        """What /metrics serves: each capability first reads what takes I/O (bounded, so a stuck read costs its
        own counters, not the scrape), then every collector runs on the loop from memory, and the text is made in
        a thread (the loop goes on meanwhile)."""
        capabilities = self.parts.capabilities
        results = await asyncio.gather(
            *(asyncio.wait_for(c.before_scrape(), SCRAPE_TIMEOUT) for c in capabilities.values()),
            return_exceptions=True,
        )
        for kind, result in zip(capabilities, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("metrics not read before the scrape kind=%s error=%r", kind, result)
        return await asyncio.to_thread(Metrics.render, self.parts.metrics.collect())

    def trigger_sync(self, reason: str) -> None:
        self.fetching.trigger(reason)

    def count_webhook(self, result: str) -> None:
        self.parts.metrics.webhook.labels(result).inc()

    def approve_plan(self, checksum: str) -> list[str]:
        return self.reconciler.approve(checksum)
