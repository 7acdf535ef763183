"""Rendered zones pass the real named-checkzone; a zone an operator's template breaks does not (which is what
keeps the old zone in place)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reconciler.loading.loader import load_desired_state
from reconciler.model import EdgeNetwork
from reconciler.model.edge_network import Soa
from reconciler.render.zone import render_zone
from reconciler.system.files import read_source_tree
from tests.conftest import require_root

pytestmark = pytest.mark.integration

SOA = Soa.model_validate({"mname": "ns0.example.org.", "rname": "hostmaster.example.org."})


def _check(zone: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["named-checkzone", zone, str(path)], capture_output=True, text=True, check=False)


def test_named_checkzone_accepts_ours_and_refuses_a_broken_one(tmp_path: Path) -> None:
    require_root("named-checkzone")
    ours = render_zone(
        "example.org",
        labels=["@", "www"],
        addresses=["203.0.113.20", "2001:db8::20"],
        soa=SOA,
        nameservers=["ns1.example.org."],
        include="ns1 IN A 192.0.2.53\n",
    )
    path = tmp_path / "example.org.zone"
    path.write_text(ours.with_serial(2026120400))
    checked = _check("example.org", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "serial 2026120400" in checked.stdout
    broken = render_zone(
        "example.org",
        labels=["@"],
        addresses=["203.0.113.20"],
        soa=SOA,
        nameservers=["ns1.example.org."],
        template="$ORIGIN {{ zone }}\n@ IN A {{ addresses[0].ip }}\n",  # no SOA: not a zone
    )
    path.write_text(broken.with_serial(1))
    assert _check("example.org", path).returncode != 0


def test_the_bundled_example_zone_passes_named_checkzone(tmp_path: Path) -> None:
    """The example's in-zone name servers come with their addresses, so the zone it makes is one named loads."""
    require_root("named-checkzone")
    example = Path(__file__).resolve().parents[2] / "desired-state"
    state = load_desired_state(read_source_tree(example, max_file_bytes=1 << 20)).state
    network = state.get(EdgeNetwork, "example-org")
    assert network is not None
    spec, zone = network.spec, network.spec.zones[0]
    assert zone.include is not None
    rendered = render_zone(
        str(zone.name),
        labels=zone.labels,
        addresses=["192.0.2.21"],
        soa=spec.soa,
        nameservers=spec.nameserver_names,
        glue=spec.glue,
        include=(example / zone.include).read_text(),
    )
    path = tmp_path / "example.org.zone"
    path.write_text(rendered.with_serial(2026120700))
    checked = _check("example.org", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ns1 IN A 192.0.2.53\n" in rendered.body
