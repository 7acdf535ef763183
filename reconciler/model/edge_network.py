"""EdgeNetwork: edges probed over HTTP, the healthiest set published in BIND zone files."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from reconciler.model.common import EACH, Resource, Spec, Strict, ensure_unique
from reconciler.model.values import DnsName, FileMode, IPAddressValue, PositiveDuration

EdgeMode = Literal["available", "force", "blindforce", "unavailable"]


class Edge(Strict):
    """One edge; a plain string is an edge in mode 'available'."""

    host: str = Field(min_length=1, description="Host name or IP address of the edge.")
    mode: EdgeMode = Field(
        default="available",
        description="available: chosen by health; force: live if healthy; blindforce: always live; "
        "unavailable: never live.",
    )
    comment: str = Field(default="", max_length=500, description="Why the mode is set.")


class ProbeObject(Strict):
    """The object fetched from every edge."""

    url: str = Field(description="URL template; {host} is replaced by the edge.")
    host: DnsName | None = Field(default=None, description="Host header to send (the site the edges serve).")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$", description="Expected body checksum.")
    md5: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{32}$",
        description="Expected body MD5, as the old tool's configuration has it (accepted for migration; prefer "
        "sha256). With both, both must match.",
    )
    verifyTls: bool = Field(default=True, description="Verify the edge's certificate.")

    @field_validator("url")
    @classmethod
    def _template(cls, url: str) -> str:
        if not re.match(r"^https?://", url):
            raise ValueError("url must start with http:// or https://")
        if "{host}" not in url:
            raise ValueError("url must contain {host}, replaced by each edge")
        return url


class Rotation(Strict):
    """How often the live set may change (the old tool's dnschange_maxfreq, enforced)."""

    maxChanges: int = Field(default=10, ge=1, le=10_000, description="Changes of the live set allowed per window.")
    per: PositiveDuration = Field(default=timedelta(minutes=10), description="The window.")


class Zone(Strict):
    """A zone whose labels point at the live edges."""

    name: DnsName = Field(description="Zone origin, like example.org.")
    labels: tuple[str, ...] = Field(
        default=("@",),
        min_length=1,
        description="Owner names given the live edges' addresses; '@' is the apex.",
    )
    include: str | None = Field(
        default=None, description="Zone file fragment included verbatim (relative to the repo)."
    )
    template: str | None = Field(default=None, description="Jinja2 template for the zone (relative to the repo).")

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        for label in labels:
            if label != "@" and not re.fullmatch(
                r"(\*|[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(\.[A-Za-z0-9_-]+)*", label
            ):
                raise ValueError(f"'{label}' is not a relative owner name or '@'")
        return labels


class Nameserver(Strict):
    """A name server with its addresses: they are published as glue when it lies inside a zone written here."""

    name: DnsName = Field(description="The server's name, like ns1.example.org.")
    addresses: tuple[IPAddressValue, ...] = Field(
        min_length=1, max_length=16, description="Its IPv4 and IPv6 addresses (A and AAAA records in its zone)."
    )


def _inside(name: str, zone: str) -> bool:
    name, zone = name.rstrip(".").lower(), zone.rstrip(".").lower()
    return name == zone or name.endswith("." + zone)


class Soa(Strict):
    """The SOA record of every zone."""

    mname: DnsName = Field(description="Primary name server.")
    rname: DnsName = Field(description="Responsible mailbox, as a name (hostmaster.example.org.).")
    refresh: PositiveDuration = Field(default=timedelta(hours=12), description="SOA refresh.")
    retry: PositiveDuration = Field(default=timedelta(hours=3), description="SOA retry.")
    expire: PositiveDuration = Field(default=timedelta(weeks=2), description="SOA expire.")
    minimum: PositiveDuration = Field(default=timedelta(minutes=5), description="SOA minimum (negative TTL).")
    ttl: PositiveDuration = Field(default=timedelta(minutes=1), description="TTL of the edge records.")


class Output(Strict):
    """Where zone files go and what runs after a change."""

    dir: str = Field(min_length=1, description="Directory the zone files are written to.")
    check: bool = Field(default=True, description="Run named-checkzone before a file replaces the old one.")
    mode: FileMode = Field(
        default=0o644, description="Permission bits of the zone files, quoted: named (user bind) must read them."
    )
    group: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
        description="Group owning the zone files (a name or a number, like bind); left as it is when not set.",
    )
    afterChange: tuple[str, ...] = Field(
        default=(),
        description="Command (argument list, no shell) run after any zone changed, like [rndc, reload].",
    )


