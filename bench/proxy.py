"""Benchmark: our TCP proxy (the real agent, `reconciler run`) against HAProxy in tcp mode and a direct path.

All on loopback, in the same run:
- throughput: iperf3 through each path, 1 and 4 parallel streams (Gbit/s);
- connection rate: wrk with one request per connection (`Connection: close`) against a tiny HTTP responder
  (HAProxy `http-request return`), through each path (connections/s).
Printed as numbers and ratios to HAProxy. Issue targets: throughput >= 1.2 x HAProxy, rate >= 0.8 x HAProxy.

    .venv/bin/python bench/proxy.py [--seconds 5] [--rounds 3] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import agent_command, free_port, make_remote, wait_port

NEEDED = ("haproxy", "iperf3", "wrk", "git")


HAPROXY_HEADER = """\
global
    maxconn 4000
defaults
    timeout connect 5s
    timeout client 30s
    timeout server 30s
"""


def haproxy(config: str, folder: Path, name: str) -> subprocess.Popen[bytes]:
    """HAProxy with our common global/defaults section and ``config`` after it."""
    path = folder / f"{name}.cfg"
    path.write_text(HAPROXY_HEADER + textwrap.dedent(config))
    return subprocess.Popen(["haproxy", "-f", str(path), "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def iperf(port: int, streams: int, seconds: int) -> float:
    done = subprocess.run(
        ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(seconds), "-P", str(streams), "-J"],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(done.stdout)["end"]["sum_received"]["bits_per_second"]) / 1e9


def wrk(port: int, seconds: int) -> float:
    done = subprocess.run(
        ["wrk", "-t2", "-c64", f"-d{seconds}s", "-H", "Connection: close", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    errors = re.search(r"Socket errors: (.*)", done.stdout)
    if errors:
        print(f"    (wrk on {port}: socket errors {errors.group(1)})")
    assert match, done.stdout
    return float(match.group(1))


def proxy_document(iperf_port: int, http_port: int, ports: tuple[int, int]) -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: reconciler/v1
        kind: TCPProxy
        metadata: {{name: bench}}
        spec:
          apps:
            - {{name: iperf, listen: ["127.0.0.1:{ports[0]}"], targets: ["127.0.0.1:{iperf_port}"]}}
            - {{name: http, listen: ["127.0.0.1:{ports[1]}"], targets: ["127.0.0.1:{http_port}"]}}
          healthCheck: {{interval: 2s, timeout: 1s}}
        """
    )


def start_agent(
    folder: Path, iperf_port: int, http_port: int, ports: tuple[int, int], workers: int
) -> subprocess.Popen[bytes]:
    document = proxy_document(iperf_port, http_port, ports)
    bare, _ = make_remote(folder, lambda work: (work / "proxy.yaml").write_text(document))
    api = free_port()
    log = (folder / "agent.log").open("wb")
    command = agent_command(bare, folder / "state", api, "--proxy-workers", str(workers))
    agent = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(ports[1])
    except SystemExit:
        print((folder / "agent.log").read_text()[-3000:])
        raise
    deadline = time.monotonic() + 30
    while True:  # ready once the first tick applied (worker processes start in the meantime)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{api}/readyz", timeout=5) as response:
                if response.status == 200:
                    break
        except urllib.error.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("agent not ready after 30 s: " + (folder / "agent.log").read_text()[-3000:])
        time.sleep(0.2)
    return agent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="the agent's --proxy-workers")
    args = parser.parse_args()
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: run 'make setup' as root (debian-packages.txt)")
    folder = Path(tempfile.mkdtemp(prefix="reconciler-bench-proxy-"))
    iperf_port, http_port = free_port(), free_port()
    h_iperf, h_http = free_port(), free_port()
    ours = (free_port(), free_port())
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(
            subprocess.Popen(
                ["iperf3", "-s", "-p", str(iperf_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
        processes.append(
            haproxy(
                f"""\
            frontend responder
                mode http
                bind 127.0.0.1:{http_port}
                http-request return status 200 content-type text/plain string ok
            """,
                folder,
                "responder",
            )
        )
        processes.append(
            haproxy(
                f"""\
            listen iperf
                mode tcp
                option splice-auto
                bind 127.0.0.1:{h_iperf}
                server s1 127.0.0.1:{iperf_port}
            listen http
                mode tcp
                option splice-auto
                bind 127.0.0.1:{h_http}
                server s1 127.0.0.1:{http_port}
            """,
                folder,
                "reference",
            )
        )
        for port in (iperf_port, http_port, h_iperf, h_http):
            wait_port(port)
        processes.append(start_agent(folder, iperf_port, http_port, ours, args.workers))
        paths = {"direct": (iperf_port, http_port), "haproxy": (h_iperf, h_http), "reconciler": ours}
        # Rounds interleave the paths, so a slow minute of the shared machine hits all of them; the median of the
        # rounds is reported (single runs of HAProxy itself move by 20 % here).
        rounds: dict[str, dict[str, list[float]]] = {name: {} for name in paths}
        for _ in range(args.rounds):
            for name, (throughput_port, rate_port) in paths.items():
                measured = {
                    "1 stream Gbit/s": iperf(throughput_port, 1, args.seconds),
                    "4 streams Gbit/s": iperf(throughput_port, 4, args.seconds),
                    "connections/s": wrk(rate_port, args.seconds),
                }
                for key, value in measured.items():
                    rounds[name].setdefault(key, []).append(value)
        results = {
            name: {key: statistics.median(values) for key, values in by_key.items()} for name, by_key in rounds.items()
        }
        print(
            f"proxy: loopback, {os.cpu_count()} cores, {args.seconds} s per measurement, median of {args.rounds} "
            f"rounds, --proxy-workers {args.workers}"
        )
        header = f"  {'path':<11}" + "".join(f"{key:>20}" for key in results["direct"])
        print(header)
        for name, values in results.items():
            print(f"  {name:<11}" + "".join(f"{value:>20.2f}" for value in values.values()))
        print("  ratio to HAProxy:")
        for name in ("direct", "reconciler"):
            ratios = [results[name][key] / results["haproxy"][key] for key in results[name]]
            print(f"  {name:<11}" + "".join(f"{ratio:>19.2f}x" for ratio in ratios))
        for key in results["reconciler"]:
            pairs = zip(rounds["reconciler"][key], rounds["haproxy"][key], strict=True)
            print(f"  reconciler, {key}, each round: " + ", ".join(f"{ours / theirs:.2f}x" for ours, theirs in pairs))
        reconciler = results["reconciler"]
        reference = results["haproxy"]
        throughput_ok = min(reconciler[k] / reference[k] for k in ("1 stream Gbit/s", "4 streams Gbit/s")) >= 1.2
        rate_ok = reconciler["connections/s"] / reference["connections/s"] >= 0.8
        print(
            f"  targets: throughput >= 1.2x {'met' if throughput_ok else 'MISSED'}; "
            f"connection rate >= 0.8x {'met' if rate_ok else 'MISSED'}"
        )
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
