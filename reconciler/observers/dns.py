"""Names resolved through the Resolver seam: where a ``host:port`` target connects, and the answers for the
domains of allow-lists, with internal addresses dropped (DNS rebinding) and reported."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, replace

from reconciler.model.internal_ranges import AddressRanges
from reconciler.model.observed import NameFacts
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


@dataclass(frozen=True, slots=True)
class Answers:
    """Per domain: what it resolved to (public addresses only), and what was refused as internal."""

    facts: dict[str, NameFacts]
    refused: dict[str, tuple[str, ...]]


async def resolve_public(resolver: Resolver, names: Iterable[str], internal: AddressRanges) -> Answers:
    """Resolve every name (concurrently; the resolver limits how many at once) and drop answers that fall in an
    internal range: a public name must never open the way to an internal address."""
    unique = sorted(set(names))
    results = await asyncio.gather(*(resolver.resolve(name) for name in unique))
    facts: dict[str, NameFacts] = {}
    refused: dict[str, tuple[str, ...]] = {}
    for name, found in zip(unique, results, strict=True):
        public = tuple(a for a in found.addresses if internal.overlapping(a.address) is None)
        dropped = tuple(str(a.address) for a in found.addresses if internal.overlapping(a.address) is not None)
        if dropped:
            refused[name] = dropped
        error = found.error or ("every answer was an internal address" if dropped and not public else "")
        facts[name] = replace(found, addresses=public, error=error)
    return Answers(facts, refused)
