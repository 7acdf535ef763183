"""EgressAllowList: destinations (domains, addresses, networks) that machines may reach on the public internet.

Internal ranges are refused by the loader (it knows which gateways use a list and their ranges); here each entry
is checked on its own: exactly one destination, ports only with a protocol that has ports.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from reconciler.model.common import Resource, Spec, Strict
from reconciler.model.values import (
    DomainPattern,
    IPAddressValue,
    IPNetworkValue,
    PortRangeValue,
    PositiveDuration,
)

Protocol = Literal["tcp", "udp", "any"]


class AllowEntry(Strict):
    """One allowed destination: exactly one of domain, ip or cidr."""

    domain: DomainPattern | None = Field(
        default=None,
        description="A DNS name, re-resolved (A and AAAA) every resolveInterval. '*.example.com' matches exactly "
        "one label below example.com; wildcards are validated but not enforced yet (README, Egress allow-lists).",
    )
    ip: IPAddressValue | None = Field(default=None, description="One IPv4 or IPv6 address.")
    cidr: IPNetworkValue | None = Field(default=None, description="A network in CIDR notation, host bits clear.")
    ports: tuple[PortRangeValue, ...] | None = Field(
        default=None,
        min_length=1,
        description="Destination ports or ranges ('8000-8100'); default every port.",
    )
    protocol: Protocol = Field(default="any", description="tcp, udp or any (with ports: both tcp and udp).")
    protected: bool = Field(default=False, description="Once merged, the entry may never be removed or weakened.")
    comment: str = Field(default="", max_length=500, description="Why the entry exists; shown in status.")
    expires: date | None = Field(default=None, description="The entry stops being enforced after this date.")

    @model_validator(mode="after")
    def _one_destination(self) -> AllowEntry:
        given = [name for name in ("domain", "ip", "cidr") if getattr(self, name) is not None]
        if len(given) != 1:
            found = f"found {', '.join(given)}" if given else "found none"
            raise ValueError(f"an entry needs exactly one of domain, ip, cidr ({found})")
        return self

    @property
    def destination(self) -> str:
        """The entry's identity within its list: 'domain:x', 'ip:x' or 'cidr:x'."""
        for name in ("domain", "ip", "cidr"):
            value = getattr(self, name)
            if value is not None:
                return f"{name}:{value}"
        raise AssertionError("validated entries have a destination")


class EgressAllowListSpec(Spec):
    """The destinations of one allow-list."""

    resolveInterval: PositiveDuration = Field(
        default=timedelta(seconds=60), description="How often domains are re-resolved."
    )
    maxAddressesPerDomain: int = Field(
        default=64,
        ge=1,
        le=4096,
        description="Cap on addresses kept per domain; protects the sets from a hostile DNS.",
    )
    entries: tuple[AllowEntry, ...] = Field(default=(), description="The allowed destinations.")


class EgressAllowList(Resource):
    """A named allow-list; gateways pick lists by name."""

    KIND: ClassVar[str] = "EgressAllowList"
    kind: Literal["EgressAllowList"] = Field(description="EgressAllowList.")
    spec: EgressAllowListSpec = Field(description="The destinations.")
