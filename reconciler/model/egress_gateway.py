"""EgressGateway: how a gateway machine enforces allow-lists on the traffic it forwards."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from reconciler.model.common import EACH, OnePerNode, Reference, Resource, Spec
from reconciler.model.values import IPNetworkValue

ALL_LISTS = "*"


class EgressGatewaySpec(Spec):
    """Which allow-lists a gateway enforces, for which clients, and what happens to the rest."""

    allowLists: tuple[str, ...] = Field(
        default=(ALL_LISTS,),
        min_length=1,
        description="Names of EgressAllowList resources; '*' means all of them.",
    )
    clients: tuple[IPNetworkValue, ...] = Field(
        min_length=1, description="Sources whose forwarded traffic is subject to the allow-lists."
    )
    defaultAction: Literal["drop", "reject", "log"] = Field(
        default="drop",
        description="What happens to traffic no list allows; log is audit mode (nothing dropped).",
    )
    internalRanges: tuple[IPNetworkValue, ...] | None = Field(
        default=None,
        description="Replaces the default internal-range list (see the README) for this gateway.",
    )
    masquerade: bool = Field(default=False, description="Source-NAT allowed traffic to the gateway's address.")
    enableForwarding: bool = Field(
        default=False,
        description="Turn IP forwarding on (net.ipv4.ip_forward, net.ipv6.conf.all.forwarding) when it is off; "
        "without it, forwarding off makes the gateway Degraded.",
    )
    cutEstablished: bool = Field(
        default=True,
        description="When an address stops being allowed, delete its connection-tracking entries so that "
        "established connections to it end too.",
    )


class EgressGateway(Resource):
    """A gateway configuration; usually selects gateway nodes with spec.nodes."""

    KIND: ClassVar[str] = "EgressGateway"
    REFERENCES: ClassVar[tuple[Reference, ...]] = (
        Reference(("spec", "allowLists", EACH), "EgressAllowList", besides=ALL_LISTS),
    )
    ONE_PER_NODE: ClassVar[OnePerNode | None] = OnePerNode("holds the egress chains and sets", "gateway")
    kind: Literal["EgressGateway"] = Field(description="EgressGateway.")
    spec: EgressGatewaySpec = Field(description="What the gateway enforces.")
