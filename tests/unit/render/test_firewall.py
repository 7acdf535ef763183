"""Firewall payloads from an egress plan, against reviewed golden files; names stay within ipset's limit."""

from __future__ import annotations

from typing import Any

from reconciler.model import EgressAllowList, EgressGateway
from reconciler.planning.egress import Memory, PortClass, SetKey, plan_egress
from reconciler.render.firewall import MAX_SET_NAME, render_filter, render_ipset, render_nat, set_name
from tests.golden import assert_golden

NOW = 1_800_000_000.0


def _gateway(action: str, masquerade: bool = False) -> EgressGateway:
    spec: dict[str, Any] = {
        "clients": ["10.88.0.0/24", "fd00:88::/64"],
        "defaultAction": action,
        "masquerade": masquerade,
    }
    return EgressGateway.model_validate(
        {"apiVersion": "reconciler/v1", "kind": "EgressGateway", "metadata": {"name": "edge-gw"}, "spec": spec}
    )


LISTS = [
    EgressAllowList.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "EgressAllowList",
            "metadata": {"name": "partners"},
            "spec": {
                "entries": [
                    {"ip": "203.0.113.10"},
                    {"cidr": "198.51.100.0/28", "ports": [443, "8000-8100"], "protocol": "tcp"},
                    {"ip": "2001:db8::10", "ports": [53]},
                ]
            },
        }
    )
]


def test_payloads_match_their_golden_files() -> None:
    drop = _gateway("drop", masquerade=True)
    plan = plan_egress(drop, LISTS, {}, Memory(), now=NOW)
    payloads = [
        "# ipset restore, IPv4",
        render_ipset("edge-gw", plan, 4),
        "# ipset restore, IPv6",
        render_ipset("edge-gw", plan, 6),
        "# iptables-restore --noflush, filter, drop",
        render_filter(drop, plan, 4).text,
        "# ip6tables-restore --noflush, filter, reject",
        render_filter(_gateway("reject"), plan, 6).text,
        "# iptables-restore --noflush, filter, audit (log)",
        render_filter(_gateway("log"), plan, 4).text,
        "# iptables-restore --noflush, nat, masquerade",
        render_nat(drop, plan, 4).text,
    ]
    assert_golden("firewall.txt", "\n".join(payloads))


def test_set_names_are_stable_short_and_distinct() -> None:
    keys = [SetKey(f, PortClass(p, ports)) for f in (4, 6) for p in ("any", "tcp", "udp") for ports in ((), ("443",))]
    names = {set_name("a-gateway-with-a-rather-long-name", key) for key in keys}
    assert len(names) == len(keys)
    assert all(len(name) <= MAX_SET_NAME and name.startswith("RECON-") for name in names)
    assert set_name("gw", keys[0]) == set_name("gw", keys[0])
