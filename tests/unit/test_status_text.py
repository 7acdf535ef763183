"""The status document as text: conditions without a trailing colon, per-target health of proxy apps."""

from __future__ import annotations

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
