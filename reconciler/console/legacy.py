"""outputGuard's HTTP calls, answered as its server answers them (``--legacy-api LIST``), for its page and the
scripts written against it: each edit is the same validated commit as the console's own API, on the allow-list
LIST. Off unless asked for.

- ``GET /ping``: ``{"message": "pong"}``;
- ``GET /api?add=X[&nonDeletable=B]``: X (a domain, an address or a network) added to LIST, protected when ``B``
  is true as Go's ``strconv.ParseBool`` reads it (anything else is false, as the old server logged and went on);
  ``{"info": X, "status": "success"}``;
- ``GET /api?del=X``: X removed; ``{"info": X, "status": "success"}``;
- a refused call (a protected entry, an invalid value, a refused commit) answers 400 ``{"info": why, "status":
  "failed"}`` as the old server did; 401 in the same shape without a bearer token. The commit and the pull
  request are in the ``X-Reconciler-Commit`` and ``X-Reconciler-Pull-Request`` headers, where the old page
  does not look;
- ``GET /show-all``: ``{"Records": [{"ID", "Types", "IP", "Name", "IsNoDel", "IsLocalNet", "CreatedAt"}]}``, one
  record per entry of LIST (``Types`` ``IP`` or ``Domain``; a domain's ``IP`` is empty: its addresses are the
  gateways', in their status; ``CreatedAt`` is Go's zero time: git's history says when each entry came).

The old tool had no authentication. Its edits are GETs, which any page can make a browser send (an ``<img>`` tag), so
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


GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})  # what Go's strconv.ParseBool reads as true
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
# the ranges the old server called local networks (its isPrivateIP)
OLD_PRIVATE = tuple(
    ipaddress.ip_network(block)
    for block in ("100.64.0.0/10", "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")
)


def _failed(info: str, status: int = 400) -> web.Response:
    return web.json_response({"info": info, "status": "failed"}, status=status)


def _error(message: str, status: int) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _local(destination: str) -> bool:
    """Whether the old tool called the destination a local network (its isPrivateIP ranges)."""
    try:
        address = ipaddress.ip_network(destination, strict=False).network_address
    except ValueError:
        return False
    return any(address in block for block in OLD_PRIVATE)


def record(index: int, entry: dict[str, Any]) -> dict[str, Any]:
    """One entry as a row of the old server's table."""
    destination = entry["destination"]
    domain = entry["type"] == "domain"
    return {
        "ID": index,
        "Types": "Domain" if domain else "IP",
        "IP": "" if domain else destination,
        "Name": destination,
        "IsNoDel": entry["protected"],
        "IsLocalNet": not domain and _local(destination),
        "CreatedAt": GO_ZERO_TIME,
    }


def legacy_routes(console_app: ConsoleApp, list_name: str) -> Sequence[web.RouteDef]:
    console = console_app.console

    async def ping(_: web.Request) -> web.Response:
        return web.json_response({"message": "pong"})

    async def api(request: web.Request) -> web.Response:
        added, deleted = request.query.get("add") or None, request.query.get("del") or None
        if added is None and deleted is None:
            return _failed("give add=X or del=X")
        user = console_app.bearer_user(request)
        if user is None:  # an edit on a GET: a cross-site <img> sends the proxy's header and cookies, not a token
            return _failed(console_app.refusal(request, "a bearer token is needed (Authorization: Bearer ...)"), 401)
        target = (added or deleted or "").strip()
        try:
            if added is not None:
                protected = request.query.get("nonDeletable", "") in GO_TRUE
                outcome = await console.add(list_name, Entry(kind_of(target), target, protected=protected), user)
            else:
                outcome = await console.remove(list_name, target, user)
        except RefusedEditError as exc:
            return _failed("; ".join(f"{p.file}:{p.line}: {p.message}" for p in exc.problems))
        except EditError as exc:
            return _failed(str(exc))
        headers = {"X-Reconciler-Commit": outcome.commit or ""}
        if outcome.pull_request is not None:
            headers["X-Reconciler-Pull-Request"] = outcome.pull_request.url
        return web.json_response({"info": target, "status": "success"}, headers=headers)

    async def show_all(request: web.Request) -> web.Response:
        if not console_app.reader(request):
            return _error(console_app.refusal(request, "a bearer token is needed to read"), 401)
        lists = {found.name: found for found in await console.allow_lists()}
        found = lists.get(list_name)
        if found is None:
            return _error(f"no EgressAllowList named {list_name}", 404)
        shown = [entry_json(entry) for entry in found.entries]
        return web.json_response({"Records": [record(index, e) for index, e in enumerate(shown, start=1)]})

    return (web.get("/ping", ping), web.get("/api", api), web.get("/show-all", show_all))
