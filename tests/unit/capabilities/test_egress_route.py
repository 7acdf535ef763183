"""The EgressRoute capability through FakeRouteTable (no root): public space goes via the gateway, internal
ranges and exclusions do not; a second pass changes nothing; drift is repaired; the removal lists every route."""

from __future__ import annotations

import asyncio
import ipaddress

from reconciler.capabilities.egress_route import EgressRouteCapability
from reconciler.model import EgressRoute
from reconciler.testing import Driven, FakeRouteTable


def _route(**spec: object) -> EgressRoute:
    return EgressRoute.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "EgressRoute",
            "metadata": {"name": "via-gw"},
            "spec": {"gateway": "10.88.0.1", "exclude": ["192.0.2.0/24"], **spec},
        }
    )


async def _pass(capability: Driven[EgressRouteCapability], route: EgressRoute) -> int:
    return sum(len(target.changes) for target in await capability.cycle(route, now=0.0))


def _via(table: FakeRouteTable, address: str) -> str | None:
    """The next hop of the longest of our prefixes that holds ``address``."""
    ip = ipaddress.ip_address(address)
    held = [ipaddress.ip_network(p) for p in table.routes if ip in ipaddress.ip_network(p)]
    return table.routes[str(max(held, key=lambda n: n.prefixlen))] if held else None


def test_routes_converge_are_repaired_and_their_removal_is_listed() -> None:
    table = FakeRouteTable({"198.51.100.0/24": "10.9.9.9"})  # a stale route of ours, through an old gateway
    capability = Driven(EgressRouteCapability(table))
    route = _route()

    async def scenario() -> None:
        assert await _pass(capability, route) > 10
        assert "10.9.9.9" not in table.routes.values()  # the stale route is gone or goes via the gateway now
        for public in ("8.8.8.8", "172.64.0.1", "198.51.100.7"):
            assert _via(table, public) == "10.88.0.1", public
        for kept_off in ("10.1.2.3", "172.16.0.1", "192.168.1.1", "192.0.2.7"):  # internal, and excluded
            assert _via(table, kept_off) is None, kept_off
        assert await _pass(capability, route) == 0
        observed = await capability.observe(route)
        assert observed.summary == {"nextHops": {"ipv4": "10.88.0.1"}, "routes": len(table.routes)}

        first = sorted(table.routes)[0]
        del table.routes[first]  # drift: a route deleted by hand
        assert await _pass(capability, route) == 1
        assert table.calls[-1] == ("replace", first)

        removal = await capability.capability.removal("via-gw")
        assert [c.key for c in removal] == sorted(table.routes)
        assert all(str(c.before).endswith(" via 10.88.0.1") for c in removal)
        await capability.forget("via-gw")
        assert table.routes == {}

    asyncio.run(scenario())
