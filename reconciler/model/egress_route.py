"""EgressRoute: on client machines, route the public address space via the egress gateway."""

from __future__ import annotations

import ipaddress
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from reconciler.model.common import OnePerNode, Resource, Spec
from reconciler.model.values import IPAddressValue, IPNetworkValue


class EgressRouteSpec(Spec):
    """Where public traffic goes."""

    gateway: IPAddressValue = Field(description="Next hop for every public prefix of its address family.")
    gateway6: IPAddressValue | None = Field(
        default=None,
        description="IPv6 next hop for the public IPv6 space (2000::/3) when gateway is an IPv4 address; "
        "without an IPv6 next hop, IPv6 routes are left alone.",
    )
    exclude: tuple[IPNetworkValue, ...] = Field(
        default=(), description="Extra ranges kept off the gateway; internal ranges always are."
    )
    internalRanges: tuple[IPNetworkValue, ...] | None = Field(
        default=None,
        description="Replaces the default internal-range list (see the README) for these routes.",
    )

    @model_validator(mode="after")
    def _next_hops(self) -> EgressRouteSpec:
        if self.gateway6 is not None:
            if self.gateway6.version != 6:
                raise ValueError(f"gateway6 must be an IPv6 address, not {self.gateway6}")
            if self.gateway.version == 6:
                raise ValueError("gateway is IPv6 already: gateway6 is only for an IPv4 gateway's IPv6 twin")
        return self

    def next_hops(self) -> dict[int, ipaddress.IPv4Address | ipaddress.IPv6Address]:
        """Address family -> next hop."""
        hops: dict[int, ipaddress.IPv4Address | ipaddress.IPv6Address] = {self.gateway.version: self.gateway}
        if self.gateway6 is not None:
            hops[6] = self.gateway6
        return hops


class EgressRoute(Resource):
    """Routes of the public address space via a gateway."""

    KIND: ClassVar[str] = "EgressRoute"
    ONE_PER_NODE: ClassVar[OnePerNode | None] = OnePerNode("routes the public address space", "route")
    kind: Literal["EgressRoute"] = Field(description="EgressRoute.")
    spec: EgressRouteSpec = Field(description="The gateway and exclusions.")
