"""The status document as text: conditions without a trailing colon, per-target health of proxy apps."""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.render.status import render_status_text

DOCUMENT = {
    "node": "proxy-1",
    "branch": "main",
    "lastAppliedRevision": "abc",
    "lastAttemptedRevision": "abc",
    "conditions": [
        {"type": "Ready", "status": "True", "reason": "Applied", "message": "revision abc applied"},
        {"type": "Stalled", "status": "False", "reason": "Applied", "message": ""},
    ],
    "problems": [],
    "statusPublish": {"ok": False, "error": "push refused", "failuresInARow": 3, "lastPublished": None},
    "resources": [
        {
            "kind": "TCPProxy",
            "name": "apps",
            "conditions": [{"type": "Ready", "status": "True", "reason": "Applied", "message": ""}],
            "observations": {
                "apps": {
                    "apps/web": {
                        "listen": ["127.0.0.1:5001"],
                        "targets": [
                            {"address": "127.0.0.1:7001", "weight": 1, "health": "up", "resolved": "127.0.0.1:7001"},
                            {
                                "address": "db.test:7002",
                                "weight": 2,
                                "health": "down",
                                "resolved": None,
                                "reason": "unresolvable: NXDOMAIN",
                            },
                            {"address": "b.test:7003", "weight": 1, "health": "unknown", "resolved": "192.0.2.3:7003"},
                        ],
                    }
                }
            },
        }
    ],
}


def test_conditions_targets_and_publish_failures_read_well() -> None:
    lines = render_status_text(DOCUMENT).splitlines()
    assert lines[0] == "node proxy-1: desired state from branch main"
    assert "  Stalled=False Applied" in lines
    assert "  status publish failing (3 in a row): push refused" in lines
    assert "  TCPProxy/apps: Ready=True Applied" in lines
    assert "    app apps/web: listening on 127.0.0.1:5001" in lines
    assert "      127.0.0.1:7001 weight 1: up" in lines
    assert "      db.test:7002 weight 2: down (unresolvable: NXDOMAIN)" in lines
    assert "      b.test:7003 weight 1 via 192.0.2.3:7003: unknown" in lines


def _resource(kind: str, observations: Mapping[str, object]) -> dict[str, object]:
    ready = [{"type": "Ready", "status": "True", "reason": "Applied", "message": ""}]
    return {"kind": kind, "name": "x", "conditions": ready, "observations": observations}


def test_the_text_shows_sets_domains_routes_members_and_edges() -> None:
    """What the README says `reconciler status` shows, in the shapes the capabilities' summaries have."""
    gateway = {
        "defaultAction": "reject",
        "sets": {"any ipv4": 3, "tcp ipv6": 1},
        "domains": {
            "app.partner.test": {"addresses": [{"address": "203.0.113.30", "ttl": 60}], "refused": ["10.1.2.3"]},
            "gone.partner.test": {"addresses": [], "error": "NXDOMAIN"},
        },
        "entries": [{"entry": "*.cdn.test", "reason": "WildcardNotEnforced", "message": "no answer names it"}],
    }
    pool = {"members": [{"ip": "203.0.113.5", "port": 19001, "available": False, "reason": "Banned: 3 failures"}]}
    edges = {
        "live": ["192.0.2.21"],
        "selected": ["192.0.2.22"],
        "edges": [{"host": "192.0.2.21", "tier": "pass_threshold", "live": True, "mode": "available", "comment": "a"}],
        "timings": {"192.0.2.21": {"last": 0.12, "average": 0.1}},
    }
    document = {
        **DOCUMENT,
        "resources": [
            _resource("EgressGateway", gateway),
            _resource("EgressRoute", {"nextHops": ["10.88.0.1"], "routes": 73}),
            _resource("IPPool", pool),
            _resource("EdgeNetwork", edges),
        ],
    }
    lines = render_status_text(document).splitlines()
    for expected in (
        "    sets: any ipv4 3, tcp ipv6 1",
        "    domain app.partner.test: 203.0.113.30; refused 10.1.2.3",
        "    domain gone.partner.test: no address; NXDOMAIN",
        "    entry *.cdn.test: WildcardNotEnforced: no answer names it",
        "    73 route(s) via 10.88.0.1",
        "    member 203.0.113.5:19001: unavailable (Banned: 3 failures)",
        "    live: 192.0.2.21",
        "    selected, not yet published: 192.0.2.22",
        "    edge 192.0.2.21: pass_threshold, live, available, last 0.12 s, mean 0.1 s, # a",
    ):
        assert expected in lines, (expected, lines)
