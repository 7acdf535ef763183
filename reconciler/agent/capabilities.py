"""The fixed registry of capabilities: the whole list of what this agent can enforce.

There is no way to name a Python import path from YAML. Kinds absent here are validated and reported as not
enforced yet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from reconciler.appliers.base import Capability, ConfigurationOnly
from reconciler.appliers.tcp_proxy import TCPProxyCapability
from reconciler.proxy.manager import ProxyManager


@dataclass(frozen=True)
class CapabilityContext:
    """What capabilities share with the agent: today, the proxy manager that runs every proxy app."""

    proxies: ProxyManager


CapabilityFactory = Callable[[CapabilityContext], Capability]

REGISTRY: Mapping[str, CapabilityFactory] = {
    "HealthStrategy": lambda _: ConfigurationOnly("HealthStrategy"),
    "TCPProxy": lambda context: TCPProxyCapability(context.proxies),
}


def build_capabilities(
    context: CapabilityContext, registry: Mapping[str, CapabilityFactory] = REGISTRY
) -> dict[str, Capability]:
    return {kind: factory(context) for kind, factory in registry.items()}
