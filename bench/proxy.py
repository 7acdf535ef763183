"""Benchmark: our TCP proxy (the real agent, `reconciler run`) against HAProxy in tcp mode and a direct path.

All on loopback, in the same run:
- throughput: iperf3 through each path, 1 and 4 parallel streams (Gbit/s);
- connection rate: wrk with one request per connection (`Connection: close`) against a tiny HTTP responder
  (HAProxy `http-request return`), through each path (connections/s);
- the CPU time the proxy itself spent (user + system, from /proc: HAProxy's process, or the agent with its
  worker processes) per connection and per GB moved: steadier than the rates on a machine the load
  generators share, and it says where a difference comes from.
- the CPU the whole machine spent per GB with 4 streams, and the share it sat idle: with both cores busy,
  throughput goes as the inverse of that, so HAProxy's figure over ours is the most a path can reach here;
- the resident memory the proxy grows by per open, idle connection (2000 of them, after the runs above, so
  allocator pools are warm in both).
Printed as numbers and ratios to HAProxy, every round as well as the medians. Issue targets: throughput >= 1.2 x
HAProxy (1 and 4 streams), connection rate >= 0.9 x HAProxy. Then system calls per short connection (strace -c)
and context switches per GB of one stream, ours beside HAProxy's.

    .venv/bin/python bench/proxy.py [--seconds 5] [--rounds 3] [--workers auto] [--syscalls 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
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

NEEDED = ("haproxy", "iperf3", "wrk", "git")  # and strace, for the system calls per connection


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


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _family(pid: int) -> list[int]:
    """``pid`` and its descendants (the agent's worker processes)."""
    family, index = [pid], 0
    while index < len(family):
        for task in Path(f"/proc/{family[index]}/task").glob("*"):
            with contextlib.suppress(OSError):
                family.extend(int(child) for child in (task / "children").read_text().split())
        index += 1
    return family


def cpu_seconds(pid: int | None) -> tuple[float, float]:
    """User and system CPU seconds of ``pid`` and its descendants so far (0, 0 for the direct path)."""
    if pid is None:
        return 0.0, 0.0
    user = system = 0
    for member in _family(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            user, system = user + int(fields[11]), system + int(fields[12])
    return user / CLOCK_TICKS, system / CLOCK_TICKS


def resident_kib(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants, KiB."""
    total = 0
    for member in _family(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def memory_per_connection(port: int, pid: int, count: int) -> float:
    """KiB of resident memory the proxy holds per open, idle connection (``count`` of them, each dialled)."""
    before = resident_kib(pid)
    clients = []
    try:
        for _ in range(count):
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(1.0)  # every backend connect done
        return (resident_kib(pid) - before) / count
    finally:
        for client in clients:
            client.close()


def machine_jiffies() -> tuple[int, int]:
    """Busy and idle (idle + iowait) clock ticks of the whole machine so far, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, idle


def context_switches(pid: int | None) -> int:
    """Voluntary and involuntary context switches of every thread of ``pid`` and its descendants so far."""
    if pid is None:
        return 0
    total = 0
    for member in _family(pid):
        for task in Path(f"/proc/{member}/task").glob("*"):
            with contextlib.suppress(OSError):
                for line in (task / "status").read_text().splitlines():
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        total += int(line.split()[1])
    return total


def _one_request(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(b"GET / HTTP/1.0\r\nConnection: close\r\n\r\n")
        while client.recv(65536):
            pass


def syscalls_per_connection(port: int, pid: int, count: int) -> dict[str, float]:
    """System calls the proxy (``pid`` and its descendants, every thread) makes per short connection: strace
    -c attached while ``count`` one-request connections go through it one after another."""
    tracer = subprocess.Popen(
        ["strace", "-f", "-c", "-qq", *(a for member in _family(pid) for a in ("-p", str(member)))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)  # attached to every thread
    for _ in range(count):
        _one_request(port)
    time.sleep(0.5)
    tracer.send_signal(signal.SIGINT)
    _, summary = tracer.communicate(timeout=30)
    calls: dict[str, float] = {}
    for line in summary.splitlines():
        fields = line.split()
        # % time, seconds, usecs/call, calls, [errors,] syscall
        if len(fields) >= 5 and fields[-1] != "total" and fields[3].isdigit():
            calls[fields[-1]] = int(fields[3]) / count
    return calls


def iperf(port: int, streams: int, seconds: int) -> float:
    done = subprocess.run(
        ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(seconds), "-P", str(streams), "-J"],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(done.stdout)["end"]["sum_received"]["bits_per_second"]) / 1e9


def wrk(port: int, seconds: int) -> tuple[float, int]:
    """Connections per second and connections made."""
    done = subprocess.run(
        ["wrk", "-t2", "-c64", f"-d{seconds}s", "-H", "Connection: close", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    count = re.search(r"(\d+) requests in", done.stdout)
    errors = re.search(r"Socket errors: (.*)", done.stdout)
    if errors:
        print(f"    (wrk on {port}: socket errors {errors.group(1)})")
    assert match, done.stdout
    assert count, done.stdout
    return float(match.group(1)), int(count.group(1))


RATES = ("1 stream Gbit/s", "4 streams Gbit/s", "connections/s")
MEASURED = ("haproxy", "reconciler", "pool proxy")  # the paths through a proxy process
IDLE_CONNECTIONS = 2000  # within HAProxy's maxconn 4000


def measure(throughput_port: int, rate_port: int, pid: int | None, seconds: int) -> dict[str, float]:
    """One round on one path: the rates, and the CPU the proxy (``pid`` and its children) spent on them."""
    switches = context_switches(pid)
    measured = {"1 stream Gbit/s": iperf(throughput_port, 1, seconds)}
    measured["switches/GB, 1 stream"] = (context_switches(pid) - switches) / (measured["1 stream Gbit/s"] * seconds / 8)
    before, machine = sum(cpu_seconds(pid)), machine_jiffies()
    measured["4 streams Gbit/s"] = iperf(throughput_port, 4, seconds)
    gigabytes = measured["4 streams Gbit/s"] * seconds / 8
    measured["s/GB, 4 streams"] = (sum(cpu_seconds(pid)) - before) / gigabytes
    busy, idle = (after - earlier for after, earlier in zip(machine_jiffies(), machine, strict=True))
    measured["machine s/GB, 4 streams"] = busy / CLOCK_TICKS / gigabytes
    measured["idle, 4 streams"] = idle / (busy + idle)
    user, system = cpu_seconds(pid)
    measured["connections/s"], count = wrk(rate_port, seconds)
    after = cpu_seconds(pid)
    measured["user us/connection"] = (after[0] - user) / count * 1e6
    measured["system us/connection"] = (after[1] - system) / count * 1e6
    return measured


def proxy_document(iperf_port: int, http_port: int, ports: tuple[int, int], pools: tuple[int, int]) -> str:
    """The TCPProxy apps, and two IP pools whose one member each is the same target (the pool proxy dials
    next:<member port>), on the same engine: one proxy core, two ways to choose a backend."""
    pool = """
        ---
        apiVersion: reconciler/v1
        kind: IPPool
        metadata: {{name: {name}}}
        spec:
          members: {{static: [{{ip: 203.0.113.5, port: {port}}}]}}
          accessLog: {{path: /nonexistent/reconciler-bench.log}}
          strategy: bench
          proxy: {{listen: "127.0.0.1:{listen}", next: 127.0.0.1, balance: round-robin}}
        """
    apps = textwrap.dedent(
        f"""\
        apiVersion: reconciler/v1
        kind: TCPProxy
        metadata: {{name: bench}}
        spec:
          apps:
            - {{name: iperf, listen: ["127.0.0.1:{ports[0]}"], targets: ["127.0.0.1:{iperf_port}"]}}
            - {{name: http, listen: ["127.0.0.1:{ports[1]}"], targets: ["127.0.0.1:{http_port}"]}}
          healthCheck: {{interval: 2s, timeout: 1s}}
        ---
        apiVersion: reconciler/v1
        kind: HealthStrategy
        metadata: {{name: bench}}
        spec: {{type: consecutive}}
        """
    )
    return apps + "".join(
        textwrap.dedent(pool.format(name=name, port=port, listen=listen))
        for name, port, listen in (("iperf", iperf_port, pools[0]), ("http", http_port, pools[1]))
    )


def start_agent(
    folder: Path, iperf_port: int, http_port: int, ports: tuple[int, int], *, pools: tuple[int, int], workers: str
) -> subprocess.Popen[bytes]:
    document = proxy_document(iperf_port, http_port, ports, pools)
    bare, _ = make_remote(folder, lambda work: (work / "proxy.yaml").write_text(document))
    api = free_port()
    log = (folder / "agent.log").open("wb")
    command = agent_command(bare, folder / "state", api, "--proxy-workers", str(workers))
    agent = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(ports[1])
        wait_port(pools[1])
    except SystemExit:
        print((folder / "agent.log").read_text()[-3000:])
        agent.kill()  # not yet in the caller's list of processes to stop
        agent.wait()
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


def report(rounds: dict[str, dict[str, list[float]]], args: argparse.Namespace) -> None:
    """Medians of the rounds, ratios to HAProxy, the proxies' CPU, each round's ratios, the targets."""
    results = {
        name: {key: statistics.median(values) for key, values in by_key.items()} for name, by_key in rounds.items()
    }
    print(
        f"proxy: loopback, {os.cpu_count()} cores, {args.seconds} s per measurement, median of {args.rounds} "
        f"rounds, --proxy-workers {args.workers}"
    )
    header = f"  {'path':<11}" + "".join(f"{key:>20}" for key in RATES)
    print(header)
    for name, values in results.items():
        print(f"  {name:<11}" + "".join(f"{values[key]:>20.2f}" for key in RATES))
    print("  ratio to HAProxy:")
    for name in ("direct", "reconciler", "pool proxy"):
        ratios = [results[name][key] / results["haproxy"][key] for key in RATES]
        print(f"  {name:<11}" + "".join(f"{ratio:>19.2f}x" for ratio in ratios))
    print("  CPU of the proxy (user + system): us per connection, s per GB with 4 streams; context switches per GB")
    for name in MEASURED:
        values = results[name]
        print(
            f"  {name:<11}{values['user us/connection']:>11.1f} + {values['system us/connection']:<7.1f}"
            f"{values['s/GB, 4 streams']:>10.3f}{values['switches/GB, 1 stream']:>12.0f}"
        )
    print(
        "  the whole machine with 4 streams (every process, interrupts included): CPU s per GB, idle share; the"
        " ratio to HAProxy that the CPU per GB allows with both cores busy"
    )
    reference_cost = results["haproxy"]["machine s/GB, 4 streams"]
    for name, values in results.items():
        cost = values["machine s/GB, 4 streams"]
        print(
            f"  {name:<11}{cost:>11.3f} s/GB{values['idle, 4 streams'] * 100:>7.1f} % idle"
            f"{reference_cost / cost:>10.2f}x"
        )
    for name in ("reconciler", "pool proxy"):
        for key in RATES:
            pairs = zip(rounds[name][key], rounds["haproxy"][key], strict=True)
            print(f"  {name}, {key}, each round: " + ", ".join(f"{ours / theirs:.2f}x" for ours, theirs in pairs))
    reconciler = results["reconciler"]
    reference = results["haproxy"]
    throughput_ok = min(reconciler[k] / reference[k] for k in ("1 stream Gbit/s", "4 streams Gbit/s")) >= 1.2
    rate_ok = reconciler["connections/s"] / reference["connections/s"] >= 0.9
    print(
        f"  targets: throughput >= 1.2x {'met' if throughput_ok else 'MISSED'}; "
        f"connection rate >= 0.9x {'met' if rate_ok else 'MISSED'}"
    )


def report_syscalls(counts: dict[str, dict[str, float]], connections: int) -> None:
    """System calls per connection, each proxy beside HAProxy, most frequent first."""
    names = sorted(
        {call for by_call in counts.values() for call in by_call},
        key=lambda c: -counts["haproxy"].get(c, 0) - counts["reconciler"].get(c, 0),
    )
    print(f"  system calls per connection ({connections} one-request connections, strace -c, every thread):")
    print(f"  {'syscall':<20}" + "".join(f"{name:>12}" for name in counts))
    for call in names:
        if all(by_call.get(call, 0.0) < 0.005 for by_call in counts.values()):
            continue  # fewer than one in 200 connections anywhere: start-up and timers, not the data path
        print(f"  {call:<20}" + "".join(f"{counts[name].get(call, 0.0):>12.2f}" for name in counts))
    print(f"  {'total':<20}" + "".join(f"{sum(counts[name].values()):>12.2f}" for name in counts))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", default="auto", help="the agent's --proxy-workers (auto, 0, 1, 2, ...)")
    parser.add_argument(
        "--syscalls", type=int, default=2000, help="short connections traced with strace -c per proxy (0: skip)"
    )
    args = parser.parse_args()
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: run 'make setup' as root (debian-packages.txt)")
    folder = Path(tempfile.mkdtemp(prefix="reconciler-bench-proxy-"))
    iperf_port, http_port = free_port(), free_port()
    h_iperf, h_http = free_port(), free_port()
    ours = (free_port(), free_port())
    pooled = (free_port(), free_port())
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
        reference = haproxy(
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
        processes.append(reference)
        for port in (iperf_port, http_port, h_iperf, h_http):
            wait_port(port)
        agent = start_agent(folder, iperf_port, http_port, ours, pools=pooled, workers=args.workers)
        processes.append(agent)
        paths = {
            "direct": (iperf_port, http_port),
            "haproxy": (h_iperf, h_http),
            "reconciler": ours,
            "pool proxy": pooled,
        }
        proxies = {"haproxy": reference.pid, "reconciler": agent.pid, "pool proxy": agent.pid}
        pids: dict[str, int | None] = {"direct": None, **proxies}
        # Rounds interleave the paths, so a slow minute of the shared machine hits all of them; the median of the
        # rounds is reported (single runs of HAProxy itself move by 20 % here).
        rounds: dict[str, dict[str, list[float]]] = {name: {} for name in paths}
        for _ in range(args.rounds):
            for name, (throughput_port, rate_port) in paths.items():
                measured = measure(throughput_port, rate_port, pids[name], args.seconds)
                for key, value in measured.items():
                    rounds[name].setdefault(key, []).append(value)
        report(rounds, args)
        if args.syscalls and shutil.which("strace"):
            report_syscalls(
                {name: syscalls_per_connection(paths[name][1], pid, args.syscalls) for name, pid in proxies.items()},
                args.syscalls,
            )
        idle = {name: memory_per_connection(paths[name][1], pid, IDLE_CONNECTIONS) for name, pid in proxies.items()}
        print(
            f"  memory per idle connection ({IDLE_CONNECTIONS} open, resident KiB): "
            + ", ".join(f"{name} {kib:.1f}" for name, kib in idle.items())
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
