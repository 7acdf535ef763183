"""The HTTP API over a stub handle: routes, formats, and the webhook's signature check."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from reconciler.api.server import build_app, signature_valid
from reconciler.planning.plan import Action, Change, Plan, TargetPlan, Whole

SECRET = "It's a Secret to Everybody"


@dataclass
class Handle:
    webhook_secret: str | None = SECRET
    ready: bool = False
    syncs: list[str] = field(default_factory=list)
    webhooks: list[str] = field(default_factory=list)
    approvals: list[str] = field(default_factory=list)

    def is_ready(self) -> bool:
        return self.ready

    def status_document(self) -> dict[str, Any]:
        return {"node": "gw-1"}

    def config_document(self) -> dict[str, Any]:
        return {"settings": {"repo": "file:///x"}}

    def current_plan(self) -> Plan:
        change = Change("203.0.113.7", Action.ADD, after="203.0.113.7")
        return Plan("abc", "gw-1", (TargetPlan("EgressAllowList", "a", Whole("set:a"), 0, (change,)),))

    async def metrics_exposition(self) -> bytes:
        return b"reconciler_up 1\n"

    def trigger_sync(self, reason: str) -> None:
        self.syncs.append(reason)

    def count_webhook(self, result: str) -> None:
        self.webhooks.append(result)

    def approve_plan(self, checksum: str) -> list[str]:
        self.approvals.append(checksum)
        return ["TCPProxy/big"] if checksum == "held" else []


def _with_client(handle: Handle, body: Callable[[TestClient[Any, Any]], Awaitable[None]]) -> None:
    async def run() -> None:
        async with TestClient(TestServer(build_app(handle))) as client:
            await body(client)

    asyncio.run(run())


def _sign(payload: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), payload, hashlib.sha256).hexdigest()


def test_signature_check_matches_githubs_example() -> None:
    """GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!"."""
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature_valid(SECRET, b"Hello, World!", expected)
    assert not signature_valid(SECRET, b"Hello, World?", expected)
    assert not signature_valid(SECRET, b"Hello, World!", None)
    assert not signature_valid(SECRET, b"Hello, World!", expected.replace("sha256=", "sha1="))


def test_health_readiness_status_config_metrics() -> None:
    """healthz always answers; readyz is 503 until ready; the others serve the handle's documents."""
    handle = Handle()

    async def body(client: TestClient[Any, Any]) -> None:
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status == 503
        handle.ready = True
        assert (await client.get("/readyz")).status == 200
        assert await (await client.get("/status")).json() == {"node": "gw-1"}
        assert (await (await client.get("/config")).json())["settings"]["repo"] == "file:///x"
        assert await (await client.get("/metrics")).text() == "reconciler_up 1\n"

    _with_client(handle, body)


def test_plan_formats() -> None:
    """/plan is JSON by default, Markdown or text on request, 400 for anything else."""

    async def body(client: TestClient[Any, Any]) -> None:
        plan = json.loads(await (await client.get("/plan")).text())
        assert plan["changes"] == 1
        markdown = await (await client.get("/plan?format=markdown")).text()
        assert markdown.startswith("### reconciler plan for `gw-1`")
        assert (await client.get("/plan?format=xml")).status == 400

    _with_client(Handle(), body)


def test_webhook_needs_a_valid_signature() -> None:
    """Unsigned or wrongly signed: 401 and no sync; correctly signed: 202 and one sync."""
    handle = Handle()
    payload = b'{"ref": "refs/heads/main"}'

    async def body(client: TestClient[Any, Any]) -> None:
        assert (await client.post("/hooks/git", data=payload)).status == 401
        wrong = {"X-Hub-Signature-256": _sign(payload + b" ")}
        assert (await client.post("/hooks/git", data=payload, headers=wrong)).status == 401
        assert handle.syncs == []
        right = {"X-Hub-Signature-256": _sign(payload)}
        assert (await client.post("/hooks/git", data=payload, headers=right)).status == 202
        assert handle.syncs == ["webhook"]

    _with_client(handle, body)
    assert handle.webhooks == ["unauthorized", "unauthorized", "accepted"]


def test_webhook_without_a_secret_is_off() -> None:
    """No RECONCILER_WEBHOOK_SECRET: the route does not exist (404), whatever is sent."""
    handle = Handle(webhook_secret=None)

    async def body(client: TestClient[Any, Any]) -> None:
        assert (await client.post("/hooks/git", data=b"{}")).status == 404

    _with_client(handle, body)
    assert handle.syncs == []


def test_plan_approval_is_signed_and_names_a_held_plan() -> None:
    """POST /plan/approve: unsigned 401; a body without a checksum 400; an unknown checksum 409; a held one 202."""
    handle = Handle()

    def signed(document: bytes) -> dict[str, str]:
        return {"X-Hub-Signature-256": _sign(document)}

    async def body(client: TestClient[Any, Any]) -> None:
        held = b'{"checksum": "held"}'
        assert (await client.post("/plan/approve", data=held)).status == 401
        assert (await client.post("/plan/approve", data=b"{}", headers=signed(b"{}"))).status == 400
        other = b'{"checksum": "other"}'
        refused = await client.post("/plan/approve", data=other, headers=signed(other))
        assert refused.status == 409
        assert "GET /plan shows the current one" in (await refused.json())["error"]
        accepted = await client.post("/plan/approve", data=held, headers=signed(held))
        assert accepted.status == 202
        assert await accepted.json() == {"approved": ["TCPProxy/big"]}

    _with_client(handle, body)
    assert handle.approvals == ["other", "held"]
