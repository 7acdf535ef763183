"""Benchmark: scanning a 1,000,000-line nginx access log in the example format (issue 12).

Prints, for every round, our scanner's lines per second (LogTail reading 16 MiB chunks of whole lines, the
compiled log_format parser, attribution of each request to a member by $server_port) next to a plain read of the
same file in the same run, and the scanner's peak memory for the whole file and for half of it (memory must
not grow with the file). Target: at least 1,000,000 lines/s, or at least 25 % of the plain read, whichever is
lower.

    .venv/bin/python bench/logscan.py [--lines 1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

from reconciler.formats.access_log import LogReader, read_requests
from reconciler.system.log_tail import LogTail

FORMAT = '$remote_addr - [$time_local] "$request" $status $server_port $upstream_addr $request_time'
MEMBERS = {str(19001 + i).encode(): f"203.0.113.{i + 1}" for i in range(40)}


def generate(path: Path, lines: int) -> None:
    rng = random.Random(12)
    statuses = [b"200"] * 90 + [b"502"] * 4 + [b"403", b"504", b"499", b"400"] + [b"200"] * 2
    with path.open("wb") as out:
        batch = []
        for i in range(lines):
            port = 19001 + rng.randrange(40)
            request = b"CONNECT api.partner.example:443 HTTP/1.1" if i % 3 else b"GET /path?q=\\x22x\\x22 HTTP/1.1"
            batch.append(
                b'198.51.100.%d - [04/Dec/2026:21:%02d:%02d +0000] "%s" %s %d 127.0.0.1:%d, 127.0.0.1:%d %.3f\n'
                % (i % 250, i // 60000 % 60, i // 1000 % 60, request, rng.choice(statuses), port, port, port, 0.012)
            )
            if len(batch) == 10000:
                out.write(b"".join(batch))
                batch = []
        out.write(b"".join(batch))


def plain_read(path: Path) -> int:
    lines = 0
    with path.open("rb") as source:
        while chunk := source.read(16 << 20):
            lines += chunk.count(b"\n")
    return lines


def scan(path: Path, reader: LogReader) -> tuple[int, int]:
    tail = LogTail(path)
    lines = requests = 0
    try:
        for chunk in tail.read():
            found = read_requests(reader, [chunk], MEMBERS)
            lines += found.counts.lines
            requests += sum(len(v) for v in found.by_member.values())
    finally:
        tail.close()
    return lines, requests


def peak_memory(path: Path, reader: LogReader) -> int:
    tracemalloc.start()
    scan(path, reader)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    reader = LogReader.for_format(FORMAT, per_member_files=False)
    with tempfile.TemporaryDirectory() as folder:
        path, small = Path(folder) / "access.log", Path(folder) / "small.log"
        generate(path, args.lines)
        generate(small, args.lines // 2)
        size = os.path.getsize(path)
        ours, plain = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            lines = plain_read(path)
            plain.append(lines / (time.perf_counter() - start))
            start = time.perf_counter()
            scanned, requests = scan(path, reader)
            ours.append(scanned / (time.perf_counter() - start))
            assert scanned == lines == args.lines, (scanned, lines)
            assert requests == args.lines, requests  # every line parsed and attributed
        big, half = peak_memory(path, reader), peak_memory(small, reader)
    print(f"logscan: {args.lines:,} lines, {size / 1e6:.0f} MB (rounds: {args.rounds})")
    for name, rates in (("ours", ours), ("plain read", plain)):
        rounds = ", ".join(f"{v / 1e6:.2f}" for v in rates)
        print(f"  {name:<11} median {statistics.median(rates) / 1e6:.2f} M lines/s  [{rounds}]")
    share = statistics.median(ours) / statistics.median(plain)
    target = min(1_000_000, 0.25 * statistics.median(plain))
    print(
        f"  ours / plain read: {share:.1%}; target {target / 1e6:.2f} M lines/s: "
        f"{'met' if statistics.median(ours) >= target else 'MISSED'}"
    )
    print(f"  peak memory: {big / 1e6:.1f} MB for the whole file, {half / 1e6:.1f} MB for half of it")


if __name__ == "__main__":
    main()
