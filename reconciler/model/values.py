"""Value types of desired-state documents: durations, addresses, networks, ports, host names, node names.

Each type is parsed from the string an operator writes and kept as a typed value (``timedelta``, ``IPv4Network``,
``HostPort``...). Errors say what was expected and, where we can tell, what was probably meant. Every type
serialises back to the string form and has a JSON Schema of that string form, so ``schemas/`` matches what
people write.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal, TypeVar

import idna
from pydantic import Field, PlainSerializer, PlainValidator, WithJsonSchema

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

T = TypeVar("T")


def _from_string(parse: Callable[[str], T], *accept: type) -> PlainValidator:
    """A validator that keeps already-typed values and parses strings (and bare numbers, for ports)."""

    def validate(value: object) -> T:
        if accept and isinstance(value, accept):
            return value  # type: ignore[return-value]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"expected a string, got {type(value).__name__}")
        return parse(str(value))

    return PlainValidator(validate)


_AS_STRING = PlainSerializer(str, return_type=str, when_used="json")


# --- durations ------------------------------------------------------------------------------------------------

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
DURATION_PATTERN = r"^(\d+(\.\d+)?(ms|s|m|h|d|w))+$"


def parse_duration(text: str) -> timedelta:
    """``700ms``, ``90s``, ``5m``, ``1h30m``, ``2w`` -> timedelta. A bare number is refused: its unit is a guess."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        raise ValueError(f"'{text}' has no unit: write it as '{text}s', '{text}m' or '{text}ms'")
    pos, seconds = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"'{text}' is not a duration: use a number and a unit (ms, s, m, h, d, w), like 90s or 1h30m")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:  # a mistyped number of digits: timedelta ends at 999,999,999 days
        raise ValueError(f"'{text}' is too long a duration: the longest is 999999999d") from None


def format_duration(value: timedelta) -> str:
    """The shortest exact form: 90 s -> '1m30s', 0.7 s -> '700ms'."""
    ms = round(value.total_seconds() * 1000)
    if ms == 0:
        return "0s"
    parts = []
    for unit, size in (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    if ms:
        parts.append(f"{ms}ms")
    return "".join(parts)


def _validate_duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"{value} has no unit: write it as '{value}s', '{value}m' or '{value}ms'")
    if not isinstance(value, str):
        raise ValueError(f"expected a duration like '90s', got {type(value).__name__}")
    return parse_duration(value)


def _positive_duration(value: object) -> timedelta:
    duration = _validate_duration(value)
    if duration <= timedelta(0):
        raise ValueError("must be longer than zero")
    return duration


_DURATION_SCHEMA = {
    "type": "string",
    "pattern": DURATION_PATTERN,
    "examples": ["700ms", "90s", "5m", "1h30m"],
}

