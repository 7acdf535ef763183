"""The TCPProxy capability in-process (no root, no outside program; targets and listeners on loopback, names through
FakeResolver): resource -> plan -> running apps -> observed -> no more changes; its part of the state file, its
metrics and a settings change carried out by the plan."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from prometheus_client import CollectorRegistry

from reconciler.capabilities.tcp_proxy import TCPProxyCapability
from reconciler.errors import is_retryable
from reconciler.model import TCPProxy
from reconciler.planning.tcp_proxy import desired_apps
from reconciler.proxy.manager import ProxyManager
from reconciler.status.state_file import CapabilityState
from reconciler.testing import Driven, FakeResolver
from tests.conftest import descriptors_exhausted
from tests.integration.agents import free_port


def _proxy(ports: list[int], target_port: int, retries: int = 1) -> TCPProxy:
    return TCPProxy.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "TCPProxy",
            "metadata": {"name": "apps"},
            "spec": {
                "balance": "random",
                "connectTimeout": "2s",
                "retries": retries,
                "idleTimeout": "1m",
                "healthCheck": {"interval": "1s", "timeout": "500ms", "send": "PING", "expect": "PONG"},
                "outlierDetection": {"consecutiveFailures": 7, "ejectFor": "45s"},
                "apps": [
                    {
                        "name": "web",
                        "listen": [f"127.0.0.1:{p}" for p in ports],
                        "targets": [f"127.0.0.1:{target_port}", {"address": "192.0.2.10:80", "weight": 0}],
                        "balance": "least-connections",
                    }
                ],
            },
        }
    )


def test_settings_are_carried_into_the_app_config() -> None:
    """Timeouts, retries, balance (app over proxy), checks with send/expect and weights reach the proxy."""
    [config] = desired_apps(_proxy([5001], 7001)).values()
    assert config.key == "apps/web"
    assert config.settings.balance == "least-connections"
    assert (config.settings.connect_timeout, config.settings.retries, config.settings.idle_timeout) == (2.0, 1, 60.0)
    assert (config.settings.eject_after, config.settings.eject_for) == (7, 45.0)
    assert config.checks is not None
    assert (config.checks.send, config.checks.expect, config.checks.timeout) == (b"PING", b"PONG", 0.5)
    assert config.targets == (("127.0.0.1:7001", 1), ("192.0.2.10:80", 0))


def test_apply_converges_a_settings_change_is_applied_and_forget_removes() -> None:
    """After apply, observing plans no change; a new retries value is planned and carried out; forget stops all."""

    async def scenario() -> None:
        manager = ProxyManager(drain=0.1, resolver=FakeResolver())
        capability = Driven(TCPProxyCapability(manager))
        ports, target = [free_port(), free_port()], free_port()
        proxy = _proxy(ports, target)
        [plan] = capability.plan(proxy, (await capability.observe(proxy)).facts, now=0)
        assert len(plan.changes) == 5  # two listeners, two targets, the settings
        await capability.apply(proxy, plan)
        observed = await capability.observe(proxy)
        assert all(not p.changes for p in capability.plan(proxy, observed.facts, now=0))
        assert set(observed.summary["apps"]) == {"apps/web"}
        assert capability.capability.observe_interval(proxy) is not None

        changed = _proxy(ports, target, retries=4)
        [plan] = capability.plan(changed, (await capability.observe(changed)).facts, now=0)
        assert [c.key for c in plan.changes] == ["settings"]
        await capability.apply(changed, plan)
        config = manager.config("apps/web")
        assert config is not None
        assert config.settings.retries == 4

        await capability.forget("apps")
        assert manager.running == {}
        await manager.close()

    asyncio.run(scenario())


def test_down_targets_are_saved_and_restored() -> None:
    """A resource's state names its apps' targets that are down; a new process starts them down (this one from a
    version 1 state file, where every resource's apps were kept together) and writes them down again."""
    manager = ProxyManager(drain=0.1, resolver=FakeResolver())
    capability = Driven(TCPProxyCapability(manager))
    target = free_port()  # nothing listens there: it stays down
    down = f"127.0.0.1:{target}"
    capability.restore(CapabilityState(1, {"targetsDown": {"apps/web": [down]}, "apps": {}}))
    assert capability.state("apps").targetsDown == {"apps/web": [down]}
    assert len(capability.capability.collectors()) == 1

    async def scenario() -> None:
        proxy = _proxy([free_port()], target)
        await capability.cycle(proxy, now=0)
        running = manager.snapshot()["apps/web"]
        assert {t.address: (t.health, t.reason) for t in running.targets}[down] == ("down", "down before the restart")
        await capability.observe(proxy)
        saved = capability.saved()
        assert saved is not None
        assert saved.state["resources"]["apps"]["targetsDown"] == {"apps/web": [down]}
        await capability.forget("apps")
        await manager.close()

    asyncio.run(scenario())


def test_running_configs_are_recorded_and_a_dry_run_observes_them() -> None:
    """What apps ran with is in the saved part; a dry-run capability restored from it observes those apps, with
    send/expect bytes intact and target health unknown."""

    async def scenario() -> None:
        manager = ProxyManager(drain=0.1, resolver=FakeResolver())
        capability = Driven(TCPProxyCapability(manager))
        proxy = _proxy([free_port()], free_port())
        [plan] = capability.plan(proxy, (await capability.observe(proxy)).facts, now=0)
        await capability.apply(proxy, plan)
        await capability.observe(proxy)  # as the agent does after an apply: the state records what runs
        saved = capability.saved()
        await manager.close()
        assert saved is not None
        replay = Driven(TCPProxyCapability(ProxyManager(drain=0.1, resolver=FakeResolver()), replay=True))
        replay.restore(CapabilityState(saved.version, json.loads(json.dumps(saved.state))))
        observed = await replay.observe(proxy)
        assert all(not p.changes for p in replay.plan(proxy, observed.facts, now=0))
        [app] = observed.facts.apps.values()
        assert app.checks is not None
        assert (app.checks.send, app.checks.expect) == (b"PING", b"PONG")
        assert {t.health for t in app.targets} == {"unknown"}
        assert replay.saved() == saved  # a dry run records nothing new

    asyncio.run(scenario())


def _checked(target: str, interval: str) -> TCPProxy:
    """One app with one target, checked every ``interval`` (rise and fall 1: one check decides)."""
    return TCPProxy.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "TCPProxy",
            "metadata": {"name": "apps"},
            "spec": {
                "healthCheck": {"interval": interval, "timeout": "100ms", "rise": 1, "fall": 1},
                "apps": [{"name": "web", "listen": [f"127.0.0.1:{free_port()}"], "targets": [target]}],
            },
        }
    )


