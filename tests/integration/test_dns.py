"""The Resolver seam against a real DNS server (dnsmasq on loopback): A and AAAA with TTLs, CNAME chains from one
answer, NXDOMAIN, a dead server, the hosts file and IP literals."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.observers.dns import resolve_endpoint
from reconciler.system.resolver import DnsResolver, read_hosts
from tests.integration.agents import free_port
from tests.integration.dns_server import dnsmasq

pytestmark = pytest.mark.integration

RECORDS = [
    "host-record=both.test,192.0.2.10,2001:db8::10,300",
    "host-record=v4.test,198.51.100.7,120",
    "cname=alias.test,both.test,60",
    "cname=deep.test,alias.test,90",
]


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    with dnsmasq(RECORDS) as port:
        yield port


def _resolver(port: int, hosts: Path | None = None) -> DnsResolver:
    return DnsResolver(nameservers=[f"127.0.0.1:{port}"], timeout=1.0, hosts_file=hosts)


def test_a_and_aaaa_with_their_ttls(server: int) -> None:
    facts = asyncio.run(_resolver(server).resolve("both.test"))
    assert facts.error == ""
    assert [str(a.address) for a in facts.addresses] == ["192.0.2.10", "2001:db8::10"]
    assert {a.ttl for a in facts.addresses} == {300}
    only_v4 = asyncio.run(_resolver(server).resolve("v4.test"))
    assert [(str(a.address), a.ttl) for a in only_v4.addresses] == [("198.51.100.7", 120)]


def test_a_cname_chain_is_taken_from_one_answer_with_the_shortest_ttl(server: int) -> None:
    facts = asyncio.run(_resolver(server).resolve("deep.test"))
    assert facts.cnames == ("alias.test", "both.test")
    assert {str(a.address) for a in facts.addresses} == {"192.0.2.10", "2001:db8::10"}
    assert facts.ttl == 60  # the alias expires first, and with it the answer


def test_an_unknown_name_and_a_dead_server_are_reported_not_raised(server: int) -> None:
    missing = asyncio.run(_resolver(server).resolve("missing.test"))
    assert (missing.addresses, "NXDOMAIN" in missing.error) == ((), True)
    dead = asyncio.run(_resolver(free_port()).resolve("both.test"))
    assert dead.addresses == ()
    assert dead.error


def test_literals_and_the_hosts_file_need_no_server(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("# comment\n127.0.0.1 localhost static.test\n::1 localhost\n")
    resolver = _resolver(free_port(), hosts)
    facts = asyncio.run(resolver.resolve("static.test"))
    assert [str(a.address) for a in facts.addresses] == ["127.0.0.1"]
    assert asyncio.run(resolver.resolve("2001:db8::1")).addresses[0].address == ipaddress.ip_address("2001:db8::1")
    assert read_hosts(hosts.read_text())["localhost"] == (
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    )


def test_a_target_resolves_to_its_first_address(server: int) -> None:
    endpoint = asyncio.run(resolve_endpoint(_resolver(server), "alias.test:7001"))
    assert (endpoint.host, endpoint.port) == ("192.0.2.10", 7001)
    with pytest.raises(OSError, match="NXDOMAIN"):
        asyncio.run(resolve_endpoint(_resolver(server), "missing.test:1"))
