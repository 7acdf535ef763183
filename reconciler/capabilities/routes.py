"""The one way a capability's HTTP route answers from a resource's state: 404 for a resource this node does not
hold, 503 (with ``Retry-After``) for one not ready to answer, else the view's JSON."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from aiohttp import web

S = TypeVar("S")
S_co = TypeVar("S_co", covariant=True)


class HasStates(Protocol[S_co]):
    @property
    def states(self) -> Mapping[str, S_co]: ...


View = Callable[[str, S, web.Request], Mapping[str, Any]]


class NotFoundError(Exception):
    """What the request names is not there (404)."""


class NotReadyError(Exception):
    """The resource cannot answer yet (503, asked again in a second)."""


def state_route(
    method: str,
    path: str,
    capability: HasStates[S],
    view: View[S],
    *,
    what: str,
    status: int = 200,
) -> web.RouteDef:
    """A route on ``path`` (whose ``{name}`` is the resource's) answering ``view(name, state, request)``; ``what``
    names the kind in the 404 ("no {what} {name} on this node"). The capability's states are read at each request."""

    async def handler(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        state = capability.states.get(name)
        try:
            if state is None:
                raise NotFoundError(f"no {what} {name} on this node")
            return web.json_response(view(name, state, request), status=status)
        except NotFoundError as exc:
            return web.json_response({"error": str(exc)}, status=404)
        except NotReadyError as exc:
            return web.json_response({"error": str(exc)}, status=503, headers={"Retry-After": "1"})

    return web.route(method, path, handler)
