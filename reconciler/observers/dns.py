"""Where a ``host:port`` target connects: its name resolved through the Resolver seam."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.model.values import host_and_port
from reconciler.system.resolver import Resolver


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A target resolved to one address (the first answer, IPv4 before IPv6 as the resolver orders them)."""

    host: str
    port: int


async def resolve_endpoint(resolver: Resolver, target: str) -> Endpoint:
    """``host:port`` -> the address to connect to; raises OSError with the resolver's reason when there is none."""
    host, port = host_and_port(target)
    facts = await resolver.resolve(host)
    if not facts.addresses:
        raise OSError(facts.error or f"{host} has no address")
    return Endpoint(str(facts.addresses[0].address), port)
