"""A real DNS server for tests: dnsmasq on a free loopback port, answering only the records a test gives it.

Names under ``.test`` (RFC 6761) that it does not know get NXDOMAIN; it forwards nothing anywhere.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest

from tests.conftest import IN_CI
from tests.integration.agents import free_port


def _dnsmasq() -> str:
    found = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if shutil.which("/usr/sbin/dnsmasq") else None)
    if found is None:
        if IN_CI:
            pytest.fail("dnsmasq is not installed (debian-packages.txt: dnsmasq-base)")
        pytest.skip("dnsmasq is not installed (debian-packages.txt: dnsmasq-base)")
    return found


@contextmanager
def dnsmasq(
    records: Sequence[str], *, netns: str | None = None, listen: str = "127.0.0.1", port: int | None = None
) -> Iterator[int]:
    """``records`` are dnsmasq options (``host-record=...``, ``cname=...``, ``hostsdir=...``); yields the UDP/TCP
    port. ``netns``: run inside that network namespace, listening on ``listen``."""
    port = port or free_port()
    argv = [
        *(["ip", "netns", "exec", netns] if netns else []),
        _dnsmasq(),
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--pid-file=",
        "--bind-interfaces",
        f"--listen-address={listen}",
        "--except-interface=nonexistent0",
        f"--port={port}",
        "--local=/test/",
        *(f"--{record}" for record in records),
    ]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(0.2)
        if process.poll() is not None:
            raise AssertionError(f"dnsmasq did not start: {process.stderr.read().decode() if process.stderr else ''}")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()
