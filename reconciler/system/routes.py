"""The route-table seam: our routes in the main table, over netlink (pyroute2), marked with our own route
protocol number so that only routes we made are ever listed, replaced or removed.

``flush_routes()`` removed only 437 of 10,000 routes here (DESIGN.md, "Measured on these machines"), so ours are
listed by protocol number and deleted one by one.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Protocol

from pyroute2 import AsyncIPRoute  # type: ignore[import-untyped]
from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

from reconciler.errors import ApplyError, ObserveError

PROTOCOL = 213  # unassigned in iproute2's rt_protos; shown by `ip route` as "proto 213"
MAIN_TABLE = 254


class RouteTable(Protocol):
    async def ours(self) -> dict[str, str]:
        """Our routes: prefix -> next hop."""
        ...

    async def replace(self, prefix: str, via: str) -> None: ...

    async def delete(self, prefix: str) -> None: ...


@dataclass
class NetlinkRouteTable:
    """The real table; ``netns``: a named network namespace (tests), None for the agent's own."""

    netns: str | None = None
    protocol: int = PROTOCOL

    def _open(self) -> AsyncIPRoute:
        return AsyncIPRoute(netns=self.netns) if self.netns else AsyncIPRoute()

    async def ours(self) -> dict[str, str]:
        found: dict[str, str] = {}
        try:
            async with self._open() as ipr:
                for family in (2, 10):  # AF_INET, AF_INET6
                    async for route in await ipr.route("dump", family=family, proto=self.protocol):
                        if route["proto"] != self.protocol or route["table"] != MAIN_TABLE:
                            continue
                        dst = route.get("dst") or ("0.0.0.0" if family == 2 else "::")  # noqa: S104 a default route
                        prefix = str(ipaddress.ip_network(f"{dst}/{route['dst_len']}"))
                        found[prefix] = str(route.get("gateway") or "")
        except (NetlinkError, OSError) as exc:
            raise ObserveError(f"cannot list routes: {exc}") from exc
        return found

    async def replace(self, prefix: str, via: str) -> None:
        try:
            async with self._open() as ipr:
                await ipr.route("replace", dst=prefix, gateway=via, proto=self.protocol, table=MAIN_TABLE)
        except (NetlinkError, OSError) as exc:
            raise ApplyError(f"cannot route {prefix} via {via}: {exc}") from exc

    async def delete(self, prefix: str) -> None:
        try:
            async with self._open() as ipr:
                await ipr.route("del", dst=prefix, proto=self.protocol, table=MAIN_TABLE)
        except NetlinkError as exc:
            if exc.code != 3:  # ESRCH: gone already
                raise ApplyError(f"cannot remove the route to {prefix}: {exc}") from exc
        except OSError as exc:
            raise ApplyError(f"cannot remove the route to {prefix}: {exc}") from exc
