"""outputGuard's /show-all rows and its reading of nonDeletable, as its server (Go) made them."""

from __future__ import annotations

from reconciler.console.legacy import GO_TRUE, kind_of, record


def test_rows_are_the_old_servers_records() -> None:
    cidr = {"destination": "203.0.113.0/28", "type": "cidr", "protected": True}
    assert record(3, cidr) == {
        "ID": 3,
        "Types": "IP",
        "IP": "203.0.113.0/28",
        "Name": "203.0.113.0/28",
        "IsNoDel": True,
        "IsLocalNet": False,
        "CreatedAt": "0001-01-01T00:00:00Z",
    }
    assert record(1, {"destination": "100.64.1.2", "type": "ip", "protected": False})["IsLocalNet"] is True
    domain = record(2, {"destination": "api.example.com", "type": "domain", "protected": False})
    assert (domain["Types"], domain["IP"], domain["Name"]) == ("Domain", "", "api.example.com")


def test_non_deletable_is_read_as_go_parses_a_bool() -> None:
    assert {"1", "t", "T", "TRUE", "true", "True"} == GO_TRUE
    for not_true in ("", "0", "false", "yes", "on", "tRuE"):
        assert not_true not in GO_TRUE
    assert (kind_of("203.0.113.7"), kind_of("203.0.113.0/28"), kind_of("api.example.com")) == ("ip", "cidr", "domain")
