"""Edge probes: fetch the network's object from every edge, concurrently under a limit, each pinned to the edge's
own address. A timeout, a refused connection, an HTTP status of 400 or more, or a body whose checksum is not the
expected one is a failure, recorded at the timeout value (a failing edge is never "fast"). Only a connection
that could not be made is tried again; an edge that does not resolve is a failure that says so, never dropped."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.model.observed import EdgeProbeFacts
from reconciler.system.http import Fetched, HttpFetcher, NoConnectionError
from reconciler.system.resolver import Resolver


@dataclass(frozen=True)
class ProbeSpec:
    url: str  # with {host}
    host: str | None  # the site's name for Host and SNI; None: the edge's own name
    sha256: str | None
    timeout: float
    md5: str | None = None
    verify: bool = True
    retries: int = 1


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


async def probe_edge(fetcher: HttpFetcher, resolver: Resolver, edge: str, spec: ProbeSpec) -> EdgeProbeFacts:
    address = _literal(edge)
    if address is None:
        resolved = await resolver.resolve(edge)
        if not resolved.addresses:
            return EdgeProbeFacts(edge, None, False, spec.timeout, error=resolved.error or f"{edge} does not resolve")
        address = str(resolved.addresses[0].address)
    url = spec.url.replace("{host}", edge if _literal(edge) is None else spec.host or edge)
    host = spec.host or edge
    error = ""
    for _ in range(spec.retries + 1):
        try:
            fetched = await asyncio.wait_for(
                fetcher.fetch(url, address, host=host, timeout=spec.timeout, verify=spec.verify), spec.timeout
            )
        except NoConnectionError as exc:
            error = str(exc)
            continue
        except (TimeoutError, OSError) as exc:
            return EdgeProbeFacts(edge, address, False, spec.timeout, error=str(exc) or "timed out")
        return _judged(edge, address, fetched, spec)
    return EdgeProbeFacts(edge, address, False, spec.timeout, error=error)


def _judged(edge: str, address: str, fetched: Fetched, spec: ProbeSpec) -> EdgeProbeFacts:
    """An answer as a probe result: the time to the full body, or a failure at the timeout value."""
    problem = ""
    if fetched.status >= 400:
        problem = f"HTTP {fetched.status}"
    elif spec.sha256 is not None and fetched.sha256 != spec.sha256:
        problem = f"checksum {fetched.sha256[:12]}..., expected {spec.sha256[:12]}..."
    elif spec.md5 is not None and fetched.md5 != spec.md5:
        problem = f"md5 {fetched.md5[:12]}..., expected {spec.md5[:12]}..."
    elif fetched.seconds >= spec.timeout:
        problem = "slower than the timeout"
    if problem:
        return EdgeProbeFacts(edge, address, False, spec.timeout, fetched.headers_seconds, problem)
    return EdgeProbeFacts(edge, address, True, fetched.seconds, fetched.headers_seconds)


async def probe_all(
    fetcher: HttpFetcher, resolver: Resolver, edges: Sequence[str], spec: ProbeSpec, *, limit: int = 100
) -> dict[str, EdgeProbeFacts]:
    """Every edge probed, at most ``limit`` at once; the round takes about ``timeout`` whatever the count."""
    gate = asyncio.Semaphore(limit)

    async def one(edge: str) -> EdgeProbeFacts:
        async with gate:
            return await probe_edge(fetcher, resolver, edge, spec)

    results = await asyncio.gather(*(one(edge) for edge in edges))
    return {facts.edge: facts for facts in results}


async def probe_canaries(
    fetcher: HttpFetcher, resolver: Resolver, canaries: Sequence[str], spec: ProbeSpec, *, killer: int
) -> dict[str, EdgeProbeFacts]:
    """Every canary probed at once, until ``killer`` of them failed: the probes still pending then are cancelled
    and count as failed (the old tool's canaryKiller), so a round never waits for slow canaries it will not use."""
    tasks = {asyncio.ensure_future(probe_edge(fetcher, resolver, canary, spec)): canary for canary in canaries}
    results: dict[str, EdgeProbeFacts] = {}
    failed = 0
    try:
        for finished in asyncio.as_completed(list(tasks)):
            facts = await finished
            results[facts.edge] = facts
            failed += not facts.ok
            if failed >= killer:
                break
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task, canary in tasks.items():
            if canary not in results and not task.cancelled() and task.exception() is None:
                results[canary] = task.result()  # finished while the loop was stopping
            elif canary not in results:
                results[canary] = EdgeProbeFacts(canary, None, False, spec.timeout, error="not probed: canaryKiller")
    return results
