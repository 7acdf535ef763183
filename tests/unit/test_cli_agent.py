"""plan, apply --once and status on a folder (no git): what they print and the exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.conftest import EXAMPLE, CliResult

INVALID = """apiVersion: reconciler/v1
kind: EgressAllowList
metadata: {name: partners}
spec:
  entries:
    - ip: 10.1.2.3
"""


def test_plan_prints_the_plan_for_a_node(cli: Callable[..., CliResult]) -> None:
    """plan reads the working tree, selects the node's resources and prints a diff; exit 0."""
    result = cli("plan", EXAMPLE, "--node", "gw-1")
    assert result.code == 0
    assert result.out.splitlines()[0] == "plan for node gw-1 at working-tree: 0 change(s)"
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


def test_apply_once_then_status(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    """apply --once reconciles the folder and leaves a status that 'reconciler status' prints."""
    state = tmp_path / "state"
    applied = cli("apply", EXAMPLE, "--once", "--node", "pool-1", "--state-dir", state)
    assert applied.code == 0
    assert "IPPool/egress: not enforced by this agent yet (validated only)" in applied.out
    assert "Degraded=False Applied\n" in applied.out  # a condition without a message has no trailing colon
    shown = cli("status", "--state-dir", state)
    assert shown.code == 0
    assert shown.out.splitlines()[0] == "node pool-1: desired state from a folder (no branch)"
    assert "applied revision:   working-tree" in shown.out
    document = json.loads(cli("status", "--state-dir", state, "--format", "json").out)
    assert {r["name"] for r in document["resources"]} >= {"egress", "crawler", "consecutive-3"}


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
    cli: Callable[..., CliResult], write_tree: Callable[[dict[str, str | bytes]], Path]
) -> None:
    """Kinds without a capability are listed (text and JSON); a node no resource selects is said so."""
    plan = cli("plan", EXAMPLE, "--node", "gw-1")
    assert "not enforced by this agent yet (validated only): EgressAllowList/partners" in plan.out
    document = json.loads(cli("plan", EXAMPLE, "--node", "gw-1", "--format", "json").out)
    assert "EgressGateway/gateways" in document["notEnforced"]
    only_proxy = write_tree({"proxy.yaml": (EXAMPLE / "proxies" / "apps.yaml").read_text()})
    nobody = cli("plan", only_proxy, "--node", "gw-9")
    assert f"no resource in {only_proxy} selects node gw-9 (spec.nodes)" in nobody.out
