"""The EgressGateway capability through FakeKernel and FakeResolver (no root): it converges and then changes nothing,
repairs drift, carries counters over a reload, cuts connections to what left, shows counters and summaries, and
removes only its own. The same scenario runs against a real kernel in a namespace
(tests/integration/test_egress_gateway_kernel.py); this one lets a change to the glue be checked without root."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, generate_latest

from reconciler.capabilities.egress_gateway import EgressCollector, EgressGatewayCapability
from reconciler.render.firewall import COUNT_OUT, counting_set_name
from reconciler.testing import Driven, FakeClock, FakeKernel, FakeResolver
from tests.integration.egress_kernel import NOW, allow_list, converge, desired, gateway


def _capability(
    kernel: FakeKernel, resolver: FakeResolver | None = None, *, replay: bool = False
) -> Driven[EgressGatewayCapability]:
    resolver = resolver or FakeResolver({"api.partner.example": ("203.0.113.30", "10.1.2.3")})
    return Driven(EgressGatewayCapability(kernel, resolver, FakeClock(), replay=replay))


async def _counters_are_shown(capability: EgressGatewayCapability, out: str) -> None:
    """The counting set's counters in /metrics (read before the scrape) and in GET /egress."""
    await capability.before_scrape()
    registry = CollectorRegistry()
    registry.register(EgressCollector(capability))
    scraped = generate_latest(registry).decode()
    assert 'iptables_bytes_count{hostname="203.0.113.10",ip="203.0.113.10",type="OUTPUT"} 700.0' in scraped
    assert f'reconciler_egress_set_members{{set="{out}"}} 2.0' in scraped
    app = web.Application()
    app.add_routes(capability.routes())
    async with TestClient(TestServer(app)) as client:
        answer = await (await client.get("/egress")).json()
    shown = {"ip": "203.0.113.10", "type": "OUTPUT", "hostname": "203.0.113.10", "packets": 7, "bytes": 700}
    assert shown in answer["destinations"]


def test_converges_repairs_drift_keeps_counters_cuts_and_removes_only_its_own() -> None:
    kernel = FakeKernel()
    kernel.chains[(4, "filter", "FORWARD")].append("-s 192.0.2.99/32 -j ACCEPT")  # someone else's
    kernel.run(["ipset", "create", "unrelated", "hash:ip"], timeout=1)
    capability = _capability(kernel)
    resource = gateway(cutEstablished=True)
    capability.capability.use(
        desired(allow_list({"ip": "203.0.113.10"}, {"domain": "api.partner.example"}, {"ip": "2001:db8::10"}))
    )
    out = counting_set_name("gw", 4, COUNT_OUT)

    async def scenario() -> None:
        assert await converge(capability, resource)
        assert kernel.rules(4, "filter", "FORWARD")[0] == "-j RECON-EGRESS"
        assert kernel.rules(6, "nat", "POSTROUTING") == ["-j RECON-EGRESS-NAT"]
        assert kernel.members(out) == {"203.0.113.10", "203.0.113.30"}  # 10.1.2.3 is internal: refused
        assert "2001:db8::10" in kernel.members(counting_set_name("gw", 6, COUNT_OUT))
        assert any("--match-set" in rule for rule in kernel.rules(4, "filter", "RECON-EGRESS"))
        observed = await capability.observe(resource)
        assert observed.summary["domains"]["api.partner.example"]["refused"] == ["10.1.2.3"]
        assert not any(t.changes for t in capability.plan(resource, observed.facts, now=NOW))
        assert await converge(capability, resource) == []

        kernel.chains[(4, "filter", "FORWARD")].remove("-j RECON-EGRESS")  # drift: the jump deleted,
        kernel.run(["ipset", "flush", out], timeout=1)  # the counting set flushed,
        kernel.chains[(6, "filter", "FORWARD")].insert(0, "-j RECON-EGRESS")  # a second copy of a jump
        repaired = await converge(capability, resource)
        assert {str(t.target).split(" (")[0] for t in repaired} == {f"set {out}", "rules ipv4", "rules ipv6"}
        assert kernel.rules(4, "filter", "FORWARD").count("-j RECON-EGRESS") == 1
        assert kernel.rules(6, "filter", "FORWARD").count("-j RECON-EGRESS") == 1
        assert kernel.members(out) == {"203.0.113.10", "203.0.113.30"}

        kernel.sets[out].members["203.0.113.10"] = (7, 700)
        kernel.connections[4] = ["203.0.113.30", "203.0.113.10"]
        capability.capability.use(desired(allow_list({"ip": "203.0.113.10"}, {"ip": "203.0.113.20"})))
        assert await converge(capability, resource)
        assert kernel.sets[out].members["203.0.113.10"] == (7, 700)  # counters carried over the reload
        assert kernel.members(out) == {"203.0.113.10", "203.0.113.20"}
        assert kernel.connections[4] == ["203.0.113.10"]  # the connection to what left was cut
        assert counting_set_name("gw", 6, COUNT_OUT) not in kernel.sets  # the IPv6 sets went with their members

        await _counters_are_shown(capability.capability, out)

        removal = await capability.capability.removal("gw")
        assert "IPv4 filter jump FORWARD -j RECON-EGRESS" in [c.key for c in removal]
        await capability.forget("gw")
        assert list(kernel.sets) == ["unrelated"]
        assert kernel.rules(4, "filter", "FORWARD") == ["-s 192.0.2.99/32 -j ACCEPT"]
        assert not any(chain.startswith("RECON") for _, _, chain in kernel.chains)

    asyncio.run(scenario())


