"""Zone files named can read: written 0644 by default (a temporary file is 0600), or with the spec's mode and group;
a hand chmod is put back at the next pass without a rewrite; read by the user ``bind`` through real named-checkzone.
A zone that never passed its check says that no file is written, not that "the old zone stays"."""

from __future__ import annotations

import asyncio
import grp
import hashlib
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.capabilities.edge_network import EdgeNetworkCapability, ZonePermissions
from reconciler.errors import ApplyError
from reconciler.model import DesiredState, EdgeNetwork
from reconciler.render.status import render_edges_csv
from reconciler.system.clock import SystemClock
from reconciler.system.commands import SubprocessRunner
from reconciler.system.http import HttpxFetcher
from reconciler.testing import Driven, FakeResolver
from tests.conftest import require_root
from tests.integration.agents import free_port
from tests.integration.edge_server import PATH, EdgeServers

pytestmark = pytest.mark.integration

BODY = b"edgemanage object\n"
EDGES = ["127.0.0.70", "127.0.0.71"]


@pytest.fixture
def zones() -> Iterator[Path]:
    """A folder the user bind can enter (pytest's own are 0700)."""
    with tempfile.TemporaryDirectory(prefix="reconciler-zones-") as folder:
        Path(folder).chmod(0o755)
        yield Path(folder)


def _network(
    output: Path,
    port: int,
    nameservers: tuple[str, ...] = ("ns.example.net.",),
    include: str | None = None,
    **extra: Any,
) -> EdgeNetwork:
    zone = {"name": "example.org", "labels": ["@", "www"]} | ({"include": include} if include else {})
    return EdgeNetwork.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "EdgeNetwork",
            "metadata": {"name": "edges"},
            "spec": {
                "edges": EDGES,
                "object": {"url": f"http://{{host}}:{port}{PATH}", "sha256": hashlib.sha256(BODY).hexdigest()},
                "timeout": "2s",
                "liveCount": 2,
                "zones": [zone],
                "soa": {"mname": "ns1.example.org.", "rname": "hostmaster.example.org."},
                "nameservers": list(nameservers),
                "output": {"dir": str(output), **extra},
            },
        }
    )


async def _pass(capability: Driven[EdgeNetworkCapability], network: EdgeNetwork) -> list[str]:
    """One pass; the keys of the changes applied."""
    observed = await capability.observe(network)
    keys: list[str] = []
    for target in capability.plan(network, observed.facts, now=time.time()):
        keys += [change.key for change in target.changes]
        await capability.apply(network, target)
    return keys


def _capability() -> Driven[EdgeNetworkCapability]:
    return Driven(EdgeNetworkCapability(HttpxFetcher(SystemClock()), FakeResolver(), SubprocessRunner(), SystemClock()))


def _bind_checks(path: Path) -> subprocess.CompletedProcess[str]:
    """named-checkzone run as the user named runs as: it reads the file only if bind may."""
    argv = ["runuser", "-u", "bind", "--", "named-checkzone", "example.org", str(path)]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)


def test_zone_files_are_readable_by_bind_and_a_chmod_is_put_back(zones: Path) -> None:
    require_root("named-checkzone", "runuser")
    port = free_port()
    zone_file = zones / "example.org.zone"
    bind_gid = grp.getgrnam("bind").gr_gid

    async def scenario() -> None:
        capability = _capability()
        default = _network(zones, port)
        capability.capability.use(DesiredState({"EdgeNetwork": {"edges": default}}))
        assert "example.org file" in await _pass(capability, default)
        assert zone_file.stat().st_mode & 0o777 == 0o644
        checked = _bind_checks(zone_file)
        assert checked.returncode == 0, checked.stdout + checked.stderr

        zone_file.chmod(0o600)  # by hand: named can no longer read it
        assert _bind_checks(zone_file).returncode != 0
        serial = zone_file.read_text()
        assert await _pass(capability, default) == ["example.org permissions"]
        assert zone_file.stat().st_mode & 0o777 == 0o644
        assert zone_file.read_text() == serial  # put back, not rewritten
        assert await _pass(capability, default) == []

        grouped = _network(zones, port, mode="0640", group="bind")
        capability.capability.use(DesiredState({"EdgeNetwork": {"edges": grouped}}))
        assert await _pass(capability, grouped) == ["example.org permissions"]
        found = zone_file.stat()
        assert (found.st_mode & 0o777, found.st_gid) == (0o640, bind_gid)
        checked = _bind_checks(zone_file)
        assert checked.returncode == 0, checked.stdout + checked.stderr

        unknown = _network(zones, port, group="no-such-group")
        capability.capability.use(DesiredState({"EdgeNetwork": {"edges": unknown}}))
        with pytest.raises(ApplyError, match=r"output\.group no-such-group is not a group on this machine"):
            await _pass(capability, unknown)

    with EdgeServers(EDGES, port, BODY):
        asyncio.run(scenario())


def test_a_zone_that_never_passed_says_no_file_is_written(zones: Path, tmp_path: Path) -> None:
    """The README's old nameserver shape, ns1 inside its own zone, with an include that lacks ns1's address (so
    validation cannot tell): named-checkzone refuses it, and the message says there is no old zone."""
    require_root("named-checkzone")
    port = free_port()
    (tmp_path / "extra.zone").write_text("mail IN A 192.0.2.25\n")
    with_include = _network(zones, port, nameservers=("ns1.example.org.",), include="extra.zone")

    async def scenario() -> None:
        capability = _capability()
        capability.capability.use(DesiredState({"EdgeNetwork": {"edges": with_include}}, files_root=str(tmp_path)))
        with pytest.raises(ApplyError) as raised:
            await _pass(capability, with_include)
        message = str(raised.value)
        assert f"no file is written to {zones / 'example.org.zone'} until it passes" in message
        assert "has no address records" in message
        assert "the old zone stays" not in message
        # status says what is published (nothing), not what was chosen, as GET /edges/NAME does
        summary = (await capability.observe(with_include)).summary
        assert summary["live"] == []
        assert sorted(summary["selected"]) == EDGES
        document = {"resources": [{"kind": "EdgeNetwork", "name": "edges", "observations": summary}]}
        assert [row.split(",")[3] for row in render_edges_csv(document).splitlines()[1:]] == ["false", "false"]

    with EdgeServers(EDGES, port, BODY):
        asyncio.run(scenario())
    assert list(zones.iterdir()) == []


def test_a_permissions_change_reads_as_what_it_sets() -> None:
    assert str(ZonePermissions("example.org", "/z/example.org.zone", 0o640, "bind")) == (
        "/z/example.org.zone mode 0640 group bind"
    )
