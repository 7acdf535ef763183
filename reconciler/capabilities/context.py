"""What capabilities get from the agent: its settings and the seams they observe and act through."""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.settings import AgentSettings
from reconciler.system.clock import Clock
from reconciler.system.commands import CommandRunner, SubprocessRunner
from reconciler.system.network import Connector
from reconciler.system.resolver import Resolver


@dataclass(frozen=True)
class CapabilityContext:
    settings: AgentSettings
    clock: Clock
    resolver: Resolver
    connector: Connector
    runner: CommandRunner = field(default_factory=SubprocessRunner)
