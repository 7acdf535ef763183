"""The local ports the kernel hands to outgoing connections (``net.ipv4.ip_local_port_range``, less
``net.ipv4.ip_local_reserved_ports``; the IPv4 settings apply to IPv6 too).

A listener on such a port can find it taken by an outgoing connection, or by one in TIME_WAIT for a minute after
it closed, and fails with "address already in use" although nothing listens there: a restart after busy traffic
is enough. The proxy names this when a bind fails, so the operator knows what to reserve.
"""

from __future__ import annotations

from pathlib import Path

PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
RESERVED_PORTS = Path("/proc/sys/net/ipv4/ip_local_reserved_ports")


def _reserved(text: str, port: int) -> bool:
    for part in text.replace("\n", ",").split(","):
        low, _, high = part.strip().partition("-")
        if low.isdigit() and int(low) <= port <= int(high if high.isdigit() else low):
            return True
    return False


def outgoing_range_holding(
    port: int, *, port_range: Path = PORT_RANGE, reserved: Path = RESERVED_PORTS
) -> tuple[int, int] | None:
    """The kernel's range of ports for outgoing connections if ``port`` is in it and not reserved, else None
    (also when the settings cannot be read)."""
    try:
        low, high = (int(value) for value in port_range.read_text().split())
        reserved_text = reserved.read_text() if reserved.exists() else ""
    except (OSError, ValueError):
        return None
    if not low <= port <= high or _reserved(reserved_text, port):
        return None
    return low, high


LISTEN_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
TCP_LISTEN = "0A"  # the state column of a listening socket in /proc/net/tcp


def listening(port: int, *, tables: tuple[Path, ...] = LISTEN_TABLES) -> bool | None:
    """Whether a socket of this network namespace listens on TCP ``port``; None when the tables cannot be read."""
    try:
        rows = [line.split() for table in tables if table.exists() for line in table.read_text().splitlines()[1:]]
    except OSError:
        return None
    return any(len(row) > 3 and row[3] == TCP_LISTEN and int(row[1].rpartition(":")[2], 16) == port for row in rows)


def listen_hint(port: int, *, tables: tuple[Path, ...] = LISTEN_TABLES) -> str:
    """What to add to "address already in use" for ``port``: which program class holds it, checked first."""
    if listening(port, tables=tables):
        return f"; a program listens on port {port} already (ss -ltnp 'sport = :{port}' names it)"
    span = outgoing_range_holding(port)
    if span is None:
        return ""
    return (
        f"; no program listens there, but port {port} is inside net.ipv4.ip_local_port_range ({span[0]}-{span[1]}),"
        " where outgoing connections take their ports (and keep them a minute in TIME_WAIT): reserve it with"
        " net.ipv4.ip_local_reserved_ports"
    )