Duration = Annotated[
    timedelta,
    PlainValidator(_validate_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema(_DURATION_SCHEMA),
]
PositiveDuration = Annotated[
    timedelta,
    PlainValidator(_positive_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema({**_DURATION_SCHEMA, "description": "longer than zero"}),
]


# --- addresses and networks -----------------------------------------------------------------------------------


def parse_ip(text: str) -> IPAddress:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        raise ValueError(f"'{text}' is not an IPv4 or IPv6 address") from None


def parse_network(text: str) -> IPNetwork:
    """A network in CIDR notation; a bare address is a /32 (or /128). Host bits set are an error with the fix."""
    text = text.strip()
    try:
        return ipaddress.ip_network(text)
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"'{text}' is not a network in CIDR notation, like 198.51.100.0/24") from None
    raise ValueError(f"'{text}' has host bits set: did you mean {loose}?")


def _file_mode(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML reads an unquoted 0644 as the number 644 and 0o644 as 420: either guess would be wrong for someone
        raise ValueError(f"write the file mode quoted, like '0644' (the unquoted {value} is read as a number)")
    if not isinstance(value, str) or not re.fullmatch(r"0?o?[0-7]{3}", value):
        raise ValueError(f"{value!r} is not a file mode: write three octal digits, quoted, like '0644'")
    return int(value.replace("o", ""), 8)


FileMode = Annotated[
    int,
    PlainValidator(_file_mode),
    PlainSerializer(lambda mode: f"0{mode:03o}", return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^0?o?[0-7]{3}$", "examples": ["0644", "0640"]}),
]
"""Permission bits of a file the agent writes, as chmod takes them."""


_IP_SCHEMA = {
    "type": "string",
    "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}],
    "examples": ["203.0.113.7"],
}
_NET_SCHEMA = {"type": "string", "pattern": r"^[0-9a-fA-F:.]+(/\d{1,3})?$", "examples": ["198.51.100.0/28"]}

IPAddressValue = Annotated[
    IPAddress,
    _from_string(parse_ip, ipaddress.IPv4Address, ipaddress.IPv6Address),
    _AS_STRING,
    WithJsonSchema(_IP_SCHEMA),
]
IPNetworkValue = Annotated[
    IPNetwork,
    _from_string(parse_network, ipaddress.IPv4Network, ipaddress.IPv6Network),
    _AS_STRING,
    WithJsonSchema(_NET_SCHEMA),
]


# --- ports ----------------------------------------------------------------------------------------------------

Port = Annotated[int, Field(ge=1, le=65535)]


@dataclass(frozen=True, slots=True, order=True)
class PortRange:
    """An inclusive range of TCP/UDP ports; a single port is a range of one."""

    first: int
    last: int

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"

    def __iter__(self) -> Any:
        return iter(range(self.first, self.last + 1))

    def __len__(self) -> int:
        return self.last - self.first + 1

    def overlaps(self, other: PortRange) -> bool:
        return self.first <= other.last and other.first <= self.last

    def covers(self, other: PortRange) -> bool:
        return self.first <= other.first and other.last <= self.last


def parse_port_range(text: str) -> PortRange:
    match = re.fullmatch(r"\s*(\d{1,5})\s*(?:-\s*(\d{1,5})\s*)?", text)
    if not match:
        raise ValueError(f"'{text}' is not a port or a port range like 5300-5302")
    first = int(match.group(1))
    last = int(match.group(2) or first)
    for port in (first, last):
        if not 1 <= port <= 65535:
            raise ValueError(f"port {port} is out of range 1-65535")
    if last < first:
        raise ValueError(f"'{text}' is an empty range: write it as {last}-{first}")
    return PortRange(first, last)


PortRangeValue = Annotated[
    PortRange,
    _from_string(parse_port_range, PortRange),
    _AS_STRING,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": 65535},
                {"type": "string", "pattern": r"^\d+(-\d+)?$"},
            ]
        }
    ),
]


# --- DNS names ------------------------------------------------------------------------------------------------

_LDH_NAME = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*")


def parse_dns_name(text: str) -> str:
    """A host name, IDNA-aware: Unicode names are stored as their A-label (``bücher.example`` -> ``xn--...``).

    A trailing dot is accepted and dropped (zone files add it back). At most 253 characters and 63 per label;
    the last label may not be all digits, so that a mistyped address is not taken for a name.
    """
    name = text.strip().rstrip(".") if text.strip() != "." else ""
    if not name:
        raise ValueError("a DNS name may not be empty")
    lowered = name.lower()
    if not lowered.isascii() or not _LDH_NAME.fullmatch(lowered):
        try:
            lowered = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise ValueError(f"'{text}' is not a valid DNS name: {exc}") from None
    if len(lowered) > 253:
        raise ValueError(f"'{text}' is longer than 253 characters")
    if lowered.rsplit(".", 1)[-1].isdigit():
        raise ValueError(f"'{text}' is neither an IP address nor a DNS name (its last label is all digits)")
    return lowered


def parse_domain_pattern(text: str) -> str:
    """A DNS name, or ``*.`` and a name: the wildcard stands for exactly one label (as in DNS and TLS)."""
    stripped = text.strip()
    if stripped.startswith("*.") and "*" not in stripped[2:]:
        try:
            return "*." + parse_dns_name(stripped[2:])
        except ValueError as exc:
            raise ValueError(f"'{text}': after '*.', {exc}") from None
    if "*" in stripped:  # quoted whole: the operator's value, not the part after a first wildcard
        raise ValueError(f"'{text}': a wildcard may only be a whole leftmost label, like *.example.com")
    return parse_dns_name(stripped)


def domain_matches(pattern: str, name: str) -> bool:
    """``*.example.com`` matches ``a.example.com`` but neither ``example.com`` nor ``a.b.example.com``."""
    name = name.rstrip(".").lower()
    if pattern.startswith("*."):
        head, _, tail = name.partition(".")
        return bool(head) and tail == pattern[2:]
    return name == pattern


