"""Zone files rendered from the default template and an operator's own, against reviewed golden files; the serial
as YYYYMMDDnn, always increasing; a template that does not render is an error naming the zone."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from reconciler.model.edge_network import EdgeNetworkSpec, Nameserver, Soa
from reconciler.render.zone import ZoneTemplateError, next_serial, render_zone
from tests.golden import assert_golden

SOA = Soa.model_validate({"mname": "ns0.example.org.", "rname": "hostmaster.example.org.", "ttl": "1m"})
NS = ["ns1.example.org.", "ns2.example.org"]  # as validated names come: without their final dot
OWN = (
    "$ORIGIN {{ zone }}\n; serial {{ serial }}\n"
    "{% for a in addresses %}{{ labels[0] }} 30 IN {{ a.type }} {{ a.ip }}\n{% endfor %}"
)


def test_zones_match_their_golden_files() -> None:
    default = render_zone(
        "example.org",
        labels=["@", "www"],
        addresses=["203.0.113.20", "198.51.100.7", "2001:db8::20", "203.0.113.20"],
        soa=SOA,
        nameservers=NS,
        include="mail IN A 192.0.2.25\n",
    )
    own = render_zone(
        "example.net.",
        labels=["edge"],
        addresses=["192.0.2.10"],
        soa=SOA,
        nameservers=NS,
        template=OWN,
    )
    assert_golden(
        "zones.txt",
        "; default template, IPv4 and IPv6, include\n"
        + default.with_serial(2026120401)
        + "\n; an operator's template\n"
        + own.with_serial(2026120402),
    )


def test_the_body_is_what_changes_mean() -> None:
    one = render_zone("example.org", labels=["@"], addresses=["192.0.2.1"], soa=SOA, nameservers=NS)
    same = render_zone("example.org", labels=["@"], addresses=["192.0.2.1", "192.0.2.1"], soa=SOA, nameservers=NS)
    other = render_zone("example.org", labels=["@"], addresses=["192.0.2.2"], soa=SOA, nameservers=NS)
    assert one.body == same.body
    assert one.body != other.body


def test_serials() -> None:
    today = date(2026, 12, 4)
    assert next_serial(None, today) == 2026120400
    assert next_serial(2026120400, today) == 2026120401
    assert next_serial(2026113007, today) == 2026120400
    assert next_serial(2026120499, today) == 2026120500  # borrows tomorrow's, never goes back
    assert next_serial(next_serial(2026120499, today), today + timedelta(days=1)) == 2026120501


def test_a_template_that_does_not_render_names_the_zone() -> None:
    with pytest.raises(ZoneTemplateError, match=r"zone example.org: the template does not render: 'nope' is undefined"):
        render_zone("example.org", labels=["@"], addresses=[], soa=SOA, nameservers=NS, template="{{ nope }}")


def test_name_servers_inside_the_zone_get_their_glue() -> None:
    """ns1.example.org. in example.org gets its A and AAAA records; the apex itself as @; one outside gets none."""
    zone = render_zone(
        "example.org",
        labels=["www"],
        addresses=["203.0.113.20"],
        soa=SOA,
        nameservers=["ns1.example.org", "example.org", "ns.example.net"],
        glue={
            "ns1.example.org": ["2001:db8::53", "192.0.2.53"],
            "example.org": ["192.0.2.54"],
            "ns.example.net": ["192.0.2.55"],
        },
    )
    lines = zone.body.splitlines()
    assert [line for line in lines if " IN A" in line and not line.startswith("www")] == [
        "@ IN A 192.0.2.54",
        "ns1 IN A 192.0.2.53",
        "ns1 IN AAAA 2001:db8::53",
    ]


def test_an_in_zone_name_server_without_an_address_is_refused_at_validation() -> None:
    """named-checkzone would refuse the zone ("NS has no address records"): validate says so first, and how."""
    spec = {
        "edges": ["edge1.example.net"],
        "object": {"url": "https://{host}/edgemanage.txt"},
        "zones": [{"name": "example.org"}],
        "soa": {"mname": "ns0.example.org.", "rname": "hostmaster.example.org."},
        "nameservers": ["ns1.example.org."],
        "output": {"dir": "/var/cache/bind"},
    }
    with pytest.raises(
        ValidationError, match=r"nameserver ns1\.example\.org\. is inside zone example\.org, which has no address"
    ):
        EdgeNetworkSpec.model_validate(spec)
    glued = EdgeNetworkSpec.model_validate(
        {**spec, "nameservers": [{"name": "ns1.example.org.", "addresses": ["192.0.2.53"]}]}
    )
    assert glued.nameservers[0] == Nameserver.model_validate({"name": "ns1.example.org.", "addresses": ["192.0.2.53"]})
    assert (glued.nameserver_names, glued.glue) == (("ns1.example.org",), {"ns1.example.org": ("192.0.2.53",)})
    bare = EdgeNetworkSpec.model_validate({**spec, "nameservers": ["ns.example.net."]})
    assert (bare.nameserver_names, bare.glue) == (("ns.example.net",), {})
