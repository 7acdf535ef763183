"""The address ranges that are never public: allow-lists refuse them, routes keep them off the gateway.

The list is one constant (documented in the README); EgressGateway and EgressRoute may override it and tests
use that to treat their own ranges as public. Documentation ranges (192.0.2.0/24, 198.51.100.0/24,
203.0.113.0/24, 2001:db8::/32) are deliberately absent so that examples and tests can use them.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable

from reconciler.model.values import IPAddress, IPNetwork

DEFAULT_INTERNAL_RANGES: tuple[str, ...] = (
    "0.0.0.0/8",  # "this network"
    "10.0.0.0/8",  # RFC 1918
    "100.64.0.0/10",  # carrier-grade NAT
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link-local
    "172.16.0.0/12",  # RFC 1918
    "192.0.0.0/24",  # IETF protocol assignments
    "192.168.0.0/16",  # RFC 1918
    "198.18.0.0/15",  # benchmarking
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, and broadcast
    "::/128",  # unspecified
    "::1/128",  # loopback
    "::ffff:0:0/96",  # IPv4-mapped
    "64:ff9b:1::/48",  # local-use NAT64
    "100::/64",  # discard-only
    "fc00::/7",  # unique local
    "fe80::/10",  # link-local
    "ff00::/8",  # multicast
)


class AddressRanges:
    """A set of networks that answers "is this address or network inside / overlapping?" in O(log n).

    Allow-lists of 50,000 entries are checked against it, so it works on integers, not ``ipaddress`` objects.
    """

    def __init__(self, networks: Iterable[IPNetwork | str]) -> None:
        nets = [ipaddress.ip_network(n) if isinstance(n, str) else n for n in networks]
        self.networks: tuple[IPNetwork, ...] = tuple(sorted(nets, key=lambda n: (n.version, n.network_address)))
        self._starts: dict[int, list[int]] = {4: [], 6: []}
        self._ends: dict[int, list[int]] = {4: [], 6: []}
        self._nets: dict[int, list[IPNetwork]] = {4: [], 6: []}
        for net in self.networks:
            self._starts[net.version].append(int(net.network_address))
            self._ends[net.version].append(int(net.broadcast_address))
            self._nets[net.version].append(net)

    def overlapping(self, target: IPAddress | IPNetwork) -> IPNetwork | None:
        """The first listed network that contains the address or overlaps the network, if any."""
        if isinstance(target, ipaddress.IPv4Address | ipaddress.IPv6Address):
            low = high = int(target)
        else:
            low, high = int(target.network_address), int(target.broadcast_address)
        starts, ends, nets = (
            self._starts[target.version],
            self._ends[target.version],
            self._nets[target.version],
        )
        # Ranges may nest, so every range starting at or before `high` is a candidate; lists are short.
        for index in range(bisect.bisect_right(starts, high)):
            if ends[index] >= low:
                return nets[index]
        return None


DEFAULT_RANGES = AddressRanges(DEFAULT_INTERNAL_RANGES)