def test_forwarding_off_degrades_the_gateway_unless_it_may_turn_it_on() -> None:
    kernel = FakeKernel()
    capability = _capability(kernel)
    capability.capability.use(desired(allow_list({"ip": "203.0.113.10"})))

    async def scenario() -> None:
        observed = await capability.observe(gateway())
        assert observed.degraded is not None
        assert observed.degraded[0] == "ForwardingDisabled"
        assert "net.ipv4.ip_forward" in observed.degraded[1]
        await converge(capability, gateway(enableForwarding=True))
        assert kernel.sysctl == {"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1"}
        assert (await capability.observe(gateway())).degraded is None

    asyncio.run(scenario())


def test_a_dry_run_plans_against_nothing_when_the_kernel_cannot_be_read() -> None:
    kernel = FakeKernel(fail=[("ipset",)])
    capability = _capability(kernel, replay=True)
    capability.capability.use(desired(allow_list({"ip": "203.0.113.10"})))

    async def scenario() -> None:
        observed = await capability.observe(gateway())
        assert "planned against nothing installed" in observed.summary["kernel"]
        planned = capability.plan(gateway(), observed.facts, now=NOW)
        assert any(str(t.target).startswith(f"set {counting_set_name('gw', 4, COUNT_OUT)}") for t in planned)

    asyncio.run(scenario())


def test_the_memory_of_answers_survives_a_restart_byte_for_byte() -> None:
    kernel = FakeKernel()
    resolver = FakeResolver({"api.partner.example": ("203.0.113.30",)})
    capability = _capability(kernel, resolver)
    capability.capability.use(desired(allow_list({"domain": "api.partner.example"})))

    async def scenario() -> None:
        await converge(capability, gateway())
        saved = capability.saved()
        assert saved is not None
        restarted = _capability(kernel, resolver)
        restarted.restore(saved)
        assert restarted.saved() == saved
        resolver.answers["api.partner.example"] = ()  # the name stops answering: the address stays (grace)
        restarted.capability.use(desired(allow_list({"domain": "api.partner.example"})))
        await converge(restarted, gateway())
        assert "203.0.113.30" in kernel.members(counting_set_name("gw", 4, COUNT_OUT))

    asyncio.run(scenario())
