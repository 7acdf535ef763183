"""Egress end to end in a real topology of network namespaces this test builds:

    client (10.88.0.2, fd88::2) ── gateway (10.88.0.1, fd88::1 | 203.0.113.1, 2001:db8:1::1) ── internet
                                                                  (203.0.113.10 .20 .30 .40, 2001:db8:1::10 ::20;
                                                                   dnsmasq on 203.0.113.53; an echo server on :80)

The real agent runs in the gateway namespace (EgressGateway) and in the client namespace (EgressRoute), both
following a bare git repository; the test reaches their APIs over a link-local management link. Traffic only
ever goes to addresses inside these namespaces. 203.0.113.0/24 and 2001:db8::/32 are public for the agent (the
documentation ranges are deliberately not internal).
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require_root
from tests.integration.agents import AgentProcess, Remote, wait_for
from tests.integration.dns_server import dnsmasq
from tests.integration.egress_kernel import kernel_state, run_in

pytestmark = pytest.mark.integration

PROBE = str(Path(__file__).with_name("netprobe.py"))
SERVERS = ["203.0.113.10", "203.0.113.20", "203.0.113.30", "203.0.113.40", "203.0.113.53"]
SERVERS6 = ["2001:db8:1::10", "2001:db8:1::20"]

GATEWAY = """apiVersion: reconciler/v1
kind: EgressGateway
metadata: {name: gw}
spec:
  nodes: [gw-1]
  clients: [10.88.0.0/24, "fd88::/64"]
  defaultAction: reject
  masquerade: true
  enableForwarding: true
  safety: {maxChangePercent: 100}
---
apiVersion: reconciler/v1
kind: EgressRoute
metadata: {name: via-gw}
spec:
  nodes: [client-1]
  gateway: 10.88.0.1
  gateway6: "fd88::1"
"""

LIST = """apiVersion: reconciler/v1
kind: EgressAllowList
metadata: {{name: partners}}
spec:
  resolveInterval: 1s
  maxAddressesPerDomain: 4096
  entries:
    - ip: 203.0.113.10
    - domain: app.partner.test
    - domain: evil.partner.test
    - ip: "2001:db8:1::10"
    - {{ip: 203.0.113.40, ports: [443], protocol: tcp}}
{extra}"""


def desired(*extra_ips: str) -> dict[str, str]:
    extra = "".join(f'    - ip: "{ip}"\n' for ip in extra_ips)
    return {"egress/gateway.yaml": GATEWAY, "egress/partners.yaml": LIST.format(extra=extra)}


def _line(process: subprocess.Popen[str], timeout: float) -> str:
    """The next line ``process`` prints, or '' when none comes within ``timeout`` (a test fails, never hangs)."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    return process.stdout.readline().strip() if ready else ""


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True)


