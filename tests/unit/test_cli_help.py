"""`reconciler run --help` documents every flag with its default and the RECONCILER_<FLAG> variables; a bad value
from the environment names the variable, and a flag on the command line wins over it."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import timedelta

import pytest

from reconciler.cli import _parser
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