def test_targets_are_unknown_until_checked_and_an_app_without_a_healthy_target_is_degraded() -> None:
    """Before the first check a target is 'unknown' (and gets traffic); once every target is down the observation
    says Degraded, naming the app and why each target is down."""

    async def scenario() -> None:
        manager = ProxyManager(drain=0.1, resolver=FakeResolver())
        capability = Driven(TCPProxyCapability(manager))
        proxy = _checked(f"127.0.0.1:{free_port()}", "100ms")
        [plan] = capability.plan(proxy, (await capability.observe(proxy)).facts, now=0)
        await capability.apply(proxy, plan)
        first = await capability.observe(proxy)
        [target] = first.summary["apps"]["apps/web"]["targets"]
        assert target["health"] == "unknown"
        assert first.degraded is None
        for _ in range(50):
            observed = await capability.observe(proxy)
            if observed.degraded is not None:
                break
            await asyncio.sleep(0.05)
        assert observed.degraded is not None
        reason, message = observed.degraded
        assert reason == "NoHealthyTarget"
        assert message.startswith("app apps/web has no healthy target (down: 127.0.0.1:")
        assert "Connection refused" in message
        await manager.close()

    asyncio.run(scenario())


def test_a_port_in_use_fails_the_apply_and_the_next_pass_binds_it_once_free() -> None:
    """A listen port held by another program: the apply fails with the reason (retryable), the observation still
    plans the missing listener, and once the port is free the same plan binds it."""

    async def scenario() -> None:
        manager = ProxyManager(drain=0.1, resolver=FakeResolver())
        capability = Driven(TCPProxyCapability(manager))
        blocker = socket.create_server(("127.0.0.1", 0))  # no SO_REUSEPORT: ours cannot share it
        port, target = blocker.getsockname()[1], free_port()
        proxy = _proxy([port], target)
        try:
            [plan] = capability.plan(proxy, (await capability.observe(proxy)).facts, now=0)
            with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}: Address already in use"):
                await capability.apply(proxy, plan)
            assert is_retryable(OSError())
            observed = await capability.observe(proxy)
            [why] = observed.summary["apps"]["apps/web"]["listenErrors"].values()  # in the status document too
            assert why.startswith("Address already in use")
            [again] = capability.plan(proxy, observed.facts, now=0)
            assert [c.key for c in again.changes] == [f"listen 127.0.0.1:{port}"]
            blocker.close()
            await capability.apply(proxy, again)
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                pass
            assert all(not p.changes for p in capability.plan(proxy, (await capability.observe(proxy)).facts, now=0))
        finally:
            blocker.close()
            await manager.close()

    asyncio.run(scenario())


def test_checks_this_machine_cannot_make_are_shown_as_its_own_problem() -> None:
    """Out of descriptors, the health checks of a healthy target fail on this machine: the target stays up, and
    status (checksNotMade, Degraded ChecksNotMade) and the metrics say it is the agent's own problem."""

    async def scenario() -> None:
        server = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", 0)
        target = server.sockets[0].getsockname()[1]
        manager = ProxyManager(drain=0.1, resolver=FakeResolver())
        capability = Driven(TCPProxyCapability(manager))
        proxy = _checked(f"127.0.0.1:{target}", "200ms")
        [plan] = capability.plan(proxy, (await capability.observe(proxy)).facts, now=0)
        await capability.apply(proxy, plan)
        await asyncio.sleep(0.5)
        assert (await capability.observe(proxy)).summary["apps"]["apps/web"]["targets"][0]["health"] == "up"
        with descriptors_exhausted():
            await asyncio.sleep(0.5)  # two rounds or so: fall is 1, one counted failure would take it down
        observed = await capability.observe(proxy)
        app = observed.summary["apps"]["apps/web"]
        assert app["targets"][0]["health"] == "up"
        assert "Too many open files" in app["checksNotMade"]
        assert observed.degraded is not None
        reason, message = observed.degraded
        assert reason == "ChecksNotMade"
        assert message.startswith("health checks cannot be made on this machine (its own problem, not the targets')")
        registry = CollectorRegistry()
        for collector in capability.capability.collectors():
            registry.register(collector)
        value = registry.get_sample_value("reconciler_proxy_checks_not_made_total", {"app": "apps/web"})
        assert value is not None
        assert value >= 1
        await manager.close()
        server.close()

    asyncio.run(scenario())