class EdgeNetworkSpec(Spec):
    """Edges, how they are judged, and where the result is published."""

    edges: tuple[str | Edge, ...] = Field(min_length=1, description="The edges: host names or {host, mode, comment}.")
    object: ProbeObject = Field(description="What is fetched from each edge.")
    interval: PositiveDuration = Field(default=timedelta(seconds=60), description="Probe round every.")
    timeout: PositiveDuration = Field(default=timedelta(seconds=10), description="A probe slower than this fails.")
    goodEnough: PositiveDuration = Field(
        default=timedelta(milliseconds=700), description="A probe at most this slow is a pass."
    )
    window: PositiveDuration = Field(default=timedelta(minutes=5), description="Window for the windowed mean.")
    history: int = Field(default=2000, ge=1, le=1_000_000, description="Probe results kept per edge.")
    liveCount: int = Field(default=4, ge=1, le=1000, description="How many edges are live.")
    rotation: Rotation = Field(default_factory=Rotation, description="Rotation limit.")
    zones: tuple[Zone, ...] = Field(min_length=1, description="Zones written.")
    soa: Soa = Field(description="SOA values.")
    nameservers: tuple[DnsName | Nameserver, ...] = Field(
        min_length=1,
        description="NS records of every zone: names, or {name, addresses} for a server inside a zone written here.",
    )
    canaries: dict[DnsName, IPAddressValue] = Field(
        default_factory=dict,
        description="Zone name -> canary edge address, published alongside the live set.",
    )
    canaryKiller: int = Field(
        default=6, ge=1, description="Disable all canaries for a run once this many canary probes failed."
    )
    output: Output = Field(description="Where zone files go.")

    @property
    def nameserver_names(self) -> tuple[str, ...]:
        """The NS records' names, as given or as ``{name, addresses}``."""
        return tuple(str(ns.name) if isinstance(ns, Nameserver) else str(ns) for ns in self.nameservers)

    @property
    def glue(self) -> dict[str, tuple[str, ...]]:
        """Name server -> its addresses, for those given with them (written where a server lies in its zone)."""
        return {
            str(ns.name): tuple(str(a) for a in ns.addresses) for ns in self.nameservers if isinstance(ns, Nameserver)
        }

    @property
    def edge_list(self) -> tuple[Edge, ...]:
        return tuple(e if isinstance(e, Edge) else Edge(host=e) for e in self.edges)

    @field_validator("edges")
    @classmethod
    def _unique_edges(cls, edges: tuple[str | Edge, ...]) -> tuple[str | Edge, ...]:
        ensure_unique((e.host if isinstance(e, Edge) else e for e in edges), "edge")
        return edges

    @model_validator(mode="after")
    def _consistent(self) -> EdgeNetworkSpec:
        if self.goodEnough >= self.timeout:
            raise ValueError("goodEnough must be shorter than timeout, or every timeout would pass")
        ensure_unique((z.name for z in self.zones), "zone")
        zones = {z.name for z in self.zones}
        for zone in self.canaries:
            if zone not in zones:
                raise ValueError(f"canary zone {zone} is not one of zones: {', '.join(sorted(zones))}")
        for ns in self.nameservers:
            if isinstance(ns, Nameserver):
                continue
            for written in self.zones:
                if _inside(ns, written.name) and written.include is None and written.template is None:
                    raise ValueError(
                        f"nameserver {ns}. is inside zone {written.name}, which has no address for it: named "
                        f"refuses such a zone; give it one, like {{name: {ns}., addresses: [192.0.2.53]}}, or use "
                        "a name server outside the zone"
                    )
        return self


class EdgeNetwork(Resource):
    """A set of edges published through DNS."""

    KIND: ClassVar[str] = "EdgeNetwork"
    FILES: ClassVar[tuple[tuple[str, ...], ...]] = (
        ("spec", "zones", EACH, "include"),
        ("spec", "zones", EACH, "template"),
    )
    kind: Literal["EdgeNetwork"] = Field(description="EdgeNetwork.")
    spec: EdgeNetworkSpec = Field(description="The edges and their publication.")
