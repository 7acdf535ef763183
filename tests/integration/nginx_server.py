"""A real nginx for tests: started on free loopback ports from a configuration the test writes, in its own prefix
folder (pid file, logs), stopped at the end. ``reopen`` is what logrotate's postrotate runs."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.integration.agents import free_port, wait_for

NGINX = "/usr/sbin/nginx"


class Nginx:
    def __init__(self, prefix: Path) -> None:
        self.prefix = prefix
        self.conf = prefix / "nginx.conf"

    def signal(self, name: str) -> None:
        subprocess.run([NGINX, "-p", str(self.prefix), "-c", str(self.conf), "-s", name], check=True)

    def reopen(self) -> None:
        self.signal("reopen")


def _nginx() -> str:
    if shutil.which(NGINX) is None:
        if IN_CI:
            pytest.fail("nginx is not installed (debian-packages.txt: nginx-light)")
        pytest.skip("nginx is not installed (debian-packages.txt: nginx-light)")
    return NGINX


@contextmanager
def nginx(prefix: Path, http: str) -> Iterator[Nginx]:
    """nginx with ``http`` as the body of its http {} block (the caller picks ports with ``free_port``)."""
    binary = _nginx()
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    server = Nginx(prefix)
    server.conf.write_text(
        # user root: workers reopen logs themselves (nginx -s reopen), inside the test's private temporary folder
        f"daemon off;\nuser root;\nworker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/logs/error.log;\n"
        f"events {{ worker_connections 256; }}\nhttp {{\n{http}\n}}\n"
    )
    process = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(server.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_for(lambda: (prefix / "nginx.pid").exists() or process.poll() is not None, timeout=10, what="nginx")
        if process.poll() is not None:
            raise AssertionError(f"nginx did not start: {process.stderr.read().decode() if process.stderr else ''}")
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


__all__ = ["Nginx", "free_port", "nginx"]
