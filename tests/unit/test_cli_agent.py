"""plan, apply --once and status on a folder (no git): what they print and the exit codes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.capabilities.registry import REGISTRY
from reconciler.loading.loader import load_tree
from reconciler.model import TCPProxy
from reconciler.system.files import read_source_tree
from tests.conftest import EXAMPLE, CliResult
from tests.integration.agents import free_port

INVALID = """apiVersion: reconciler/v1
kind: EgressAllowList
metadata: {name: partners}
spec:
  entries:
    - ip: 10.1.2.3
"""


def test_plan_prints_the_plan_for_a_node(cli: Callable[..., CliResult]) -> None:
    """plan reads the working tree, selects the node's resources and prints a diff (set members, our chains, the
    jump rules); exit 0. With --format json it shows the exact ipset/iptables-restore payloads."""
    result = cli("plan", EXAMPLE, "--node", "gw-1")
    assert result.code == 0
    assert result.out.splitlines()[0] == "plan for node gw-1 at working-tree: 17 change(s)"
    assert "EgressGateway/gateways set RECON-72c97f3bb42e-4 (any ipv4) (0 now)\n    + 203.0.113.7/32" in result.out
    assert "+ jump FORWARD: one jump FORWARD -> RECON-EGRESS" in result.out
    document = cli("plan", EXAMPLE, "--node", "gw-1", "--format", "json").json()
    payloads = {t["target"]: t.get("payload", "") for t in document["targets"]}
    assert "add RECON-72c97f3bb42e-4-new 203.0.113.7/32" in payloads["set RECON-72c97f3bb42e-4 (any ipv4)"]
    assert "-A RECON-EGRESS -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT" in payloads["rules ipv4"]
    markdown = cli("plan", EXAMPLE, "--node", "gw-1", "--format", "markdown")
    assert markdown.out.startswith("### reconciler plan for `gw-1` at `working-tree`")


def test_plan_of_an_invalid_tree_exits_1_with_the_problems(
    cli: Callable[..., CliResult], write_tree: Callable[[dict[str, str | bytes]], Path]
) -> None:
    """An invalid tree cannot be planned: exit 1 and the located error."""
    root = write_tree({"partners.yaml": INVALID})
    result = cli("plan", root, "--node", "gw-1")
    assert result.code == 1
    assert "Stalled=True InvalidDesiredState" in result.out
    assert f"{root}/partners.yaml:6:11" in result.out


def test_apply_once_then_status(cli: Callable[..., CliResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """apply --once reconciles the folder and leaves a status that 'reconciler status' prints. (EdgeNetwork is
    taken out of the registry here: enforcing the example's edges would probe addresses outside this machine.)"""
    monkeypatch.delitem(REGISTRY, "EdgeNetwork")
    state = tmp_path / "state"
    applied = cli("apply", EXAMPLE, "--once", "--node", "dns-1", "--state-dir", state)
    assert applied.code == 0
    assert "EdgeNetwork/example-org: not enforced by this agent yet (validated only)" in applied.out
    assert "Degraded=False Applied\n" in applied.out  # a condition without a message has no trailing colon
    shown = cli("status", "--state-dir", state)
    assert shown.code == 0
    assert shown.out.splitlines()[0] == "node dns-1: desired state from a folder (no branch)"
    assert "applied revision:   working-tree" in shown.out
    document = json.loads(cli("status", "--state-dir", state, "--format", "json").out)
    assert {r["name"] for r in document["resources"]} >= {"example-org", "consecutive-3"}


def test_status_without_an_agent_is_a_usage_error(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    """No status file in the state dir: exit 2 and a hint."""
    result = cli("status", "--state-dir", tmp_path)
    assert result.code == 2
    assert "has the agent run with this --state-dir?" in result.err


def test_run_needs_a_repository(cli: Callable[..., CliResult]) -> None:
    """run without --repo (and without RECONCILER_REPO) is a usage error."""
    assert cli("run", "--once").code == 2


def test_a_nameserver_that_is_not_an_address_is_a_usage_error(cli: Callable[..., CliResult]) -> None:
    """--nameserver takes IP, IP:PORT or [IPv6]:PORT; anything else exits 2 naming it."""
    result = cli("run", "--repo", "file:///nowhere", "--nameserver", "dns.example:53")
    assert result.code == 2
    assert "nameserver 'dns.example:53' is not IP, IP:PORT or [IPv6]:PORT" in result.err


def test_plan_names_what_is_not_enforced_and_nodes_nothing_selects(
    cli: Callable[..., CliResult], write_tree: Callable[[dict[str, str | bytes]], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kinds without a capability are listed (text and JSON); a node no resource selects is said so."""
    monkeypatch.delitem(REGISTRY, "EdgeNetwork")  # every kind has a capability now: pretend one has not
    plan = cli("plan", EXAMPLE, "--node", "dns-1")
    assert "not enforced by this agent yet (validated only): EdgeNetwork/example-org" in plan.out
    document = json.loads(cli("plan", EXAMPLE, "--node", "dns-1", "--format", "json").out)
    assert "EdgeNetwork/example-org" in document["notEnforced"]
    only_proxy = write_tree({"proxy.yaml": (EXAMPLE / "proxies" / "apps.yaml").read_text()})
    nobody = cli("plan", only_proxy, "--node", "gw-9")
    assert f"no resource in {only_proxy} selects node gw-9 (spec.nodes)" in nobody.out


def test_plan_with_a_state_dir_plans_against_what_that_node_ran(
    cli: Callable[..., CliResult], write_tree: Callable[[dict[str, str | bytes]], Path], tmp_path: Path
) -> None:
    """apply --once runs a proxy app and records it; plan --state-dir then sees no change, and a new target is the
    only change it shows; without --state-dir every listener and target is new. The state dir is not written."""
    port, target = free_port(), free_port()
    proxy = (EXAMPLE / "proxies" / "demo.yaml").read_text().replace("47001", str(port)).replace("47002", str(target))
    root = write_tree({"demo.yaml": proxy})
    state = tmp_path / "state"
    assert cli("apply", root, "--once", "--node", "demo", "--state-dir", state).code == 0
    recorded = (state / "state.json").read_bytes()
    same = cli("plan", root, "--node", "demo", "--state-dir", state)
    assert same.out.splitlines()[0].endswith(": 0 change(s)"), same.out
    (root / "demo.yaml").write_text(proxy.replace('"127.0.0.1:47003"]', '"127.0.0.1:47003", "127.0.0.1:47004"]'))
    one = cli("plan", root, "--node", "demo", "--state-dir", state)
    assert one.out.splitlines()[0].endswith(": 1 change(s)"), one.out
    assert "+ target 127.0.0.1:47004: weight 1" in one.out
    fresh = cli("plan", root, "--node", "demo")
    assert fresh.out.splitlines()[0].endswith(": 5 change(s)"), fresh.out
    assert (state / "state.json").read_bytes() == recorded


def test_make_run_enforces_something_and_stays_on_loopback() -> None:
    """`make run` runs the example as a node for which some resource is enforced (a capability exists), and what
    it enforces listens and connects on loopback only, so it runs on any machine without touching the network."""
    makefile = (EXAMPLE.parent / "Makefile").read_text()
    run = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    node = re.search(r"--node (\S+)", run)
    assert node is not None
    assert "--dry-run" not in run
    state = load_tree(read_source_tree(EXAMPLE, max_file_bytes=1 << 24)).state.for_node(node.group(1))
    enforced = [r for r in state if r.KIND in REGISTRY and r.KIND != "HealthStrategy"]
    assert enforced, f"nothing is enforced for node {node.group(1)}"
    for proxy in (r for r in enforced if isinstance(r, TCPProxy)):
        for app in proxy.spec.apps:
            assert all(str(a.host).startswith("127.") for a in app.listen)
            assert all(str(t.address).startswith("127.") for t in app.targets)
