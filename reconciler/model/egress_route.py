"""EgressRoute: on client machines, route the public address space via the egress gateway."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from reconciler.model.common import Resource, Spec
from reconciler.model.values import IPAddressValue, IPNetworkValue


class EgressRouteSpec(Spec):
    """Where public traffic goes."""

    gateway: IPAddressValue = Field(description="Next hop for every public prefix.")
    exclude: tuple[IPNetworkValue, ...] = Field(
        default=(), description="Extra ranges kept off the gateway; internal ranges always are."
    )
    internalRanges: tuple[IPNetworkValue, ...] | None = Field(
        default=None,
        description="Replaces the default internal-range list (see the README) for these routes.",
    )


class EgressRoute(Resource):
    """Routes of the public address space via a gateway."""

    KIND: ClassVar[str] = "EgressRoute"
    kind: Literal["EgressRoute"] = Field(description="EgressRoute.")
    spec: EgressRouteSpec = Field(description="The gateway and exclusions.")
