"""The fixed registry of capabilities: the whole list of what this agent can enforce.

There is no way to name a Python import path from YAML. Kinds absent here are validated and reported as not
enforced yet. This is the one module of ``reconciler.capabilities`` the agent imports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from reconciler.capabilities.base import AnyCapability, Capability, ConfigurationOnly, Observed
from reconciler.capabilities.context import CapabilityContext
from reconciler.capabilities.edge_network import EdgeNetworkCapability
from reconciler.capabilities.egress_gateway import EgressGatewayCapability
from reconciler.capabilities.egress_route import EgressRouteCapability
from reconciler.capabilities.ip_pool import IPPoolCapability
from reconciler.capabilities.state import NoState, StateCodec, read_part
from reconciler.capabilities.tcp_proxy import TCPProxyCapability

CapabilityFactory = Callable[[CapabilityContext], AnyCapability]

REGISTRY: Mapping[str, CapabilityFactory] = {
    "EdgeNetwork": EdgeNetworkCapability.from_context,
    "EgressAllowList": lambda _: ConfigurationOnly("EgressAllowList"),
    "EgressGateway": EgressGatewayCapability.from_context,
    "EgressRoute": EgressRouteCapability.from_context,
    "IPPool": IPPoolCapability.from_context,
    "HealthStrategy": lambda _: ConfigurationOnly("HealthStrategy"),
    "TCPProxy": TCPProxyCapability.from_context,
}


def build_capabilities(
    context: CapabilityContext, registry: Mapping[str, CapabilityFactory] = REGISTRY
) -> dict[str, AnyCapability]:
    return {kind: factory(context) for kind, factory in registry.items()}


__all__ = [
    "REGISTRY",
    "AnyCapability",
    "Capability",
    "CapabilityContext",
    "NoState",
    "Observed",
    "StateCodec",
    "build_capabilities",
    "read_part",
]
