"""Nagios checks of an EdgeNetwork: levels and plugin exit codes, the old tool's service names, performance
data, thresholds that refuse critical below warning, and the CLI reading a node's state file (UNKNOWN when it
knows nothing of the network)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.render import nagios
from reconciler.status.state_file import CapabilityState, SavedState
from tests.conftest import CliResult


def test_levels_and_lines() -> None:
    ok = nagios.integrity("edges", {"a": "", "b": "HTTP 404"}, 1, 2)
    assert (ok.code, ok.line) == (0, "EDGE_TESTMATCH OK - edges: 0 edge(s) serve a wrong object | mismatched=0;1;2;0")
    bad = nagios.integrity("edges", {"a": "checksum 1234..., expected abcd...", "b": "md5 12..., expected 34..."}, 1, 2)
    assert bad.code == 2
    assert "a, b" in bad.line
    slow = nagios.latency("edges", ["a", "b"], {"a": 0.2, "b": 1.4, "c": 9.0}, 1.0, 2.0)
    assert (slow.code, slow.line) == (
        1,
        "ACTIVE_EDGE_LATENCY WARNING - edges: slowest live edge b took 1.400s | slowest=1.400s;1;2;0",
    )
    assert nagios.latency("edges", [], {}, 1.0, 2.0).code == 3
    rotated = nagios.rotation("edges", [10.0, 500.0, 590.0], now=600.0, per=300.0, warning=2, critical=5)
    assert (rotated.code, rotated.perf) == (1, "changes=2;2;5;0")


def test_thresholds() -> None:
    assert nagios.thresholds("latency", None, None) == (1.0, 2.0)  # critical above warning, unlike the old tool
    assert nagios.thresholds("rotation", 3, None) == (3, 10.0)
    with pytest.raises(ValueError, match=r"critical \(0.5\) is below warning \(1\)"):
        nagios.thresholds("latency", 1.0, 0.5)


def test_the_cli_reads_the_state_file(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    network = {
        "histories": {"a": [[1.0, 0.1, True], [2.0, 0.3, True]], "b": [[2.0, 2.5, True]]},
        "live": ["a", "b"],
        "changes": [],
        "errors": {"c": "checksum 12..., expected 34..."},
        "per": 600.0,
    }
    saved = SavedState(capabilities={"EdgeNetwork": CapabilityState(1, {"networks": {"edges": network}})})
    (tmp_path / "state.json").write_bytes(saved.encode())
    latency = cli("check", "edges-latency", "edges", "--state-dir", tmp_path)
    assert latency.code == 2
    assert latency.out.startswith("ACTIVE_EDGE_LATENCY CRITICAL - edges: slowest live edge b took 2.500s")
    integrity = cli("check", "edges-integrity", "edges", "--state-dir", tmp_path)
    assert (integrity.code, integrity.out.split(" - ")[0]) == (1, "EDGE_TESTMATCH WARNING")
    rotation = cli("check", "edges-rotation", "edges", "--state-dir", tmp_path)
    assert rotation.code == 0
    unknown = cli("check", "edges-rotation", "other", "--state-dir", tmp_path)
    assert (unknown.code, unknown.out.strip()) == (
        3,
        f"EDGE_ROTATE UNKNOWN - no state of EdgeNetwork other in {tmp_path}",
    )
    inverted = cli("check", "edges-latency", "edges", "--state-dir", tmp_path, "--warning", "2", "--critical", "1")
    assert inverted.code == 3


def test_the_shipped_nagios_commands_are_valid_checks(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    """Every command in runtime/nagios runs our check with flags it accepts (UNKNOWN: this state dir is empty)."""
    config = (Path(__file__).parents[3] / "runtime" / "nagios" / "reconciler-edges.cfg").read_text()
    commands = re.findall(r"command_line\s+\S+/reconciler (.+)", config)
    services = dict(re.findall(r"service_description\s+(\S+)\s+check_command\s+(\S+)", config))
    assert sorted(services) == ["ACTIVE_EDGE_LATENCY", "EDGE_ROTATE", "EDGE_TESTMATCH"]
    assert len(commands) == 3
    for command in commands:
        args = command.replace("$ARG1$", "example-org").replace("$ARG2$", "1").replace("$ARG3$", "2").split()
        args[args.index("--state-dir") + 1] = str(tmp_path)
        result = cli(*args)
        assert result.code == 3, result.out
        assert result.out.split(" ")[0] in services
