"""The process seam against real processes: output, exit codes, timeouts, missing programs."""

from __future__ import annotations

import pytest

from reconciler.errors import CommandError
from reconciler.system.commands import SubprocessRunner

pytestmark = pytest.mark.integration


def test_runs_an_argument_list_without_a_shell() -> None:
    """Arguments reach the program verbatim: shell syntax is not interpreted."""
    result = SubprocessRunner().run(["printf", "%s|", "a b", "$(id)", ";"], timeout=5).check()
    assert result.stdout == b"a b|$(id)|;|"


def test_stdin_exit_code_and_check() -> None:
    """stdin is passed; a non-zero exit is returned, and check() turns it into an error with stderr."""
    runner = SubprocessRunner()
    assert runner.run(["cat"], timeout=5, stdin=b"payload").stdout == b"payload"
    failed = runner.run(["sh", "-c", "echo broken >&2; exit 3"], timeout=5)
    assert failed.returncode == 3
    with pytest.raises(CommandError, match="exited 3: broken"):
        failed.check()


def test_timeouts_and_missing_programs_are_command_errors() -> None:
    """A command that outlives its timeout, or does not exist, raises CommandError (retryable)."""
    runner = SubprocessRunner()
    with pytest.raises(CommandError, match="timed out"):
        runner.run(["sleep", "5"], timeout=0.2)
    with pytest.raises(CommandError) as caught:
        runner.run(["no-such-program-here"], timeout=5)
    assert caught.value.retryable