@dataclass
class World:
    client: str
    gateway: str
    internet: str
    remote: Remote
    hosts: Path
    gw: AgentProcess
    cl: AgentProcess

    def reach(self, host: str, port: int = 80) -> bool:
        done = subprocess.run(
            ["ip", "netns", "exec", self.client, sys.executable, PROBE, "reach", host, str(port)],
            capture_output=True,
            timeout=10,
            check=False,
        )
        return done.returncode == 0

    def hold(self, host: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.client, sys.executable, PROBE, "hold", host, "80"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert _line(process, 5) == "up"
        return process

    def route_via(self, address: str) -> str:
        argv = ["ip", "-n", self.client, "route", "get", address]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        found = re.search(r" via (\S+)", done.stdout)
        return found.group(1) if found else ""

    def commit(self, files: dict[str, str]) -> str:
        revision = self.remote.commit(files)
        wait_for(lambda: self.gw.applied() == revision, timeout=20, what="the gateway to apply the commit")
        return revision


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    require_root("ip", "ipset", "iptables-restore", "conntrack")
    root = tmp_path_factory.mktemp("egress")
    tag = str(os.getpid())[-5:]
    client, gateway, internet = f"rc-c{tag}", f"rc-g{tag}", f"rc-i{tag}"
    octet = os.getpid() % 250
    created: list[str] = []
    processes: list[subprocess.Popen[bytes]] = []
    agents: list[AgentProcess] = []
    try:
        for name in (client, gateway, internet):
            _ip("netns", "add", name)
            created.append(name)
            _ip("-n", name, "link", "set", "lo", "up")
        _ip("link", "add", "c0", "netns", client, "type", "veth", "peer", "name", "g0", "netns", gateway)
        _ip("link", "add", "g1", "netns", gateway, "type", "veth", "peer", "name", "i0", "netns", internet)
        for host_side, namespace, last in ((f"rcg{tag}", gateway, 2), (f"rcc{tag}", client, 6)):
            _ip("link", "add", host_side, "type", "veth", "peer", "name", "m0", "netns", namespace)
            _ip("addr", "add", f"169.254.{octet}.{last - 1}/30", "dev", host_side)
            _ip("link", "set", host_side, "up")
            _ip("-n", namespace, "addr", "add", f"169.254.{octet}.{last}/30", "dev", "m0")
            _ip("-n", namespace, "link", "set", "m0", "up")
        addresses = {
            (client, "c0"): ["10.88.0.2/24", "fd88::2/64"],
            (gateway, "g0"): ["10.88.0.1/24", "fd88::1/64"],
            (gateway, "g1"): ["203.0.113.1/24", "2001:db8:1::1/64"],
            (internet, "i0"): [*(f"{a}/24" for a in SERVERS), *(f"{a}/64" for a in SERVERS6)],
        }
        for (namespace, device), nets in addresses.items():
            for net in nets:
                _ip("-n", namespace, "addr", "add", net, "dev", device, *(["nodad"] if ":" in net else []))
            _ip("-n", namespace, "link", "set", device, "up")
        _ip("netns", "exec", gateway, "sysctl", "-qw", "net.ipv4.ip_forward=0")  # the agent turns it on
        server = subprocess.Popen(
            ["ip", "netns", "exec", internet, sys.executable, PROBE, "serve", "80"], stdout=subprocess.PIPE
        )
        processes.append(server)
        assert server.stdout is not None
        assert server.stdout.readline().strip() == b"listening"
        hosts = root / "hosts"
        hosts.mkdir()
        (hosts / "records").write_text("203.0.113.30 app.partner.test\n10.1.2.3 evil.partner.test\n")
        remote = Remote(root)
        remote.commit(desired())
        # user=root: dnsmasq would drop to nobody, who cannot read the test's temporary folder
        with dnsmasq([f"hostsdir={hosts}", "user=root"], netns=internet, listen="203.0.113.53", port=53):
            common = ("--interval", "1s", "--status-interval", "1s")
            gw = AgentProcess(
                remote,
                root / "gw-state",
                node="gw-1",
                netns=gateway,
                host=f"169.254.{octet}.2",
                nameserver="203.0.113.53",
                args=common,
            )
            cl = AgentProcess(
                remote, root / "client-state", node="client-1", netns=client, host=f"169.254.{octet}.6", args=common
            )
            agents += [gw.start(), cl.start()]
            yield World(client, gateway, internet, remote, hosts, gw, cl)
    finally:
        for agent in agents:
            agent.stop()
        for process in processes:
            process.kill()
            process.wait()
            if process.stdout is not None:
                process.stdout.close()
        for name in created:
            subprocess.run(["ip", "netns", "delete", name], check=False)
        for host_side in (f"rcg{tag}", f"rcc{tag}"):
            subprocess.run(["ip", "link", "delete", host_side], check=False, capture_output=True)


def _metric(text: str, ip: str, kind: str, direction: str) -> int:
    found = re.search(
        rf'^iptables_{kind}_count\{{[^}}]*ip="{re.escape(ip)}"[^}}]*type="{direction}"[^}}]*\}} (\S+)$', text, re.M
    )
    return int(float(found.group(1))) if found else -1


def test_routes_allow_lists_dns_counters_and_removal(world: World) -> None:
    # the route agent: public space via the gateway, internal ranges not
    wait_for(lambda: world.route_via("203.0.113.10") == "10.88.0.1", timeout=20, what="the client's routes")
    for public in ("172.64.0.1", "172.200.0.1", "8.8.8.8"):
        assert world.route_via(public) == "10.88.0.1", public
    for internal in ("10.1.2.3", "172.16.0.1", "192.168.1.1"):
        assert world.route_via(internal) != "10.88.0.1", internal
    assert world.route_via("2001:db8:1::10") == "fd88::1"

    # allowed and refused, IPv4 and IPv6; a domain's answer is allowed; a rebinding answer is refused
    wait_for(lambda: world.reach("203.0.113.10"), timeout=20, what="203.0.113.10 to be reachable")
    assert not world.reach("203.0.113.20")
    assert world.reach("203.0.113.30")  # app.partner.test
    assert world.reach("2001:db8:1::10")
    assert not world.reach("2001:db8:1::20")
    gateway_status = next(r for r in world.gw.status()["resources"] if r["kind"] == "EgressGateway")
    assert gateway_status["observations"]["domains"]["evil.partner.test"]["refused"] == ["10.1.2.3"]

    # per-destination counters at the first scrape
    size = 200_000
    subprocess.run(
        ["ip", "netns", "exec", world.client, sys.executable, PROBE, "send", "203.0.113.10", "80", str(size)],
        check=True,
        timeout=20,
    )
    metrics = world.gw.metrics()
    assert _metric(metrics, "203.0.113.10", "bytes", "OUTPUT") >= size
    assert _metric(metrics, "203.0.113.10", "bytes", "INPUT") >= size
    assert _metric(metrics, "203.0.113.10", "packets", "OUTPUT") > 0
    code, body = world.gw.request("/egress")
    assert code == 200
    rows = {(row["ip"], row["type"]): row for row in json.loads(body)["destinations"]}
    assert rows["203.0.113.10", "OUTPUT"]["bytes"] >= size
    assert rows["203.0.113.30", "OUTPUT"]["hostname"] == "app.partner.test"

    # refused packets are not counted under an allowed destination: 203.0.113.40 is allowed on tcp/443 only
    assert not world.reach("203.0.113.40", 80)
    assert _metric(world.gw.metrics(), "203.0.113.40", "packets", "OUTPUT") == 0

    # added in git: reachable; removed: unreachable, and its established connection is cut, not the others'
    world.commit(desired("203.0.113.20"))
    wait_for(lambda: world.reach("203.0.113.20"), timeout=5, what="203.0.113.20 after it was added")
    kept, removed = world.hold("203.0.113.10"), world.hold("203.0.113.20")
    try:
        world.commit(desired())
        wait_for(lambda: not world.reach("203.0.113.20"), timeout=5, what="203.0.113.20 to be refused")
        assert _line(removed, 5) == "cut"
        assert kept.poll() is None  # still up
    finally:
        for held in (kept, removed):
            held.kill()
            held.wait()
            if held.stdout is not None:
                held.stdout.close()

    # the domain follows its DNS answer
    (world.hosts / "records").write_text("203.0.113.40 app.partner.test\n10.1.2.3 evil.partner.test\n")
    wait_for(lambda: world.reach("203.0.113.40"), timeout=10, what="the new answer to be allowed")
    wait_for(lambda: not world.reach("203.0.113.30"), timeout=10, what="the old answer to leave after its grace")


def test_drift_is_repaired_and_a_killed_agent_converges_without_stopping_traffic(world: World) -> None:
    wait_for(lambda: world.reach("203.0.113.10"), timeout=20, what="203.0.113.10 to be reachable")
    steady = kernel_state(world.gateway)
    run_in(world.gateway, "iptables", "-D", "FORWARD", "-j", "RECON-EGRESS")
    sets = [line.split()[1] for line in run_in(world.gateway, "ipset", "save").splitlines() if " counters" in line]
    run_in(world.gateway, "ipset", "flush", sets[0])
    wait_for(lambda: kernel_state(world.gateway) == steady, timeout=5, what="the jump rule and the set to return")

    many = [f"45.{i // 250}.{i % 250}.1" for i in range(20_000)]
    world.commit(desired(*many))
    full = kernel_state(world.gateway)
    small = world.commit(desired())
    assert world.gw.applied() == small
    world.remote.commit(desired(*many))
    wait_for(
        lambda: (
            "45.0.0.1" in run_in(world.gateway, "ipset", "list", sets[0])
            or (world.gw.process is not None and world.gw.process.poll() is not None)
        ),
        timeout=20,
        interval=0.01,
        what="the apply to start",
    )
    world.gw.signal(signal.SIGKILL)
    world.gw.wait(timeout=5)
    assert world.reach("203.0.113.10")  # the rules stay in the kernel while the agent is down
    world.gw.start()
    wait_for(lambda: kernel_state(world.gateway) == full, timeout=30, what="the restarted agent to converge")
