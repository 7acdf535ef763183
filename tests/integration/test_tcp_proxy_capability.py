"""The TCPProxy capability in-process: resource -> app configs -> running apps -> observed -> no more changes."""

from __future__ import annotations

import asyncio

import pytest

from reconciler.appliers.tcp_proxy import TCPProxyCapability, app_configs
from reconciler.model import TCPProxy
from reconciler.proxy.manager import ProxyManager
from tests.integration.agents import free_port

pytestmark = pytest.mark.integration


def _proxy(ports: list[int], target_port: int) -> TCPProxy:
    return TCPProxy.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "TCPProxy",
            "metadata": {"name": "apps"},
            "spec": {
                "balance": "random",
                "connectTimeout": "2s",
                "retries": 1,
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
    [config] = app_configs(_proxy([5001], 7001)).values()
    assert config.key == "apps/web"
    assert config.settings.balance == "least-connections"
    assert (config.settings.connect_timeout, config.settings.retries, config.settings.idle_timeout) == (2.0, 1, 60.0)
    assert (config.settings.eject_after, config.settings.eject_for) == (7, 45.0)
    assert config.checks is not None
    assert (config.checks.send, config.checks.expect, config.checks.timeout) == (b"PING", b"PONG", 0.5)
    assert config.targets == (("127.0.0.1:7001", 1), ("192.0.2.10:80", 0))


def test_apply_converges_and_forget_removes() -> None:
    """After apply, observing plans no change; forget closes every app of the resource."""

    async def scenario() -> None:
        manager = ProxyManager(drain=0.1)
        capability = TCPProxyCapability(manager)
        proxy = _proxy([free_port(), free_port()], free_port())
        [plan] = capability.plan(proxy, await capability.observe(proxy), now=0)
        assert len(plan.changes) == 4
        await capability.apply(proxy, plan)
        observed = await capability.observe(proxy)
        assert all(not p.changes for p in capability.plan(proxy, observed, now=0))
        assert observed.summary is not None
        assert set(observed.summary["apps"]) == {"apps/web"}
        assert capability.observe_interval(proxy) is not None
        await capability.forget("TCPProxy", "apps")
        assert manager.running == {}

    asyncio.run(scenario())
