"""A listen port that an outgoing connection holds: the kernel refuses the bind although nothing listens, and
the proxy's error says why and what to reserve (real sockets; the kernel's own port range)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from reconciler.model.proxy_config import AppSettings
from reconciler.proxy.engine import Engine
from reconciler.proxy.plane import AppSpec, DataPlane
from reconciler.system.ports import listening, outgoing_range_holding


def test_a_port_held_by_an_outgoing_connection_is_named_in_the_listen_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        outgoing = socket.create_connection(server.getsockname())  # its local port comes from the kernel's range
        port = outgoing.getsockname()[1]
        assert outgoing_range_holding(port) is not None, "the kernel gave a port outside its own range"
        engine = Engine(time.monotonic)
        plane = DataPlane(engine, drain=0.1)
        try:
            errors = plane.apply({"apps/web": AppSpec((("127.0.0.1", port),), AppSettings(), ())})
            why = errors["apps/web"][f"127.0.0.1:{port}"]
            assert why.startswith("Address already in use; ")
            low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
            assert (
                f"no program listens there, but port {port} is inside net.ipv4.ip_local_port_range ({low}-{high})"
                in why
            )
            assert "net.ipv4.ip_local_reserved_ports" in why
        finally:
            plane.stop()
            engine.close()
            outgoing.close()


def test_reserved_ports_and_ports_outside_the_range_get_no_hint(tmp_path: Path) -> None:
    port_range, reserved = tmp_path / "range", tmp_path / "reserved"
    port_range.write_text("32768\t60999\n")
    reserved.write_text("40000,47001-47003\n")
    holding = {p: outgoing_range_holding(p, port_range=port_range, reserved=reserved) for p in (8080, 32768, 40000)}
    assert holding == {8080: None, 32768: (32768, 60999), 40000: None}
    assert outgoing_range_holding(47002, port_range=port_range, reserved=reserved) is None
    assert outgoing_range_holding(47004, port_range=port_range, reserved=reserved) == (32768, 60999)
    reserved.write_text("\n")
    assert outgoing_range_holding(40000, port_range=port_range, reserved=reserved) == (32768, 60999)
    assert outgoing_range_holding(40000, port_range=tmp_path / "missing", reserved=reserved) is None


def test_a_port_a_program_listens_on_is_said_to_be_taken_by_it() -> None:
    """A listener holds the port: the error says so, not that the port range might be at fault."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        engine = Engine(time.monotonic)
        plane = DataPlane(engine, drain=0.1)
        try:
            errors = plane.apply({"apps/web": AppSpec((("127.0.0.1", port),), AppSettings(), ())})
            why = errors["apps/web"][f"127.0.0.1:{port}"]
            said = f"a program listens on port {port} already (ss -ltnp 'sport = :{port}' names it)"
            assert why == f"Address already in use; {said}"
        finally:
            plane.stop()
            engine.close()
    assert listening(port) is False
