"""The gateway capability against the real kernel, in a network namespace this test creates: a first pass
creates our sets and chains, a hundred passes more change nothing (no duplicate rule, ever), drift is repaired (a
deleted jump rule, a flushed set, a duplicated jump), a change is swapped in with counters kept, and removal takes
everything of ours and nothing else."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from reconciler.capabilities.egress_gateway import EgressCollector, EgressGatewayCapability
from reconciler.render.firewall import COUNT_OUT, counting_set_name
from reconciler.system.commands import CommandResult, CommandRunner, NamespaceRunner, SubprocessRunner
from reconciler.testing import Driven, FakeClock, FakeResolver
from tests.conftest import require_root
from tests.integration.egress_kernel import NOW, allow_list, converge, desired, gateway, kernel_state, run_in

pytestmark = pytest.mark.integration


@pytest.fixture
def namespace() -> Iterator[str]:
    require_root("ip", "ipset", "iptables-restore", "conntrack")
    name = f"recon-fw-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


@dataclass
class SlowLists:
    """A runner whose ``ipset list`` answers late, as with 100,000 members."""

    runner: CommandRunner
    delay: float

    def run(self, argv: Sequence[str], **kwargs: Any) -> CommandResult:
        if list(argv[:2]) == ["ipset", "list"]:
            time.sleep(self.delay)
        return self.runner.run(argv, **kwargs)


async def _scrape_while_the_loop_runs(capability: EgressGatewayCapability) -> str:
    """/metrics of the capability with ``ipset list`` answering late; fails unless the loop kept running."""
    capability.runner = SlowLists(capability.runner, delay=0.3)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    running = asyncio.create_task(ticker())
    await capability.before_scrape()
    running.cancel()
    assert ticks >= 10, ticks
    registry = CollectorRegistry()
    registry.register(EgressCollector(capability))
    return generate_latest(registry).decode()


def test_converges_repairs_drift_keeps_counters_and_removes_only_its_own(namespace: str) -> None:
    run_in(namespace, "iptables", "-A", "FORWARD", "-s", "192.0.2.99", "-j", "ACCEPT")
    run_in(namespace, "ipset", "create", "unrelated", "hash:ip")
    resolver = FakeResolver({"api.partner.example": ("203.0.113.30",)})
    capability = Driven(EgressGatewayCapability(NamespaceRunner(SubprocessRunner(), namespace), resolver, FakeClock()))
    resource = gateway()
    lists = allow_list({"ip": "203.0.113.10"}, {"domain": "api.partner.example"}, {"ip": "2001:db8::10"})
    capability.capability.use(desired(lists))

    async def scenario() -> None:
        first = await converge(capability, resource)
        assert first, "the first pass creates our sets and chains"
        state = kernel_state(namespace)
        assert "-A FORWARD -j RECON-EGRESS" in state
        assert "-A POSTROUTING -j RECON-EGRESS-NAT" in state
        assert "203.0.113.30" in state
        assert "2001:db8::10" in state
        for _ in range(100):
            assert await converge(capability, resource) == []
        assert kernel_state(namespace) == state

        run_in(namespace, "iptables", "-D", "FORWARD", "-j", "RECON-EGRESS")
        out = counting_set_name("gw", 4, COUNT_OUT)
        run_in(namespace, "ipset", "flush", out)
        run_in(namespace, "ip6tables", "-I", "FORWARD", "-j", "RECON-EGRESS")  # a second copy
        repaired = await converge(capability, resource)
        assert {str(t.target).split(" (")[0] for t in repaired} == {f"set {out}", "rules ipv4", "rules ipv6"}
        assert kernel_state(namespace) == state

        run_in(namespace, "ipset", "-exist", "add", out, "203.0.113.10", "packets", "7", "bytes", "700")
        capability.capability.use(desired(allow_list({"ip": "203.0.113.10"}, {"ip": "203.0.113.20"})))
        changed = await converge(capability, resource)
        assert changed
        saved = run_in(namespace, "ipset", "list", "-o", "save", out)
        assert "add " + out + " 203.0.113.10 packets 7 bytes 700" in saved, saved  # counters carried over
        assert "203.0.113.20" in saved
        assert "203.0.113.30" not in saved
        assert "2001:db8::10" not in kernel_state(namespace)  # the IPv6 set went with its last member

        # a scrape reads the counters in a thread: the event loop keeps running while the kernel is slow to answer
        scraped = await _scrape_while_the_loop_runs(capability.capability)
        assert 'iptables_bytes_count{hostname="203.0.113.10",ip="203.0.113.10",type="OUTPUT"} 700.0' in scraped

        # every set of ours flushed by hand, and 203.0.113.20 leaves the list before they are back: its
        # connections are cut all the same (the cut was computed from the flushed counting set)
        for flushed in run_in(namespace, "ipset", "list", "-n").split():
            if flushed.startswith("RECON-"):
                run_in(namespace, "ipset", "flush", flushed)
        capability.capability.use(desired(allow_list({"ip": "203.0.113.10"})))
        observed = await capability.observe(resource)
        planned = capability.plan(resource, observed.facts, now=NOW)
        assert [c.key for t in planned if str(t.target).startswith("connections") for c in t.changes] == [
            "203.0.113.20/32"
        ]

        await capability.forget("gw")
        after = kernel_state(namespace)
        assert "RECON-" not in after
        assert "-A FORWARD -s 192.0.2.99/32 -j ACCEPT" in after
        assert "create unrelated hash:ip" in after

    asyncio.run(scenario())


def test_forwarding_off_degrades_the_gateway_unless_it_may_turn_it_on(namespace: str) -> None:
    capability = Driven(
        EgressGatewayCapability(NamespaceRunner(SubprocessRunner(), namespace), FakeResolver(), FakeClock())
    )
    capability.capability.use(desired(allow_list({"ip": "203.0.113.10"})))
    run_in(namespace, "sysctl", "-qw", "net.ipv4.ip_forward=0")
    run_in(namespace, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=0")

    async def scenario() -> None:
        observed = await capability.observe(gateway())
        assert observed.degraded is not None
        assert observed.degraded[0] == "ForwardingDisabled"
        assert "net.ipv4.ip_forward" in observed.degraded[1]
        await converge(capability, gateway(enableForwarding=True))
        assert run_in(namespace, "sysctl", "-n", "net.ipv4.ip_forward").strip() == "1"
        assert run_in(namespace, "sysctl", "-n", "net.ipv6.conf.all.forwarding").strip() == "1"
        assert (await capability.observe(gateway())).degraded is None

    asyncio.run(scenario())
