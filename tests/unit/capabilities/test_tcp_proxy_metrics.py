"""The TCPProxy's metrics from what the proxy manager reports, read at scrape time: counters per app, bytes by
direction, target health (1 up, 0 down, -1 unknown), checks not made, ejections and worker restarts."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from reconciler.capabilities.tcp_proxy_metrics import ProxyCollector
from reconciler.model.observed import ProxyAppFacts, ProxyCounters, ProxyTargetFacts
from reconciler.model.proxy_config import AppSettings


def test_every_app_and_target_is_a_series_read_at_scrape_time() -> None:
    apps = {
        "apps/web": ProxyAppFacts(
            key="apps/web",
            listen=("127.0.0.1:5001",),
            targets=(
                ProxyTargetFacts("192.0.2.10:7001", 1, "up", "192.0.2.10:7001", active=3),
                ProxyTargetFacts("192.0.2.11:7001", 1, "down", "192.0.2.11:7001", ejected=True),
                ProxyTargetFacts("db.test:7002", 2, "unknown", None),
            ),
            settings=AppSettings(),
            checks=None,
            counters=ProxyCounters(connections=10, active=3, bytes_in=100, bytes_out=2000, no_backend=1, at_limit=1),
            checks_not_made=4,
        )
    }
    restarts = [0]
    registry = CollectorRegistry()
    registry.register(ProxyCollector(lambda: apps, lambda: restarts[0]))
    value = registry.get_sample_value
    web = {"app": "apps/web"}
    assert value("reconciler_proxy_connections_total", web) == 10
    assert value("reconciler_proxy_no_backend_total", web) == 1
    assert value("reconciler_proxy_bytes_total", {**web, "direction": "in"}) == 100
    assert value("reconciler_proxy_bytes_total", {**web, "direction": "out"}) == 2000
    assert (value("reconciler_proxy_active_connections", web), value("reconciler_proxy_at_limit", web)) == (3, 1)
    assert value("reconciler_proxy_checks_not_made_total", web) == 4
    health = [
        value("reconciler_proxy_target_up", {**web, "target": t})
        for t in ("192.0.2.10:7001", "192.0.2.11:7001", "db.test:7002")
    ]
    assert health == [1, 0, -1]
    assert value("reconciler_proxy_target_active_connections", {**web, "target": "192.0.2.10:7001"}) == 3
    assert value("reconciler_proxy_target_ejected", {**web, "target": "192.0.2.11:7001"}) == 1
    assert value("reconciler_proxy_worker_restarts_total") == 0
    restarts[0] = 2  # read at the scrape, not when the collector was made
    apps["apps/web"] = ProxyAppFacts("apps/web", (), (), AppSettings(), None, counters=ProxyCounters(connections=11))
    assert value("reconciler_proxy_worker_restarts_total") == 2
    assert value("reconciler_proxy_connections_total", web) == 11
