"""The DNS seam: A and AAAA answers with their TTLs and CNAME chains, from dnspython's asyncio resolver.

The system's resolver configuration (``/etc/resolv.conf``) is used unless nameservers are given; names in the
hosts file are answered from it first, as the C library's resolver does, so ``localhost`` and operators' static
entries keep working. Queries run under a concurrency limit, each with a timeout, and a timed-out query is tried
again (``attempts``) before the name is reported unresolvable.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver

from reconciler.model.observed import IPAddress, NameFacts, ResolvedAddress
from reconciler.model.values import host_and_port

HOSTS_FILE = Path("/etc/hosts")


class Resolver(Protocol):
    async def resolve(self, name: str) -> NameFacts:
        """The addresses of ``name`` (an IP literal answers itself); failures are in ``NameFacts.error``."""
        ...


def literal(name: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return None


def read_hosts(content: str) -> dict[str, tuple[IPAddress, ...]]:
    """A hosts file as name -> addresses, in file order."""
    found: dict[str, list[IPAddress]] = {}
    for line in content.splitlines():
        fields = line.split("#", 1)[0].split()
        address = literal(fields[0]) if fields else None
        if address is None:
            continue
        for name in fields[1:]:
            found.setdefault(name.lower().rstrip("."), []).append(address)
    return {name: tuple(addresses) for name, addresses in found.items()}


def nameserver(text: str) -> dns.nameserver.Do53Nameserver:
    """``IP``, ``IP:PORT`` or ``[v6]:PORT``."""
    address = literal(text)
    if address is not None:
        return dns.nameserver.Do53Nameserver(str(address), 53)
    try:
        host, port = host_and_port(text)
    except ValueError:
        host, port = "", 0
    address = literal(host)
    if address is None or not 0 < port < 65536:
        raise ValueError(f"nameserver '{text}' is not IP, IP:PORT or [IPv6]:PORT")
    return dns.nameserver.Do53Nameserver(str(address), port)


class DnsResolver:
    """The real resolver. ``nameservers`` as ``IP`` or ``IP:PORT``; None: the system's configuration."""

    def __init__(
        self,
        *,
        nameservers: Sequence[str] | None = None,
        timeout: float = 2.0,
        attempts: int = 2,
        concurrency: int = 64,
        hosts_file: Path | None = HOSTS_FILE,
    ) -> None:
        self.timeout = timeout
        self.attempts = attempts
        self.hosts_file = hosts_file
        self._limit = asyncio.Semaphore(concurrency)
        self._hosts_seen: tuple[float, dict[str, tuple[IPAddress, ...]]] = (-1.0, {})
        self._resolver: dns.asyncresolver.Resolver | None = None
        self._nameservers = [nameserver(n) for n in nameservers] if nameservers is not None else None

    def _dns(self) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            resolver = dns.asyncresolver.Resolver(configure=self._nameservers is None)
            if self._nameservers is not None:
                resolver.nameservers = list(self._nameservers)
            resolver.lifetime = self.timeout
            resolver.timeout = self.timeout
            self._resolver = resolver
        return self._resolver

    def _hosts(self, name: str) -> tuple[IPAddress, ...]:
        """The hosts file's answer, re-read only when the file changed."""
        if self.hosts_file is None:
            return ()
        try:
            changed = self.hosts_file.stat().st_mtime
            if changed != self._hosts_seen[0]:
                self._hosts_seen = (changed, read_hosts(self.hosts_file.read_text(errors="replace")))
        except OSError:
            return ()
        return self._hosts_seen[1].get(name.lower().rstrip("."), ())

    async def resolve(self, name: str) -> NameFacts:
        address = literal(name)
        if address is not None:
            return NameFacts(name, (ResolvedAddress(address, 0),))
        static = self._hosts(name)
        if static:
            return NameFacts(name, tuple(ResolvedAddress(a, 0) for a in static))
        async with self._limit:
            v4, v6 = await asyncio.gather(self._query(name, "A"), self._query(name, "AAAA"))
        addresses = v4[0] + v6[0]
        cnames = v4[1] or v6[1]
        error = "" if addresses else (v4[2] or v6[2] or "no A or AAAA record")
        return NameFacts(name, addresses, cnames, error)

    async def _query(self, name: str, rdtype: str) -> tuple[tuple[ResolvedAddress, ...], tuple[str, ...], str]:
        """(addresses, CNAME chain, error) for one record type, from one answer."""
        error = ""
        for _ in range(self.attempts):
            try:
                answer = await self._dns().resolve(name, rdtype, search=False, raise_on_no_answer=False)
            except dns.resolver.NXDOMAIN:
                return (), (), f"{name}: no such name (NXDOMAIN)"
            except dns.resolver.NoNameservers as exc:
                error = f"{name}: no nameserver answered ({exc})"
                continue
            except dns.exception.Timeout:
                error = f"{name}: timed out after {self.timeout:g}s"
                continue
            except dns.exception.DNSException as exc:
                return (), (), f"{name}: {exc}"
            return _addresses(answer, rdtype)
        return (), (), error


def _addresses(answer: dns.resolver.Answer, rdtype: str) -> tuple[tuple[ResolvedAddress, ...], tuple[str, ...], str]:
    wanted = dns.rdatatype.from_text(rdtype)
    cnames: list[str] = []
    ttls: list[int] = []
    addresses: list[ResolvedAddress] = []
    for rrset in answer.response.answer:
        if rrset.rdtype == dns.rdatatype.CNAME:
            cnames += [rdata.target.to_text(omit_final_dot=True) for rdata in rrset]
            ttls.append(rrset.ttl)
        elif rrset.rdtype == wanted:
            # the shortest TTL along the chain: when any link expires, the answer may change
            ttl = min([*ttls, rrset.ttl])
            addresses += [ResolvedAddress(ipaddress.ip_address(rdata.address), ttl) for rdata in rrset]
    return tuple(addresses), tuple(cnames), ""
