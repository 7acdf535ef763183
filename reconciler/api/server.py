"""HTTP routes on the agent's event loop (aiohttp), over a small handle the agent provides.

``POST /hooks/git`` accepts GitHub's ``X-Hub-Signature-256`` (HMAC-SHA256 of the body with the shared secret);
anything unsigned or wrongly signed gets 401 and triggers nothing. ``POST /plan/approve`` (``{"checksum": ...}``)
lets a plan the safety gate holds through once, signed the same way. Without a configured secret both are 404.
Bodies are read whole, however they arrive, within ``BODY_TIMEOUT``; over ``MAX_WEBHOOK_BYTES`` is 413.

The listener is bounded so that no client can starve the agent of descriptors or of its loop: at most
``Limits.connections`` connections at once (one more is closed at once), and a connection with no request in
progress for ``Limits.idle`` seconds (headers sent slowly, or never, or a keep-alive left open) is closed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import resource
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from reconciler.planning.plan import Plan
from reconciler.render.plan import RENDERERS

log = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 1 << 20
BODY_TIMEOUT = 10.0


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
        try:
            async with asyncio.timeout(BODY_TIMEOUT):
                body = await request.read()  # to its end, however it is segmented (client_max_size: 413 past it)
        except web.HTTPRequestEntityTooLarge:
            agent.count_webhook("too_large")
            return web.json_response({"error": f"the body is over {MAX_WEBHOOK_BYTES} bytes"}, status=413)
        except TimeoutError:
            agent.count_webhook("unauthorized")
            return web.json_response({"error": f"the body did not arrive within {BODY_TIMEOUT:g} s"}, status=408)
        if not signature_valid(agent.webhook_secret, body, request.headers.get("X-Hub-Signature-256")):
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

    app = web.Application(client_max_size=MAX_WEBHOOK_BYTES, middlewares=[_in_progress])
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


@dataclass
class Limits:
    """How much of the agent its HTTP listener may take."""

    connections: int = 256
    idle: float = 10.0  # seconds a connection may stay open with no request in progress
    open: dict[asyncio.BaseTransport, _Guard] = field(default_factory=dict)
    refused: int = 0


def descriptor_budget(reserve_share: float = 0.75, most: int = 1024, least: int = 16) -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit and return how many connections the API may hold: a
    quarter of the descriptors at most (the rest stay for git, files, logs, health checks and proxied clients),
    between ``least`` and ``most``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            log.warning("could not raise the descriptor limit soft=%d hard=%d", soft, hard)
    return max(least, min(most, int(soft * (1 - reserve_share))))


class _Guard(asyncio.Protocol):
    """aiohttp's protocol for one connection, behind the limits: refused when there are too many, closed when it
    stays without a request in progress for too long (aiohttp has no timeout for the first request's headers)."""

    def __init__(self, inner: Any, limits: Limits) -> None:
        self.inner, self.limits = inner, limits
        self.transport: asyncio.BaseTransport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.busy = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.inner.connection_made(transport)
        if len(self.limits.open) >= self.limits.connections:
            self.limits.refused += 1
            transport.abort()  # type: ignore[attr-defined]
            return
        self.limits.open[transport] = self
        self.idle()

    def idle(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = asyncio.get_running_loop().call_later(self.limits.idle, self._expire)

    def started(self) -> None:
        self.busy += 1
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def finished(self) -> None:
        self.busy -= 1
        if self.busy == 0 and self.transport is not None and not self.transport.is_closing():
            self.idle()

    def _expire(self) -> None:
        if self.busy == 0 and self.transport is not None:
            self.transport.abort()  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        result: bool | None = self.inner.eof_received()
        return result

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.transport is not None:
            self.limits.open.pop(self.transport, None)
        self.inner.connection_lost(exc)


_LIMITS = web.AppKey("limits", Limits)


@web.middleware
async def _in_progress(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """A request being handled keeps its connection from the idle timer."""
    limits = request.app.get(_LIMITS)
    guard = limits.open.get(request.transport) if limits is not None and request.transport is not None else None
    if guard is None:
        return await handler(request)
    guard.started()
    try:
        return await handler(request)
    finally:
        guard.finished()


@dataclass
class Listener:
    """The agent's API, served; ``close()`` stops it."""

    runner: web.AppRunner
    server: asyncio.Server
    limits: Limits

    async def cleanup(self) -> None:
        self.server.close()
        await self.runner.cleanup()


async def start(
    agent: AgentHandle,
    host: str,
    port: int,
    *,
    routes: Sequence[web.RouteDef] = (),
    limits: Limits | None = None,
) -> Listener:
    """Serve ``build_app(agent, routes)`` on host:port within ``limits``; the caller must ``cleanup()`` it."""
    limits = limits or Limits()
    app = build_app(agent, routes)
    app[_LIMITS] = limits
    runner = web.AppRunner(app, access_log=None, handle_signals=False, keepalive_timeout=limits.idle)
    await runner.setup()
    factory = runner.server
    assert factory is not None
    try:
        listening = await asyncio.get_running_loop().create_server(
            lambda: _Guard(factory(), limits), host, port, reuse_address=True, backlog=128
        )
    except OSError:
        await runner.cleanup()
        raise
    log.info("http api listening address=%s:%d connections=%d", host, port, limits.connections)
    return Listener(runner, listening, limits)
