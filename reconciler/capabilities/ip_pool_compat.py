"""The old ipmanager's HTTP routes, kept for operators migrating from it: the same paths and JSON shapes, served
from the agent's API. The old tool ran one pool per process; here a node may run several, so ``?pool=NAME``
chooses one (it may be left out when the node has only one).

- ``GET /ping``: ``pong``;
- ``GET /api/config``: the old configuration object, filled from the pool's resource and its HealthStrategy;
- ``GET /api/ip/history``: ``{"AvailableIP": [...], "IPHistory": {ip: {"Port", "Addr", "Banned", "History",
  "Failure", "CoolDowns"}}}``, with each request as ``{"Time", "StatusCode", "ExgressKey", "Port"}``;
- ``POST /api/ip/renew``: starts a scan at once (the old tool scanned before answering) and answers ``Renewed``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from reconciler.health.registry import strategy_of
from reconciler.model import HealthStrategy, IPPool

if TYPE_CHECKING:
    from reconciler.capabilities.ip_pool import IPPoolCapability


def _time(at: float) -> str:
    """Go's encoding of a time.Time (RFC 3339, UTC here)."""
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def _minutes(seconds: float) -> int:
    return math.ceil(seconds / 60)


def old_config(pool: IPPool, strategy: HealthStrategy | None, api_port: str) -> dict[str, Any]:
    spec = pool.spec
    proxy = spec.proxy
    members = spec.members
    settings = strategy.spec.consecutive if strategy is not None else None
    return {
        "mode": "parse" if spec.accessLog.from_ == "start" else "serve",
        "debug": False,
        "fix_port": "",
        "probe_port": api_port,
        "proxy_port": str(next(iter(proxy.listen.ports))) if proxy is not None else "",
        "config_path": "",
        "next": proxy.next if proxy is not None else "",
        "scan_interval_min": _minutes(spec.scanInterval.total_seconds()),
        "access_log_path": spec.accessLog.path,
        "upstream_conf_path": members.nginxConf or (members.upstream.file if members.upstream else ""),
        "max_history_log_each_ip": spec.history,
        "max_cool_down_log_each_ip": 1,
        "cool_down_min": _minutes(settings.cooldown.total_seconds()) if settings is not None else 0,
        "dial_timeout": math.ceil(proxy.dialTimeout.total_seconds()) if proxy is not None else 0,
        "max_connection_timeout": (
            math.ceil(proxy.maxLifetime.total_seconds()) if proxy is not None and proxy.maxLifetime else 0
        ),
        "strategy": strategy.spec.type if strategy is not None else "",
        # ipmanager banned when the count exceeded consecutive_failure: the value it needs to ban as we do
        "consecutive_failure": settings.banning - 1 if settings is not None else 0,
    }


def old_history(capability: IPPoolCapability, name: str) -> dict[str, Any]:
    state = capability.states[name]
    resource = state.resource
    strategy = capability.strategies.get(resource.spec.strategy) if resource is not None else None
    settings = strategy.spec.consecutive if strategy is not None else None
    cooldown = settings.cooldown.total_seconds() if settings is not None else 0.0
    ports = {member.ip: str(member.port) for member in state.members}
    available: list[str] = []
    history: dict[str, Any] = {}
    for ip in sorted(state.health):
        health = state.health[ip]
        port = ports.get(ip, "")
        if health.verdict.available:
            available.append(ip)
        rule = strategy_of(health.state)
        # the old tool had the consecutive rule only: its cool-downs are that rule's bans
        until = rule.cooldown_until(health.state) if rule.type == "consecutive" else None
        history[ip] = {
            "Port": port,
            "Addr": ip,
            "Banned": not health.verdict.available,
            "History": [
                {"Time": _time(at), "StatusCode": str(status), "ExgressKey": "", "Port": port}
                for status, at in health.history
            ],
            "Failure": rule.in_a_row(health.state),
            "CoolDowns": [[_time(until - cooldown), _time(until)]] if until is not None else [],
        }
    return {"AvailableIP": available, "IPHistory": history}


def compat_routes(capability: IPPoolCapability, api_port: str) -> Sequence[web.RouteDef]:
    def chosen(request: web.Request) -> str | web.Response:
        names = sorted(capability.states)
        wanted = request.query.get("pool")
        if wanted is None and len(names) == 1:
            return names[0]
        if wanted is not None and wanted in capability.states:
            return wanted
        problem = f"no IP pool {wanted} on this node" if wanted else "this node runs several pools: add ?pool=NAME"
        return web.json_response({"error": problem, "pools": names}, status=404 if wanted else 400)

    async def ping(_: web.Request) -> web.Response:
        return web.Response(text="pong")

    async def config(request: web.Request) -> web.Response:
        name = chosen(request)
        if isinstance(name, web.Response):
            return name
        resource = capability.states[name].resource
        if resource is None:
            return web.json_response({"error": f"IP pool {name} has not been scanned yet"}, status=503)
        return web.json_response(old_config(resource, capability.strategies.get(resource.spec.strategy), api_port))

    async def history(request: web.Request) -> web.Response:
        name = chosen(request)
        if isinstance(name, web.Response):
            return name
        return web.json_response(old_history(capability, name))

    async def renew(request: web.Request) -> web.Response:
        name = chosen(request)
        if isinstance(name, web.Response):
            return name
        if not capability.passes.request(IPPool.KIND, name):
            return web.json_response({"error": "no agent runs passes here"}, status=503)
        return web.Response(text="Renewed")

    return (
        web.get("/ping", ping),
        web.get("/api/config", config),
        web.get("/api/ip/history", history),
        web.post("/api/ip/renew", renew),
    )
