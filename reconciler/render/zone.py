"""Zone files (pure) for an EdgeNetwork: SOA, NS, the live edges' A and AAAA records on each label, and an include
fragment, from a Jinja2 template (the default one here, or the operator's own).

The serial is ``YYYYMMDDnn`` and moves only when the zone's content changes: ``body`` (the zone without its
serial) is what the applier compares with what it wrote last time.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from jinja2 import Environment, StrictUndefined, TemplateError

from reconciler.model.edge_network import Soa

SERIAL_MARK = "@@SERIAL@@"
DEFAULT_TEMPLATE = """\
$ORIGIN {{ zone }}
$TTL {{ ttl }}
@ IN SOA {{ soa.mname }} {{ soa.rname }} (
    {{ serial }} ; serial (YYYYMMDDnn)
    {{ soa.refresh }} ; refresh
    {{ soa.retry }} ; retry
    {{ soa.expire }} ; expire
    {{ soa.minimum }} ; minimum
)
{% for ns in nameservers %}@ IN NS {{ ns }}
{% endfor %}{% for owner, address in glue %}{{ owner }} IN {{ address.type }} {{ address.ip }}
{% endfor %}{% for label in labels %}{% for address in addresses %}{{ label }} IN {{ address.type }} {{ address.ip }}
{% endfor %}{% endfor %}{% if include %}
; included from the desired state
{{ include }}
{% endif %}"""


class ZoneTemplateError(ValueError):
    """An operator's template that does not render."""


@dataclass(frozen=True, slots=True)
class Record:
    type: str  # A | AAAA
    ip: str


@dataclass(frozen=True)
class RenderedZone:
    name: str
    body: str  # the zone with a placeholder instead of its serial: what changes mean

    def with_serial(self, serial: int) -> str:
        return self.body.replace(SERIAL_MARK, str(serial))


def _seconds(value: float) -> int:
    return int(value)


def _absolute(name: str) -> str:
    """A name as a zone file needs it to mean itself: with its final dot (without one it is relative to the
    origin: ns1.example.org would be ns1.example.org.example.org.)."""
    return name if name.endswith(".") else name + "."


def _glue(zone: str, glue: Mapping[str, Sequence[str]]) -> list[tuple[str, Record]]:
    """(owner relative to the zone, record) for each name server inside ``zone``, in name order."""
    origin = _absolute(zone).lower()
    found: list[tuple[str, Record]] = []
    for name in sorted(glue):
        absolute = _absolute(name).lower()
        if absolute == origin:
            found += [("@", record) for record in records(glue[name])]
        elif absolute.endswith("." + origin):
            found += [(absolute[: -len(origin) - 1], record) for record in records(glue[name])]
    return found


def records(addresses: Sequence[str]) -> list[Record]:
    """A and AAAA records, IPv4 first, each address once, in address order."""
    parsed = sorted({ipaddress.ip_address(a) for a in addresses}, key=lambda a: (a.version, int(a)))
    return [Record("A" if a.version == 4 else "AAAA", str(a)) for a in parsed]


def render_zone(
    zone: str,
    *,
    labels: Sequence[str],
    addresses: Sequence[str],
    soa: Soa,
    nameservers: Sequence[str],
    glue: Mapping[str, Sequence[str]] | None = None,
    include: str | None = None,
    template: str | None = None,
) -> RenderedZone:
    """The zone's text with its serial left as a placeholder. ``glue``: name server -> its addresses, written for
    the servers inside this zone (named refuses a zone whose in-zone NS has no address). Raises ZoneTemplateError
    for a template that fails to render (an undefined name is an error, not an empty string)."""
    environment = Environment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)  # noqa: S701 zone files are not HTML
    values = {
        "zone": _absolute(zone),
        "ttl": _seconds(soa.ttl.total_seconds()),
        "serial": SERIAL_MARK,
        "soa": {
            "mname": _absolute(soa.mname),
            "rname": _absolute(soa.rname),
            "refresh": _seconds(soa.refresh.total_seconds()),
            "retry": _seconds(soa.retry.total_seconds()),
            "expire": _seconds(soa.expire.total_seconds()),
            "minimum": _seconds(soa.minimum.total_seconds()),
        },
        "nameservers": [_absolute(ns) for ns in nameservers],
        "labels": list(labels),
        "addresses": records(addresses),
        "glue": _glue(zone, glue or {}),
        "include": (include or "").rstrip("\n"),
    }
    try:
        body = environment.from_string(template or DEFAULT_TEMPLATE).render(**values)
    except TemplateError as exc:
        raise ZoneTemplateError(f"zone {zone}: the template does not render: {exc}") from exc
    return RenderedZone(zone, body)


def next_serial(previous: int | None, today: date) -> int:
    """``YYYYMMDDnn`` for ``today``, always above ``previous`` (a zone changed 100 times a day borrows tomorrow's
    numbers, as BIND operators do)."""
    first = int(today.strftime("%Y%m%d")) * 100
    if previous is None or previous < first:
        return first
    return previous + 1