_NAME_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 254, "examples": ["api.partner.example"]}
DnsName = Annotated[str, _from_string(parse_dns_name), WithJsonSchema(_NAME_SCHEMA)]
DomainPattern = Annotated[
    str,
    _from_string(parse_domain_pattern),
    WithJsonSchema({**_NAME_SCHEMA, "examples": ["api.partner.example", "*.cdn.partner.example"]}),
]


Balance = Literal["round-robin", "random", "least-connections"]
"""How a proxy picks a target for a new connection (TCPProxy and IPPool alike)."""


# --- host:port and listen addresses ---------------------------------------------------------------------------


def split_host_port(text: str) -> tuple[str, str]:
    """``host:port`` or ``[v6]:port`` -> (host without brackets, port text); the one parser of the project."""
    text = text.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"'{text}' is not [IPv6]:port")
        return host, port
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"'{text}' is not host:port")
    if ":" in host:
        raise ValueError(f"'{text}': write an IPv6 address in brackets, like [{host}]:{port}")
    return host, port


def host_and_port(text: str) -> tuple[str, int]:
    """``host:port`` (as ``str(HostPort)`` writes it) -> (host, port number)."""
    host, port = split_host_port(text)
    return host, int(port)


def parse_api_listen(text: str) -> str:
    """An HTTP listener's ``host:port`` (``:port``: loopback) checked as an operator wrote it: a port outside
    1-65535 is refused, not bound as whatever the socket makes of it."""
    _, port = split_host_port(f"127.0.0.1{text}" if text.startswith(":") else text)
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"'{text}': the port must be a number from 1 to 65535, not '{port}'")
    return text


def format_host_port(host: str, port: int) -> str:
    """The inverse of ``host_and_port``: IPv6 addresses in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _format_host(host: IPAddress | str) -> str:
    return f"[{host}]" if isinstance(host, ipaddress.IPv6Address) else str(host)


@dataclass(frozen=True, slots=True)
class HostPort:
    """A host (IP address or DNS name) and one port, written ``host:port`` or ``[v6]:port``."""

    host: IPAddress | str
    port: int

    def __str__(self) -> str:
        return f"{_format_host(self.host)}:{self.port}"


def parse_host(text: str) -> IPAddress | str:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return parse_dns_name(text)


def parse_host_port(text: str) -> HostPort:
    host, port = split_host_port(text)
    ports = parse_port_range(port)
    if len(ports) != 1:
        raise ValueError(f"'{text}' names a port range; only one port is allowed here")
    return HostPort(parse_host(host), ports.first)


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """A local IP address and one port or a range of ports: ``0.0.0.0:5001``, ``[::]:5300-5302``."""

    host: IPAddress
    ports: PortRange

    def __str__(self) -> str:
        return f"{_format_host(self.host)}:{self.ports}"

    def conflicts_with(self, other: ListenAddress) -> bool:
        """Two listeners collide when their ports overlap and one address is the other or a wildcard."""
        if not self.ports.overlaps(other.ports):
            return False
        return self.host == other.host or self.host.is_unspecified or other.host.is_unspecified


def parse_listen_address(text: str) -> ListenAddress:
    host, port = split_host_port(text)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"'{host}' is not an IP address to listen on (use 0.0.0.0, [::] or a local address)") from None
    return ListenAddress(address, parse_port_range(port))


HostPortValue = Annotated[
    HostPort,
    _from_string(parse_host_port, HostPort),
    _AS_STRING,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^(\[[0-9a-fA-F:.]+\]|[^:\[\]]+):\d+$",
            "examples": ["192.0.2.10:7001"],
        }
    ),
]
ListenAddressValue = Annotated[
    ListenAddress,
    _from_string(parse_listen_address, ListenAddress),
    _AS_STRING,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^(\[[0-9a-fA-F:.]+\]|[0-9.]+):\d+(-\d+)?$",
            "examples": ["0.0.0.0:5300-5302"],
        }
    ),
]


# --- names of resources and nodes -----------------------------------------------------------------------------

RESOURCE_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
ResourceName = Annotated[str, Field(pattern=RESOURCE_NAME_PATTERN, max_length=63)]

NODE_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
NodeName = Annotated[str, Field(pattern=NODE_NAME_PATTERN, max_length=253)]
ALL_NODES = "*"
NODE_SELECTOR_PATTERN = rf"({NODE_NAME_PATTERN})|(^\*$)"
NodeSelectorItem = Annotated[str, Field(pattern=NODE_SELECTOR_PATTERN, max_length=253)]
