"""HTTP routes on the agent's event loop (aiohttp), over a small handle the agent provides.

``POST /hooks/git`` accepts GitHub's ``X-Hub-Signature-256`` (HMAC-SHA256 of the body with the shared secret);
anything unsigned or wrongly signed gets 401 and triggers nothing. ``POST /plan/approve`` (``{"checksum": ...}``)
lets a plan the safety gate holds through once, signed the same way. Without a configured secret both are 404.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from aiohttp import web

from reconciler.planning.plan import Plan
from reconciler.render.plan import RENDERERS

log = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 1 << 20


class AgentHandle(Protocol):
    webhook_secret: str | None

    def is_ready(self) -> bool: ...

    def status_document(self) -> dict[str, Any]: ...

    def config_document(self) -> dict[str, Any]: ...

    def current_plan(self) -> Plan: ...

    async def metrics_exposition(self) -> bytes: ...

    def trigger_sync(self, reason: str) -> None: ...

    def count_webhook(self, result: str) -> None: ...

    def approve_plan(self, checksum: str) -> list[str]: ...


def signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256="))


def build_app(agent: AgentHandle, routes: Sequence[web.RouteDef] = ()) -> web.Application:
    """The agent's routes and the capabilities' own (``routes``)."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        ready = agent.is_ready()
        return web.json_response({"ready": ready}, status=200 if ready else 503)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=await agent.metrics_exposition(), content_type="text/plain", charset="utf-8")

    async def status(_: web.Request) -> web.Response:
        return web.json_response(agent.status_document())

    async def config(_: web.Request) -> web.Response:
        return web.json_response(agent.config_document())

    async def plan(request: web.Request) -> web.Response:
        form = request.query.get("format", "json")
        if form not in RENDERERS:
            return web.json_response({"error": f"format must be one of {', '.join(RENDERERS)}"}, status=400)
        body = RENDERERS[form](agent.current_plan())
        content_type = {"json": "application/json", "markdown": "text/markdown"}.get(form, "text/plain")
        return web.Response(text=body, content_type=content_type)

    async def signed_body(request: web.Request, what: str) -> bytes | web.Response:
        """The body when signed with the shared secret; else the answer to give."""
        if agent.webhook_secret is None:
            agent.count_webhook("disabled")
            raise web.HTTPNotFound(text=f"{what} not configured (set RECONCILER_WEBHOOK_SECRET)")
        body = await request.content.read(MAX_WEBHOOK_BYTES + 1)
        if len(body) > MAX_WEBHOOK_BYTES or not signature_valid(
            agent.webhook_secret, body, request.headers.get("X-Hub-Signature-256")
        ):
            agent.count_webhook("unauthorized")
            log.warning("%s refused remote=%s", what, request.remote)
            return web.json_response({"error": "missing or invalid X-Hub-Signature-256"}, status=401)
        return body

    async def webhook(request: web.Request) -> web.Response:
        body = await signed_body(request, "webhook")
        if isinstance(body, web.Response):
            return body
        agent.count_webhook("accepted")
        agent.trigger_sync("webhook")
        return web.json_response({"accepted": True}, status=202)

    async def approve(request: web.Request) -> web.Response:
        body = await signed_body(request, "plan approval")
        if isinstance(body, web.Response):
            return body
        try:
            checksum = json.loads(body)["checksum"]
            if not isinstance(checksum, str):
                raise TypeError(checksum)
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": 'the body must be {"checksum": "<plan checksum>"}'}, status=400)
        approved = agent.approve_plan(checksum)
        if not approved:
            message = f"no plan held by the safety gate has checksum {checksum}; GET /plan shows the current one"
            return web.json_response({"error": message}, status=409)
        log.info("plan approved checksum=%s resources=%s remote=%s", checksum[:16], ",".join(approved), request.remote)
        return web.json_response({"approved": approved}, status=202)

    app = web.Application(client_max_size=MAX_WEBHOOK_BYTES + 1)
    app.add_routes(
        [
            web.get("/healthz", healthz),
            web.get("/readyz", readyz),
            web.get("/metrics", metrics),
            web.get("/status", status),
            web.get("/config", config),
            web.get("/plan", plan),
            web.post("/hooks/git", webhook),
            web.post("/plan/approve", approve),
            *routes,
        ]
    )
    return app


async def start(agent: AgentHandle, host: str, port: int, *, routes: Sequence[web.RouteDef] = ()) -> web.AppRunner:
    """Serve ``build_app(agent, routes)`` on host:port; the caller owns the runner and must ``cleanup()`` it."""
    runner = web.AppRunner(build_app(agent, routes), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("http api listening address=%s:%d", host, port)
    return runner
