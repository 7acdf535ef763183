"""The route-table seam: our routes in the main table, over netlink (pyroute2), marked with our own route
protocol number so that only routes we made are ever listed, replaced or removed.

pyroute2's ``flush_routes()`` removed only 437 of 10,000 routes on these machines (docs/decisions.md, "Egress"),
so ours are listed by protocol number and deleted one by one.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pyroute2 import IPRoute  # type: ignore[import-untyped]
from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

from reconciler.errors import ApplyError, ObserveError

PROTOCOL = 213  # unassigned in iproute2's rt_protos; shown by `ip route` as "proto 213"
MAIN_TABLE = 254
T = TypeVar("T")


class RouteTable(Protocol):
    async def ours(self) -> dict[str, str]:
        """Our routes: prefix -> next hop."""
        ...

    async def replace(self, prefix: str, via: str) -> None: ...

    async def delete(self, prefix: str) -> None: ...


@dataclass
class NetlinkRouteTable:
    """The real table; ``netns``: a named network namespace (tests), None for the agent's own.

    pyroute2's asyncio socket is a datagram endpoint of family AF_NETLINK, which uvloop (the agent's loop) cannot
    open: each call runs the synchronous ``IPRoute`` in a worker thread on a plain selector loop of its own.
    """

    netns: str | None = None
    protocol: int = PROTOCOL

    def _call(self, work: Callable[[Any], T]) -> T:
        loop = asyncio.SelectorEventLoop()
        try:
            options: dict[str, Any] = {"use_event_loop": loop}
            if self.netns:
                options["netns"] = self.netns
            with IPRoute(**options) as ipr:
                return work(ipr)
        finally:
            loop.run_until_complete(asyncio.sleep(0))  # the socket's transport closes on the loop's next turn
            loop.close()

    def _list(self, ipr: Any) -> dict[str, str]:
        found: dict[str, str] = {}
        for family in (socket.AF_INET, socket.AF_INET6):
            for route in ipr.route("dump", family=family, proto=self.protocol):
                if route["proto"] != self.protocol or route["table"] != MAIN_TABLE:
                    continue
                dst = route.get("dst") or ("0.0.0.0" if family == socket.AF_INET else "::")  # noqa: S104 default route
                prefix = str(ipaddress.ip_network(f"{dst}/{route['dst_len']}"))
                found[prefix] = str(route.get("gateway") or "")
        return found

    async def ours(self) -> dict[str, str]:
        try:
            return await asyncio.to_thread(self._call, self._list)
        except (NetlinkError, OSError) as exc:
            raise ObserveError(f"cannot list routes: {exc}") from exc

    async def replace(self, prefix: str, via: str) -> None:
        def work(ipr: Any) -> None:
            ipr.route("replace", dst=prefix, gateway=via, proto=self.protocol, table=MAIN_TABLE)

        try:
            await asyncio.to_thread(self._call, work)
        except (NetlinkError, OSError) as exc:
            raise ApplyError(f"cannot route {prefix} via {via}: {exc}") from exc

    async def delete(self, prefix: str) -> None:
        def work(ipr: Any) -> None:
            ipr.route("del", dst=prefix, proto=self.protocol, table=MAIN_TABLE)

        try:
            await asyncio.to_thread(self._call, work)
        except NetlinkError as exc:
            if exc.code != errno.ESRCH:  # gone already
                raise ApplyError(f"cannot remove the route to {prefix}: {exc}") from exc
        except OSError as exc:
            raise ApplyError(f"cannot remove the route to {prefix}: {exc}") from exc
