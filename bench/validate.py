"""Benchmark: `reconciler validate` on 100 files holding 50,000 allow-list entries.

Prints the wall time of the whole command (interpreter start included), median of several runs, and the share
spent reading YAML versus validating. Target (issue 2): under 3 s on the 2-core CI machine.

    .venv/bin/python bench/validate.py [--files 100] [--entries 50000] [--runs 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reconciler.loading.loader import load_desired_state
from reconciler.loading.yaml_reader import read_yaml
from reconciler.system.files import read_source_tree


def _entry(rng: random.Random, index: int) -> str:
    """A realistic mix: 40 % domains with ports, 40 % addresses, 20 % networks; some commented or protected."""
    roll = rng.random()
    if roll < 0.4:
        lines = [f"    - domain: svc-{index}.partner{index % 97}.example", "      ports: [443]", "      protocol: tcp"]
    elif roll < 0.8:
        lines = [f"    - ip: 203.0.{index // 256 % 256}.{index % 256}"]
    else:
        lines = [f"    - cidr: 198.51.{index // 16 % 256}.{index % 16 * 16}/28", "      ports: [443, 8000-8100]"]
    if rng.random() < 0.3:
        lines.append(f"      comment: ticket OPS-{index}")
    if rng.random() < 0.05:
        lines.append("      protected: true")
    return "\n".join(lines)


def generate(root: Path, files: int, entries: int) -> None:
    rng = random.Random(42)
    per_file = entries // files
    for number in range(files):
        body = "\n".join(_entry(rng, number * per_file + i) for i in range(per_file))
        (root / f"list-{number:03}.yaml").write_text(
            f"apiVersion: reconciler/v1\nkind: EgressAllowList\nmetadata:\n  name: list-{number:03}\n"
            f"spec:\n  resolveInterval: 60s\n  entries:\n{body}\n"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--entries", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        generate(root, args.files, args.entries)
        size = sum(p.stat().st_size for p in root.iterdir())
        command = [sys.executable, "-m", "reconciler", "validate", str(root)]
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            times.append(time.perf_counter() - start)
            if done.returncode != 0:
                sys.exit(f"validate failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        startup = []
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "reconciler", "--version"], capture_output=True, check=True)
            startup.append(time.perf_counter() - start)
        tree = read_source_tree(root, max_file_bytes=1 << 24)
        start = time.perf_counter()
        for file in tree.files:
            read_yaml(file.content.decode())
        yaml_seconds = time.perf_counter() - start
        start = time.perf_counter()
        load_desired_state(tree)
        load_seconds = time.perf_counter() - start
    median = statistics.median(times)
    print(f"validate: {args.files} files, {args.entries} entries, {size / 1e6:.1f} MB of YAML")
    spread = f"[min {min(times):.2f}, max {max(times):.2f}]"
    print(f"  reconciler validate (wall, median of {args.runs}): {median:.2f} s  {spread}")
    print(f"  of which interpreter + imports:                 {statistics.median(startup):.2f} s")
    print(f"  in-process load: {load_seconds:.2f} s (YAML reading {yaml_seconds:.2f} s)")
    print(f"  target < 3.00 s: {'met' if median < 3.0 else 'MISSED'} ({median / 3.0:.2f} of the budget)")


if __name__ == "__main__":
    main()
