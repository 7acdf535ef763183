"""Benchmark: the console's nodes page with many nodes, against the least any reader of the same refs must do.

One local bare remote holds the bundled desired state on ``main`` and N per-node status branches
(``reconciler-status/node-NNNN``, each with an ``agent.yaml`` as agents write it; a tenth of the nodes on an older
revision). Timed per page view: what the console does for ``GET /nodes`` (fetch, read every node's files, parse
them, rows, what changed since each applied revision). The reference is one ``git for-each-ref`` and one ``git
cat-file --batch`` printing every node's ``agent.yaml``: reading the same bytes with nothing else.

    .venv/bin/python bench/console_nodes.py [--sizes 100,1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from common import git, make_remote

from reconciler.console.nodes import read_nodes
from reconciler.console.service import Console
from reconciler.settings import GitIdentity
from reconciler.system.clock import SystemClock
from reconciler.system.console_git import ConsoleClone

EXAMPLE = Path(__file__).parents[1] / "desired-state"
BRANCH = "reconciler-status"


def agent_yaml(node: str, revision: str) -> bytes:
    return (
        f"node: {node}\nbranch: main\nlastAppliedRevision: {revision}\nlastAttemptedRevision: {revision}\n"
        "heartbeat: '2026-12-05T04:00:00Z'\nconditions:\n"
        "- {type: Ready, status: 'True', reason: Applied, message: '', lastTransitionTime: '2026-12-05T03:00Z'}\n"
        "- {type: Degraded, status: 'False', reason: Applied, message: '', lastTransitionTime: '2026-12-05T03:00Z'}\n"
        "problems: []\n"
    ).encode()


def status_branches(bare: Path, size: int, revisions: tuple[str, str]) -> None:
    """N per-node branches in one ``git fast-import`` (a commit each, as agents would have pushed)."""
    stream = []
    for number in range(size):
        node = f"node-{number:04d}"
        data = agent_yaml(node, revisions[number % 10 == 0])
        stream.append(
            f"commit refs/heads/{BRANCH}/{node}\ncommitter {node} <{node}@example.invalid> 1796443200 +0000\n"
            f"data 6\nstatus\nM 100644 inline status/{node}/agent.yaml\ndata {len(data)}\n".encode()
            + data
            + b"\n"
        )
    subprocess.run(["git", "-C", str(bare), "fast-import", "--quiet"], input=b"".join(stream), check=True)


def reference(bare: Path) -> int:
    refs = git(bare, "for-each-ref", "--format=%(refname)", f"refs/heads/{BRANCH}/")
    wanted = "".join(f"{ref}:status/{ref.rsplit('/', 1)[1]}/agent.yaml\n" for ref in refs.splitlines())
    done = subprocess.run(
        ["git", "-C", str(bare), "cat-file", "--batch"], input=wanted.encode(), capture_output=True, check=True
    )
    return len(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"console nodes page: seconds per page view, {args.rounds} rounds each (ratio: ours / the plain read)")
    for size in (int(s) for s in args.sizes.split(",")):
        root = Path(tempfile.mkdtemp(prefix="reconciler-bench-nodes-"))
        try:
            bare, work = make_remote(root, lambda folder: shutil.copytree(EXAMPLE, folder / "desired-state"))
            old = git(work, "rev-parse", "HEAD")
            (work / "desired-state" / "NOTE").write_text("a later commit\n")
            git(work, "add", "-A")
            git(work, "commit", "-q", "-m", "later")
            git(work, "push", "-q", "origin", "HEAD:main")
            status_branches(bare, size, (git(work, "rev-parse", "HEAD"), old))
            clone = ConsoleClone(
                f"file://{bare}",
                workdir=root / "console",
                branch="main",
                path="desired-state",
                timeout=120,
                committer=GitIdentity("bench", "bench@example.invalid"),
            )
            console = Console(clone, mode="push", forge=None, clock=SystemClock())
            ours, plain = [], []
            for _ in range(args.rounds):
                started = time.perf_counter()
                rows = asyncio.run(read_nodes(console, BRANCH, 900.0))
                ours.append(time.perf_counter() - started)
                assert len(rows) == size, len(rows)
                started = time.perf_counter()
                assert reference(bare) > size * 100
                plain.append(time.perf_counter() - started)
            clone.close()
            print(
                f"  {size:>5} nodes: ours {', '.join(f'{t:.3f}' for t in ours)} s; plain read "
                f"{', '.join(f'{t:.3f}' for t in plain)} s; ratio "
                f"{', '.join(f'{o / p:.1f}x' for o, p in zip(ours, plain, strict=True))}"
            )
        finally:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
