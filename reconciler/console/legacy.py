"""The old egress tool's HTTP calls, for scripts that still make them (``--legacy-api LIST``): each is mapped onto
the same validated commit as the console's own API, on the allow-list LIST. Off unless asked for.

- ``GET /ping``: ``pong``;
- ``GET /api?add=X[&nonDeletable=true]``: X (a domain, an address or a network) added to LIST, protected when
  ``nonDeletable``; ``{"result": "added", "entry": X, "commit": ..., "pullRequest": ...}``;
- ``GET /api?del=X``: X removed; ``{"result": "deleted", ...}``; a protected entry answers 409;
- ``GET /show-all``: ``[{"entry": X, "nonDeletable": bool, "comment": ...}]`` for every entry of LIST.

Errors answer ``{"result": "error", "error": "..."}`` with the same status codes as the console's API. The old
tool had no authentication. Its edits are GETs, which any page can make a browser send (an ``<img>`` tag), so
they take a bearer token only, never the trusted proxy's header or a session cookie; ``/show-all`` needs a user
like every read (unless ``--public-read``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web

from reconciler.console.allow_list_edits import Entry
from reconciler.console.edits import EditError
from reconciler.console.service import RefusedEditError, entry_json

if TYPE_CHECKING:
    from reconciler.console.app import ConsoleApp


def kind_of(destination: str) -> str:
    """domain, ip or cidr, as the old tool guessed from the value."""
    try:
        ipaddress.ip_address(destination)
    except ValueError:
        pass
    else:
        return "ip"
    try:
        ipaddress.ip_network(destination, strict=False)
    except ValueError:
        return "domain"
    return "cidr" if "/" in destination else "domain"


def _error(message: str, status: int) -> web.Response:
    return web.json_response({"result": "error", "error": message}, status=status)


def legacy_routes(console_app: ConsoleApp, list_name: str) -> Sequence[web.RouteDef]:
    console = console_app.console

    async def ping(_: web.Request) -> web.Response:
        return web.Response(text="pong")

    async def api(request: web.Request) -> web.Response:
        added, deleted = request.query.get("add"), request.query.get("del")
        if (added is None) == (deleted is None):
            return _error("give add=X or del=X", 400)
        user = console_app.bearer_user(request)
        if user is None:  # an edit on a GET: a cross-site <img> sends the proxy's header and cookies, not a token
            return _error(console_app.refusal(request, "a bearer token is needed (Authorization: Bearer ...)"), 401)
        target = (added or deleted or "").strip()
        try:
            if added is not None:
                protected = request.query.get("nonDeletable", "").lower() in ("true", "1", "yes")
                outcome = await console.add(list_name, Entry(kind_of(target), target, protected=protected), user)
            else:
                outcome = await console.remove(list_name, target, user)
        except RefusedEditError as exc:
            return _error("; ".join(f"{p.file}:{p.line}: {p.message}" for p in exc.problems), 422)
        except EditError as exc:
            return _error(str(exc), exc.status)
        answer: dict[str, Any] = {
            "result": "added" if added is not None else "deleted",
            "entry": target,
            "commit": outcome.commit,
            "pullRequest": outcome.pull_request.url if outcome.pull_request is not None else None,
        }
        return web.json_response(answer)

    async def show_all(request: web.Request) -> web.Response:
        if not console_app.reader(request):
            return _error(console_app.refusal(request, "a bearer token is needed to read"), 401)
        lists = {found.name: found for found in await console.allow_lists()}
        found = lists.get(list_name)
        if found is None:
            return _error(f"no EgressAllowList named {list_name}", 404)
        shown = [entry_json(entry) for entry in found.entries]
        return web.json_response(
            [{"entry": e["destination"], "nonDeletable": e["protected"], "comment": e["comment"]} for e in shown]
        )

    return (web.get("/ping", ping), web.get("/api", api), web.get("/show-all", show_all))
