"""`reconciler run --help` documents every flag with its default and the RECONCILER_<FLAG> variables; a bad value
from the environment names the variable, and a flag on the command line wins over it."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import timedelta

import pytest

from reconciler.cli import _parser
from reconciler.settings import MAX_AUTO_WORKERS, AgentSettings
from reconciler.system.cpus import usable_cpus
from tests.conftest import CliResult

SWITCHES = {"--sign-status", "--dry-run", "--once", "--force", "--verify-signatures"}


def _run_parser() -> argparse.ArgumentParser:
    parser = _parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    run: argparse.ArgumentParser = subparsers.choices["run"]
    return run


def test_every_run_flag_has_a_description_and_its_default() -> None:
    run = _run_parser()
    for action in run._actions:
        flag = action.option_strings[-1] if action.option_strings else ""
        if flag in ("--help", ""):
            continue
        assert action.help, f"{flag} has no description"
        if flag not in SWITCHES and flag != "--repo":
            assert "default" in action.help, f"{flag} does not say its default"
    assert run.epilog is not None
    assert "RECONCILER_<FLAG>" in run.epilog


def test_the_environment_gives_defaults_and_the_command_line_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_INTERVAL", "45s")
    monkeypatch.setenv("RECONCILER_FORCE", "true")
    args = _run_parser().parse_args(["--repo", "x"])
    assert (args.interval, args.force) == (timedelta(seconds=45), True)
    assert "45s (from RECONCILER_INTERVAL)" in _run_parser().format_help()
    assert _run_parser().parse_args(["--repo", "x", "--interval", "2m"]).interval == timedelta(minutes=2)


def test_a_bad_value_from_the_environment_names_the_variable(
    cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECONCILER_INTERVAL", "5")
    monkeypatch.setenv("RECONCILER_PROXY_WORKERS", "many")
    result = cli("run", "--repo", "file:///nowhere")
    assert result.code == 2
    assert "reconciler: RECONCILER_INTERVAL=5: '5' has no unit" in result.err
    assert "reconciler: RECONCILER_PROXY_WORKERS=many: 'many' is not a count" in result.err
    assert "--interval" not in result.err


def test_proxy_workers_default_to_one_per_cpu_for_apps_and_one_for_pools(monkeypatch: pytest.MonkeyPatch) -> None:
    """auto: a TCPProxy worker per CPU the agent may use (at most MAX_AUTO_WORKERS); an IP pool keeps one process,
    where its minReuseInterval holds; a count given applies to both."""
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: {0, 1, 2})
    monkeypatch.setattr("reconciler.system.cpus.cpu_quota", lambda *_: None)  # whatever cgroup the tests run in
    auto = AgentSettings(repo="x", node="n", proxy_workers=_run_parser().parse_args(["--repo", "x"]).proxy_workers)
    assert (auto.proxy_workers, auto.tcp_proxy_workers(usable_cpus()), auto.pool_proxy_workers) == (None, 3, 1)
    assert auto.public()["proxyWorkers"] == "auto"
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(64)))
    assert auto.tcp_proxy_workers(usable_cpus()) == MAX_AUTO_WORKERS
    monkeypatch.setattr("reconciler.system.cpus.cpu_quota", lambda *_: 1.5)  # a container limited to 1.5 CPUs
    assert auto.tcp_proxy_workers(usable_cpus()) == 2
    given = AgentSettings(
        repo="x",
        node="n",
        proxy_workers=_run_parser().parse_args(["--repo", "x", "--proxy-workers", "2"]).proxy_workers,
    )
    assert (given.tcp_proxy_workers(64), given.pool_proxy_workers) == (2, 2)
    with pytest.raises(SystemExit):
        _run_parser().parse_args(["--repo", "x", "--proxy-workers", "-1"])


def test_node_names_are_checked_and_the_hostname_is_lower_cased(
    cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node name is what spec.nodes can list and what names its status folder and branch: 'a/b', '' or 'GW-1'
    would publish where nobody reads, or not at all. The host GW-1.Example is the node gw-1.example."""
    monkeypatch.setattr("socket.gethostname", lambda: "GW-1.Example")
    assert _run_parser().parse_args(["--repo", "x"]).node == "gw-1.example"
    for bad, hint in (("a/b", ""), ("../x", ""), ("", ""), ("GW-1", " (did you mean 'gw-1'?)"), ("-", "")):
        result = cli("plan", "desired-state", f"--node={bad}")
        assert result.code == 2, bad
        assert f"{bad!r} is not a node name: lower-case letters, digits and '-' in dot-separated labels" in result.err
        assert result.err.rstrip().endswith(f"as spec.nodes lists nodes{hint}")
    monkeypatch.setenv("RECONCILER_NODE", "Bad_1")
    result = cli("run", "--repo", "file:///nowhere")
    assert result.code == 2
    assert "reconciler: RECONCILER_NODE=Bad_1: 'Bad_1' is not a node name" in result.err
