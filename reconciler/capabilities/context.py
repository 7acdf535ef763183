"""What capabilities get from the agent: its settings and the seams they observe and act through, all built in
one place (the agent's composition, ``agent/runner``): a capability builds no seam of its own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from reconciler.settings import AgentSettings
from reconciler.system.clock import Clock
from reconciler.system.commands import CommandRunner, SubprocessRunner
from reconciler.system.http import HttpFetcher
from reconciler.system.network import Connector
from reconciler.system.resolver import Resolver
from reconciler.system.routes import RouteTable


@dataclass
class PassRequests:
    """How a capability asks for a pass over one of its resources now (an operator's rescan): the agent binds
    ``handler`` once its reconciler exists; until then, and without an agent, a request does nothing."""

    handler: Callable[[str, str], None] | None = None

    def request(self, kind: str, name: str) -> bool:
        """True when a pass was asked for."""
        if self.handler is None:
            return False
        self.handler(kind, name)
        return True


@dataclass(frozen=True)
class CapabilityContext:
    settings: AgentSettings
    clock: Clock
    resolver: Resolver
    connector: Connector
    fetcher: HttpFetcher  # HTTP fetches pinned to one address (edge probes)
    routes: RouteTable  # the main route table, our protocol only
    runner: CommandRunner = field(default_factory=SubprocessRunner)
    passes: PassRequests = field(default_factory=PassRequests)
    cpus: int = 1  # the CPUs this process may use (system/cpus.usable_cpus), for the proxies' worker count
