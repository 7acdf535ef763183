"""The Grafana dashboard against a real Prometheus scraping real agents: one on loopback serving traffic (a TCP
proxy app, an IP pool reading an access log, an edge network probing local edges) and an egress gateway in a
network namespace this test creates (its rules stay there; Prometheus reaches it over a link-local management
link). Every panel's query is evaluated through Prometheus's HTTP API and must parse and return data."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_root
from tests.integration.agents import AgentProcess, Remote, free_port
from tests.integration.edge_server import PATH, EdgeServers

pytestmark = pytest.mark.integration

DASHBOARD = Path(__file__).resolve().parents[2] / "runtime" / "grafana" / "reconciler.json"
EDGES = ["127.0.0.81", "127.0.0.82", "127.0.0.83"]
BODY = b"edgemanage object\n"
GATEWAY = """apiVersion: reconciler/v1
kind: EgressGateway
metadata: {name: gw}
spec:
  nodes: [dash-gw]
  clients: [10.89.0.0/24]
  safety: {maxChangePercent: 100}
---
apiVersion: reconciler/v1
kind: EgressAllowList
metadata: {name: partners}
spec:
  entries:
    - ip: 203.0.113.10
    - domain: app.partner.test
"""

DESIRED = """apiVersion: reconciler/v1
kind: TCPProxy
metadata: {{name: apps}}
spec:
  nodes: [dash-1]
  healthCheck: {{interval: 1s, timeout: 500ms}}
  apps:
    - name: web
      listen: ["127.0.0.1:{listen}"]
      targets: ["127.0.0.1:{target}"]
---
apiVersion: reconciler/v1
kind: HealthStrategy
metadata: {{name: three}}
spec: {{type: consecutive}}
---
apiVersion: reconciler/v1
kind: IPPool
metadata: {{name: egress}}
spec:
  nodes: [dash-1]
  members: {{static: [{{ip: 203.0.113.5, port: 19001}}, {{ip: 203.0.113.6, port: 19002}}]}}
  accessLog: {{path: {log}, from: start}}
  strategy: three
  scanInterval: 1s
---
apiVersion: reconciler/v1
kind: EdgeNetwork
metadata: {{name: org}}
spec:
  nodes: [dash-1]
  edges: {edges}
  object: {{url: "http://{{host}}:{edge_port}{path}", host: example.org, sha256: "{sha256}"}}
  interval: 1s
  timeout: 1s
  goodEnough: 500ms
  liveCount: 2
  zones: [{{name: example.org, labels: ["@"]}}]
  soa: {{mname: ns1.example.org., rname: hostmaster.example.org.}}
  nameservers: [ns.example.net.]
  output: {{dir: {zones}}}
"""


def _echo_server(port: int, stop: threading.Event) -> None:
    with socket.create_server(("127.0.0.1", port)) as server:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.sendall(connection.recv(1024))


def _query(prometheus: str, expr: str) -> dict[str, Any]:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            result: dict[str, Any] = json.loads(answer.read())
    except urllib.error.HTTPError as error:  # a query that does not parse: 400 with Prometheus's message
        result = json.loads(error.read())
    return result


def _panels() -> list[tuple[str, str, str]]:
    """(row, panel title, query) of every panel, $node as any node."""
    found, row = [], ""
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        if panel["type"] == "row":
            row = panel["title"]
            continue
        for target in panel["targets"]:
            found.append((row, panel["title"], target["expr"].replace("$node", ".*")))
    return found


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def _gateway_namespace() -> Iterator[tuple[str, str]]:
    """A network namespace with a management link to it: (its name, the agent's address inside)."""
    tag = str(os.getpid())[-5:]
    name, host_side, octet = f"rc-d{tag}", f"rcd{tag}", os.getpid() % 250
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("link", "add", host_side, "type", "veth", "peer", "name", "m0", "netns", name)
        _ip("addr", "add", f"169.254.{octet}.9/30", "dev", host_side)
        _ip("link", "set", host_side, "up")
        _ip("-n", name, "addr", "add", f"169.254.{octet}.10/30", "dev", "m0")
        _ip("-n", name, "link", "set", "m0", "up")
        yield name, f"169.254.{octet}.10"
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)
        subprocess.run(["ip", "link", "delete", host_side], check=False, capture_output=True)


def test_every_panel_query_parses_and_returns_data(tmp_path: Path) -> None:
    require_root("prometheus", "named-checkzone", "ip", "ipset", "iptables-restore")
    listen, target, edge_port = free_port(), free_port(), free_port()
    log = tmp_path / "access.log"
    stamp = datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
    lines = ((200, 19001), (502, 19002))  # the pool's default format: ... $status $server_port $upstream_addr ...
    log.write_text(
        "".join(f'198.51.100.7 - [{stamp}] "GET / HTTP/1.1" {s} {p} 127.0.0.1:{p} 0.010\n' for s, p in lines)
    )
    remote = Remote(tmp_path)
    desired = DESIRED.format(
        listen=listen,
        target=target,
        log=log,
        edges=json.dumps(EDGES),
        edge_port=edge_port,
        path=PATH,
        sha256=hashlib.sha256(BODY).hexdigest(),
        zones=tmp_path / "zones",
    )
    remote.commit({"desired.yaml": desired, "egress.yaml": GATEWAY})
    with _gateway_namespace() as (namespace, address):
        gateway = AgentProcess(remote, tmp_path / "gw-state", node="dash-gw", netns=namespace, host=address)
        _scrape_while_serving(tmp_path, remote, listen=listen, target=target, edge_port=edge_port, gateway=gateway)


def _scrape_while_serving(
    tmp_path: Path, remote: Remote, *, listen: int, target: int, edge_port: int, gateway: AgentProcess
) -> None:
    prometheus_port = free_port()
    config = tmp_path / "prometheus.yml"
    agent = AgentProcess(remote, tmp_path / "state", node="dash-1", args=("--interval", "2s", "--proxy-workers", "0"))
    targets = f"'{agent.address}', '{gateway.address}'"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"scrape_configs: [{{job_name: reconciler, static_configs: [{{targets: [{targets}]}}]}}]\n"
    )
    stop = threading.Event()
    echo = threading.Thread(target=_echo_server, args=(target, stop), daemon=True)
    echo.start()
    prometheus = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{prometheus_port}"
    try:
        with EdgeServers(EDGES, edge_port, BODY):
            gateway.start()
            agent.start()
            deadline = time.monotonic() + 25
            while time.monotonic() < deadline:  # traffic through the proxy app while Prometheus scrapes
                try:
                    with socket.create_connection(("127.0.0.1", listen), timeout=1) as client:
                        client.sendall(b"ping")
                        client.recv(16)
                except OSError:
                    pass
                if all(_query(base, q)["data"]["result"] for _, _, q in _panels()):
                    break
                time.sleep(0.5)
            assert _query(base, "sum bye (reconciler_revision_info)")["status"] == "error"  # a broken query fails
            for row, title, query in _panels():
                answer = _query(base, query)
                assert answer["status"] == "success", (title, query, answer.get("error"))
                assert answer["data"]["result"], f"{row} / {title}: no data for {query}"
    finally:
        stop.set()
        agent.stop()
        gateway.stop()
        prometheus.terminate()
        prometheus.wait(timeout=15)


def test_the_dashboard_has_its_variables_and_a_row_per_capability() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["node"]["query"]["query"] == "label_values(reconciler_revision_info, instance)"
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == ["Sync and status", "TCP proxy", "Egress", "IP pools", "Edges"]
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"
            assert all('instance=~"$node"' in t["expr"] for t in panel["targets"]), panel["title"]
