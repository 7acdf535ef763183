"""Value types: what operators may write, and what they are told when it is wrong."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from reconciler.model.values import (
    FileMode,
    PortRange,
    domain_matches,
    format_duration,
    parse_dns_name,
    parse_domain_pattern,
    parse_duration,
    parse_host_port,
    parse_listen_address,
    parse_network,
    parse_port_range,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("700ms", 0.7), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("2w", 1_209_600), ("1.5s", 1.5), ("0s", 0)],
)
def test_durations_parse(text: str, seconds: float) -> None:
    """Durations are a number and a unit, repeated from the largest unit down."""
    assert parse_duration(text).total_seconds() == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("60", "has no unit"),
        ("5 minutes", "not a duration"),
        ("", "not a duration"),
        ("1h-5m", "not a duration"),
        ("99999999999999w", "too long a duration"),
    ],
)
def test_bad_durations_say_why(text: str, fragment: str) -> None:
    """A bare number is refused with the hint to add a unit."""
    with pytest.raises(ValueError, match=fragment):
        parse_duration(text)


@pytest.mark.parametrize("seconds", [0.7, 90, 5400, 86400 * 15 + 1.25])
def test_durations_round_trip(seconds: float) -> None:
    """format_duration writes what parse_duration reads back."""
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


def test_network_with_host_bits_shows_the_fix() -> None:
    """A CIDR with host bits set names the network that was probably meant."""
    with pytest.raises(ValueError, match=r"did you mean 198\.51\.100\.0/28\?"):
        parse_network("198.51.100.5/28")
    with pytest.raises(ValueError, match=r"did you mean 2001:db8::/32\?"):
        parse_network("2001:db8::1/32")


def test_bare_address_is_a_host_network() -> None:
    """An address without a prefix is the network of that one address."""
    assert parse_network("203.0.113.7") == ipaddress.ip_network("203.0.113.7/32")


def test_port_ranges() -> None:
    """A port or an inclusive range; reversed and out-of-range ports are refused."""
    assert parse_port_range("5300-5302") == PortRange(5300, 5302)
    assert list(parse_port_range("5300-5302")) == [5300, 5301, 5302]
    assert str(parse_port_range("443")) == "443"
    with pytest.raises(ValueError, match="write it as 5300-5302"):
        parse_port_range("5302-5300")
    with pytest.raises(ValueError, match="out of range"):
        parse_port_range("0")


def test_host_port_forms() -> None:
    """host:port with a name, IPv4 or bracketed IPv6; brackets are required for IPv6."""
    assert str(parse_host_port("echo.internal.example:7002")) == "echo.internal.example:7002"
    assert parse_host_port("[2001:db8::1]:443").host == ipaddress.ip_address("2001:db8::1")
    assert str(parse_host_port("[2001:db8::1]:443")) == "[2001:db8::1]:443"
    with pytest.raises(ValueError, match="brackets"):
        parse_host_port("2001:db8::1:443")
    with pytest.raises(ValueError, match="only one port"):
        parse_host_port("192.0.2.1:80-81")


def test_listen_addresses_conflict_on_wildcards() -> None:
    """Overlapping ports collide on the same address or when either side is a wildcard."""
    any_v4 = parse_listen_address("0.0.0.0:5300-5302")
    assert any_v4.conflicts_with(parse_listen_address("127.0.0.1:5301"))
    assert not any_v4.conflicts_with(parse_listen_address("127.0.0.1:5303"))
    assert not parse_listen_address("127.0.0.1:80").conflicts_with(parse_listen_address("127.0.0.2:80"))


def test_dns_names_are_idna_aware() -> None:
    """Unicode names become A-labels; case and a trailing dot are normalised away."""
    assert parse_dns_name("Bücher.Example.") == "xn--bcher-kva.example"
    assert parse_dns_name("API.partner.example") == "api.partner.example"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a" * 64 + ".example", "not a valid DNS name"),
        (".".join(["abcdefghi"] * 26), "longer than 253"),
        ("10.0.0.300", "all digits"),
        ("under_score.example", "not a valid DNS name"),
        ("-lead.example", "not a valid DNS name"),
        ("", "may not be empty"),
    ],
)
def test_bad_dns_names(text: str, fragment: str) -> None:
    """Label and name length limits, LDH rules and address look-alikes are refused."""
    with pytest.raises(ValueError, match=fragment):
        parse_dns_name(text)


def test_wildcards_match_exactly_one_label() -> None:
    """*.example.com matches a.example.com, not example.com and not a.b.example.com."""
    pattern = parse_domain_pattern("*.Example.com")
    assert pattern == "*.example.com"
    assert domain_matches(pattern, "a.example.com")
    assert domain_matches(pattern, "A.example.com.")
    assert not domain_matches(pattern, "example.com")
    assert not domain_matches(pattern, "a.b.example.com")
    assert domain_matches("example.com", "example.com")
    with pytest.raises(ValueError, match="leftmost label"):
        parse_domain_pattern("a*.example.com")
    # the operator's value is quoted whole (it said '*.example.com' is not a valid DNS name: Codepoint U+002A)
    with pytest.raises(ValueError, match=r"^'\*\.\*\.example\.com': a wildcard may only be a whole leftmost label"):
        parse_domain_pattern("*.*.example.com")
    with pytest.raises(ValueError, match=r"^'\*\.exa mple\.com': after '\*\.', "):
        parse_domain_pattern("*.exa mple.com")


def test_file_modes_are_quoted_octal() -> None:
    """'0644' and '640' are modes; an unquoted 0644 (YAML reads 644) or 0o644 (420) is refused, not guessed."""
    modes = TypeAdapter(FileMode)
    assert [modes.validate_python(text) for text in ("0644", "640", "0o600")] == [0o644, 0o640, 0o600]
    assert modes.dump_python(0o640, mode="json") == "0640"
    for wrong, said in ((644, "write the file mode quoted, like '0644'"), ("0999", "is not a file mode")):
        with pytest.raises(ValidationError, match=said):
            modes.validate_python(wrong)
