"""Benchmark: one probe round over 1,000 edges (issue 13).

1,000 local HTTP edges on loopback aliases (127.1.x.y), each answering after a random small delay (0-50 ms); the
round fetches the object from every edge with the real fetcher (httpx, connection pinned to the edge, Host the
site's). Prints every round's duration against the target: under timeout + 1 s.

    .venv/bin/python bench/edges.py [--edges 1000] [--rounds 3] [--timeout 2] [--limit 100]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import statistics
import time

from aiohttp import web
from common import free_port

from reconciler.observers.http_probe import ProbeSpec, probe_all
from reconciler.system.clock import SystemClock
from reconciler.system.http import HttpxFetcher
from reconciler.testing import FakeResolver

BODY = b"edgemanage object\n"


async def main_async(args: argparse.Namespace) -> None:
    rng = random.Random(7)
    edges = [f"127.1.{i // 250}.{i % 250 + 1}" for i in range(args.edges)]
    delays = {edge: rng.uniform(0, 0.05) for edge in edges}
    port = free_port()

    async def handler(request: web.Request) -> web.Response:
        local = request.transport.get_extra_info("sockname")[0] if request.transport else ""
        await asyncio.sleep(delays.get(local, 0.0))
        return web.Response(body=BODY)

    app = web.Application()
    app.router.add_get("/edgemanage.txt", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for edge in edges:
        await web.TCPSite(runner, edge, port, backlog=64).start()
    fetcher = HttpxFetcher(SystemClock(), connections=args.limit)
    spec = ProbeSpec(
        url=f"http://{{host}}:{port}/edgemanage.txt",
        host="example.org",
        sha256=hashlib.sha256(BODY).hexdigest(),
        timeout=args.timeout,
    )
    rounds = []
    failures = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        results = await probe_all(fetcher, FakeResolver(), edges, spec, limit=args.limit)
        rounds.append(time.perf_counter() - started)
        failures.append(sum(1 for r in results.values() if not r.ok))
    await fetcher.close()
    await runner.cleanup()
    target = args.timeout + 1
    shown = ", ".join(f"{r:.2f}" for r in rounds)
    print(f"edges: {args.edges} edges, delays 0-50 ms, timeout {args.timeout:g} s, {args.limit} probes at once")
    print(f"  round  median {statistics.median(rounds):.2f} s  [{shown}]  failed probes per round: {failures}")
    print(f"  target < {target:g} s: {'met' if max(rounds) < target else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--edges", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--limit", type=int, default=100)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
