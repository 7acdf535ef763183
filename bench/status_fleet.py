"""Benchmark: N nodes publishing their status at the same moment to one bare remote, with the agent's own
publishing code (``GitStatusPublisher``, each node with its own bare repository, as an agent has), in both
layouts: a branch per node (``per-node``) and one branch for all (``shared``).

Each node publishes once, all released together by a barrier; threads stand in for the machines (at most
``--workers`` publish at the same instant; git runs in its own processes). Printed per layout and size: the time
until every status landed, pushes per node (attempts, rejected ones included) and the publishes given up.

    .venv/bin/python bench/status_fleet.py [--sizes 10,100,1000] [--workers 64] [--shared-max 1000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import git

from reconciler.errors import PublishError
from reconciler.settings import GitIdentity
from reconciler.system.git import BareRepository, GitStatusPublisher


def run(root: Path, size: int, layout: str, workers: int) -> tuple[float, list[int], int]:
    remote = root / f"{layout}-{size}.git"
    git(root, "init", "-q", "--bare", "-b", "main", str(remote))
    publishers = []
    for number in range(size):
        node = f"node-{number:04d}"
        bare = BareRepository(f"file://{remote}", workdir=root / f"{layout}-{size}" / node, timeout=120)
        publishers.append(
            GitStatusPublisher(
                bare,
                status_branch="reconciler-status",
                identity=GitIdentity(node, f"{node}@example.invalid"),
                node=node,
                layout=layout,
            )
        )
    gate = threading.Barrier(min(workers, size))
    failures = 0

    def publish(publisher: GitStatusPublisher) -> float:
        nonlocal failures
        if publisher.node < f"node-{min(workers, size):04d}":
            gate.wait()  # the first wave starts together; the rest follow as threads free up
        files = {f"status/{publisher.node}/agent.yaml": f"node: {publisher.node}\n".encode()}
        try:
            publisher.publish(files, prefix=f"status/{publisher.node}/", message=f"status {publisher.node}")
        except PublishError:
            failures += 1
        return time.perf_counter()

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        finished = list(pool.map(publish, publishers))
    took = max(finished) - started
    for publisher in publishers:
        publisher.bare.close()
    return took, [p.pushes for p in publishers], failures


def landed(root: Path, size: int, layout: str) -> int:
    remote = root / f"{layout}-{size}.git"
    if layout == "per-node":
        return len(git(remote, "for-each-ref", "refs/heads/reconciler-status/").splitlines())
    try:
        names = git(remote, "ls-tree", "--name-only", "reconciler-status:status").splitlines()
    except Exception:
        return 0
    return len(names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--shared-max", type=int, default=1000, help="largest size tried with the shared branch")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"status publishing, {args.workers} at a time at most (threads; git in its own processes)")
    print(f"{'layout':<9} {'nodes':>6} {'landed':>7} {'gave up':>8} {'time':>8} {'pushes/node':>12} {'max':>4}")
    with tempfile.TemporaryDirectory(prefix="bench-status-") as folder:
        root = Path(folder)
        for size in sizes:
            for layout in ("per-node", "shared"):
                if layout == "shared" and size > args.shared_max:
                    print(f"{layout:<9} {size:>6}  skipped (--shared-max {args.shared_max})")
                    continue
                took, pushes, failures = run(root, size, layout, args.workers)
                count = landed(root, size, layout)
                mean = statistics.mean(pushes)
                print(f"{layout:<9} {size:>6} {count:>7} {failures:>8} {took:>7.1f}s {mean:>12.2f} {max(pushes):>4}")


if __name__ == "__main__":
    main()
