"""An EdgeNetwork run by the real agent against local HTTP edges: the fastest edges published; a wrong checksum
fails its edge and shows in status (text, CSV) and in the integrity check; a flapping live edge costs at most the
rotation budget and the next substitution is deferred; a faster newcomer does not replace a live edge that stays
good; a stop (SIGTERM) and a kill (SIGKILL) keep the live set, the serial and the spent budget: no zone rewrite,
no afterChange and no substitution because of the restart."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_root
from tests.integration.agents import AgentProcess, Remote, free_port, wait_for
from tests.integration.edge_server import PATH, EdgeServers

pytestmark = pytest.mark.integration

BODY = b"edgemanage object\n"
EDGES = [f"127.0.0.{60 + i}" for i in range(6)]
E0, E1, E2, E3, E4, WRONG = EDGES

NETWORK = """apiVersion: reconciler/v1
kind: EdgeNetwork
metadata: {{name: edges}}
spec:
  nodes: [dns-1]
  edges: {edges}
  object: {{url: "http://{{host}}:{port}{path}", host: example.org, sha256: "{sha256}"}}
  interval: 1s
  timeout: 1s
  goodEnough: 300ms
  liveCount: 2
  rotation: {{maxChanges: 1, per: 1h}}
  zones: [{{name: example.org, labels: ["@", www]}}]
  soa: {{mname: ns1.example.org., rname: hostmaster.example.org.}}
  nameservers: [ns.example.net.]
  output: {{dir: {output}, afterChange: [touch, {marker}]}}
"""


def _zone(path: Path) -> tuple[set[str], int]:
    """The addresses of www in a written zone file, and its serial."""
    text = path.read_text()
    serial = re.search(r"(\d{10}) ; serial", text)
    assert serial is not None, text
    return set(re.findall(r"^www IN A (\S+)$", text, re.MULTILINE)), int(serial.group(1))


def _network(agent: AgentProcess) -> dict[str, Any]:
    code, body = agent.request("/edges/edges")
    assert code == 200, body
    result: dict[str, Any] = json.loads(body)
    return result


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args], capture_output=True, text=True, check=False, timeout=60
    )


def _rounds(agent: AgentProcess, count: int) -> None:
    """Wait until every edge has been probed ``count`` more times."""
    start = _network(agent)["edges"][E0]["probes"]
    wait_for(lambda: _network(agent)["edges"][E0]["probes"] >= start + count, timeout=20, what=f"{count} rounds")


def _wrong_checksum_shows(agent: AgentProcess) -> None:
    """The wrong checksum fails its edge, in status, in the CSV and in the integrity check."""
    wrong = _network(agent)["edges"][WRONG]
    assert wrong["tier"] == "fail"
    assert wrong["error"].startswith("checksum")
    rows = _cli("status", "--state-dir", str(agent.state_dir), "--format", "csv").stdout.splitlines()
    assert rows[0] == "network,edge,tier,live,mode,last,average,comment,error"
    assert any(row.startswith(f"edges,{WRONG},fail,false,available,1.0,") for row in rows), rows
    assert any(row.startswith(f"edges,{E0},pass_threshold,true,") for row in rows), rows
    text = _cli("status", "--state-dir", str(agent.state_dir)).stdout
    live = next(line for line in text.splitlines() if line.startswith("    live: "))
    assert set(live.removeprefix("    live: ").split(", ")) == {E0, E1}, text  # in the live set's order
    assert re.search(
        rf"^    edge {WRONG}: fail, not live, available, last [0-9.]+ s, mean [0-9.]+ s, error: checksum", text, re.M
    )
    integrity = _cli("check", "edges-integrity", "edges", "--state-dir", str(agent.state_dir))
    assert integrity.returncode == 1, integrity.stdout  # one mismatch: WARNING at the default 1
    assert integrity.stdout.startswith(f"EDGE_TESTMATCH WARNING - edges: 1 edge(s) serve a wrong object: {WRONG}")


def test_edges_through_the_agent_flapping_checksum_and_restarts(tmp_path: Path) -> None:
    require_root("named-checkzone")
    port, output, marker = free_port(), tmp_path / "zones", tmp_path / "after-change"
    zone_file = output / "example.org.zone"
    remote = Remote(tmp_path)
    remote.commit(
        {
            "edges.yaml": NETWORK.format(
                edges=json.dumps(EDGES),
                port=port,
                path=PATH,
                sha256=hashlib.sha256(BODY).hexdigest(),
                output=output,
                marker=marker,
            )
        }
    )
    with EdgeServers(EDGES, port, BODY) as edges:
        # far enough apart that the first round's one probe each orders them even on a busy machine (the live set
        # is sticky: a first pick of E2 over E1 would stay), and all under goodEnough
        edges.delays.update({E0: 0.01, E1: 0.03, E2: 0.13, E3: 0.2, E4: 0.26})
        edges.bodies[WRONG] = b"tampered\n"
        agent = AgentProcess(remote, tmp_path / "state", node="dns-1").start()
        try:
            wait_for(
                lambda: zone_file.exists() and _zone(zone_file)[0] == {E0, E1},
                timeout=20,
                what="E0, E1 live",
                explain=lambda: f"{_network(agent)}\n{agent.log.read_text()[-4000:]}",
            )
            # afterChange runs once the zone files are written: a moment after the file is there
            wait_for(marker.exists, timeout=10, what="afterChange", explain=lambda: agent.log.read_text()[-4000:])

            _wrong_checksum_shows(agent)

            # E0 flaps: the first substitution spends the budget (1 per hour) ...
            edges.delays[E0] = 2.0
            wait_for(lambda: _zone(zone_file)[0] == {E1, E2}, timeout=20, what="E2 in place of the slow E0")
            edges.delays[E0] = 0.01
            # ... so when E1 fails too, its substitution is deferred, and the faster E0 does not replace E2
            edges.delays[E1] = 2.0
            wait_for(lambda: _network(agent)["edges"][E1]["tier"] == "fail", timeout=20, what="E1 failing")
            _rounds(agent, 2)
            assert _zone(zone_file)[0] == {E1, E2}
            assert len(_network(agent)["rotations"]) == 1
            resource = next(r for r in agent.status()["resources"] if r["kind"] == "EdgeNetwork")
            assert resource["observations"]["deferred"], resource["observations"]
            rotate = _cli("check", "edges-rotation", "edges", "--state-dir", str(agent.state_dir))
            assert rotate.returncode == 0
            assert "changes=1;" in rotate.stdout

            # restarts: no rewrite, no afterChange, same serial and live set, the spent budget still spent
            marker.unlink()
            written = zone_file.stat().st_mtime_ns
            serial = _zone(zone_file)[1]
            for stop in (signal.SIGTERM, signal.SIGKILL):
                agent.signal(stop)
                agent.wait(timeout=15)
                agent.start()
                wait_for(lambda: agent.request("/edges/edges")[0] == 200, timeout=20, what="a round after restart")
                _rounds(agent, 2)
                assert zone_file.stat().st_mtime_ns == written
                assert _zone(zone_file) == ({E1, E2}, serial)
                assert not marker.exists()
                network = _network(agent)
                assert set(network["live"]) == {E1, E2}
                assert len(network["rotations"]) == 1
        finally:
            agent.stop()
