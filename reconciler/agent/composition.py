"""The one composition root: every seam (clock, files, resolver, connector, HTTP fetcher, route table, command
runner), every default and every part of an agent is built here, and nowhere else; capabilities receive their
seams through ``CapabilityContext``. Tests and benchmarks pass their own seams or capabilities in."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.agent.metrics import Metrics
from reconciler.agent.publishing import StatusPublishing
from reconciler.agent.resource_states import ResourceStates
from reconciler.agent.state_store import StateStore
from reconciler.agent.tick import Reconciler
from reconciler.capabilities.registry import AnyCapability, CapabilityContext, build_capabilities
from reconciler.loading.loader import LoadOptions
from reconciler.settings import AgentSettings
from reconciler.system.clock import Clock, SystemClock
from reconciler.system.cpus import usable_cpus
from reconciler.system.files import FileSystem, LocalFileSystem
from reconciler.system.http import HttpxFetcher
from reconciler.system.network import Connector, TcpConnector
from reconciler.system.resolver import DnsResolver, Resolver
from reconciler.system.routes import NetlinkRouteTable
from reconciler.system.source import DesiredStateSource, StatusPublisher


@dataclass(frozen=True)
class AgentParts:
    settings: AgentSettings
    source: DesiredStateSource
    clock: Clock
    files: FileSystem
    metrics: Metrics
    capabilities: dict[str, AnyCapability]
    states: ResourceStates
    store: StateStore
    publishing: StatusPublishing
    reconciler: Reconciler


def compose(
    settings: AgentSettings,
    *,
    source: DesiredStateSource,
    publisher: StatusPublisher | None = None,
    clock: Clock | None = None,
    capabilities: dict[str, AnyCapability] | None = None,
    metrics: Metrics | None = None,
    load_options: LoadOptions | None = None,
    files: FileSystem | None = None,
    resolver: Resolver | None = None,
    connector: Connector | None = None,
) -> AgentParts:
    """An agent's parts, the state file read back into them; what is not given is the real thing."""
    files = files or LocalFileSystem()
    clock = clock or SystemClock()
    metrics = metrics or Metrics()
    store = StateStore(settings, files, metrics, clock.now())
    context: CapabilityContext | None = None
    if capabilities is None:
        context = CapabilityContext(
            settings,
            clock,
            resolver or DnsResolver(nameservers=settings.nameservers or None),
            connector or TcpConnector(),
            fetcher=HttpxFetcher(clock),
            routes=NetlinkRouteTable(),
            cpus=usable_cpus(),
        )
        capabilities = build_capabilities(context)
    states = ResourceStates(capabilities)
    states.restore(store.saved.capabilities)
    for capability in capabilities.values():
        for collector in capability.collectors():
            metrics.register(collector)
    files.ensure_directory(settings.state_dir)
    reconciler = Reconciler(
        settings,
        source=source,
        clock=clock,
        capabilities=capabilities,
        metrics=metrics,
        saved=store.saved,
        states=states,
        load_options=load_options,
    )
    if context is not None:  # an operator's rescan (a capability's own route) asks for a pass over one resource
        context.passes.handler = lambda kind, name: reconciler.observe((kind, name))
    publishing = StatusPublishing(settings, publisher, clock, metrics)
    return AgentParts(settings, source, clock, files, metrics, capabilities, states, store, publishing, reconciler)
