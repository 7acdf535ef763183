"""The rendered firewall payloads load into the real ipset and iptables, in a network namespace of their own, and
loading them again changes nothing (our chain is rewritten whole, never appended to)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reconciler.model import EgressAllowList, EgressGateway
from reconciler.planning.egress import Memory, plan_egress
from reconciler.render.firewall import render_filter, render_ipset, render_nat
from tests.conftest import require_root

pytestmark = pytest.mark.integration

SCRIPT = """
set -e
iptables -A FORWARD -s 192.0.2.99 -j ACCEPT
ipset create unrelated hash:ip
ipset restore < "$1/sets4"
ipset restore < "$1/sets6"
iptables-restore --noflush < "$1/filter4"
ip6tables-restore --noflush < "$1/filter6"
iptables-restore --noflush < "$1/nat4"
iptables-save | grep -v '^#' > "$1/first"
ipset save > "$1/first-sets"
ipset restore -exist < "$1/sets4"
iptables-restore --noflush < "$1/filter4"
iptables-restore --noflush < "$1/nat4"
iptables-save | grep -v '^#' > "$1/second"
ipset save > "$1/second-sets"
"""


def test_payloads_load_into_the_kernel_and_reloading_changes_nothing(tmp_path: Path) -> None:
    require_root("unshare", "ipset", "iptables-restore")
    gateway = EgressGateway.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "EgressGateway",
            "metadata": {"name": "gw"},
            "spec": {"clients": ["10.88.0.0/24", "fd00:88::/64"], "masquerade": True},
        }
    )
    allow = EgressAllowList.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "EgressAllowList",
            "metadata": {"name": "a"},
            "spec": {
                "entries": [
                    {"ip": "203.0.113.10"},
                    {"cidr": "198.51.100.0/28", "ports": [443], "protocol": "tcp"},
                    {"ip": "2001:db8::10"},
                ]
            },
        }
    )
    plan = plan_egress(gateway, [allow], {}, Memory(), now=1_800_000_000.0)
    (tmp_path / "sets4").write_text(render_ipset("gw", plan, 4))
    (tmp_path / "sets6").write_text(render_ipset("gw", plan, 6))
    (tmp_path / "filter4").write_text(render_filter(gateway, plan, 4).text)
    (tmp_path / "filter6").write_text(render_filter(gateway, plan, 6).text)
    (tmp_path / "nat4").write_text(render_nat(gateway, plan, 4).text)
    done = subprocess.run(
        ["unshare", "--net", "sh", "-c", SCRIPT, "firewall", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    first = (tmp_path / "first").read_text()
    assert "-A RECON-EGRESS -s 10.88.0.0/24 -j DROP" in first
    assert "-A FORWARD -s 192.0.2.99/32 -j ACCEPT" in first  # someone else's rule stays
    assert "-A RECON-EGRESS-NAT -s 10.88.0.0/24 -m set --match-set" in first
    assert (tmp_path / "second").read_text() == first  # no duplicate rule, ever
    sets = (tmp_path / "first-sets").read_text()
    assert "add RECON-" in sets
    assert "203.0.113.10" in sets
    assert "create unrelated hash:ip" in sets
    assert (tmp_path / "second-sets").read_text() == sets
