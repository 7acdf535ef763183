"""Pool members from an nginx configuration (as ``system/nginx`` reads it): each ``server {}`` block's
``listen`` port with its ``proxy_bind`` address, or the ``server`` lines of a named ``upstream {}`` block with
``weight``, ``max_fails``, ``backup`` and ``down``. What cannot be a member is reported, not guessed."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from reconciler.model.values import split_host_port
from reconciler.system.nginx import Directive


@dataclass(frozen=True, slots=True)
class NginxMember:
    ip: str
    port: int
    weight: int = 1
    max_fails: int | None = None
    backup: bool = False
    down: bool = False
    where: str = ""  # file:line


@dataclass(frozen=True)
class NginxMembers:
    members: tuple[NginxMember, ...]
    problems: tuple[str, ...]  # 'file:line: why a block gave no member'


def _walk(directives: Sequence[Directive]) -> Iterator[Directive]:
    for directive in directives:
        yield directive
        if directive.block is not None:
            yield from _walk(directive.block)


def _port(listen: str) -> int | None:
    """The port of a ``listen`` argument: '19001', '127.0.0.1:19001', '[::1]:19001' (not 'unix:...')."""
    if listen.startswith("unix:"):
        return None
    text = listen if not listen.isdigit() else f"*:{listen}"
    try:
        _, port = split_host_port(text)
        return int(port)
    except ValueError:
        return None


def _ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def server_members(directives: Sequence[Directive]) -> NginxMembers:
    """A member per ``listen`` port of each ``server {}`` block that has a literal ``proxy_bind`` address."""
    members: list[NginxMember] = []
    problems: list[str] = []
    for block in _walk(directives):
        if block.name != "server" or block.block is None:
            continue
        where = f"{block.file}:{block.line}"
        binds = [d for d in block.block if d.name == "proxy_bind"]
        ports = [p for d in block.block if d.name == "listen" and d.args for p in [_port(d.args[0])] if p]
        ip = _ip(binds[0].args[0]) if binds and binds[0].args else None
        if ip is None:
            shown = f"proxy_bind {binds[0].args[0]}" if binds and binds[0].args else "no proxy_bind"
            problems.append(f"{where}: server block with {shown}: not a pool member (needs an address)")
            continue
        if not ports:
            problems.append(f"{where}: server block binding {ip} listens on no port")
            continue
        members += [NginxMember(ip, port, where=where) for port in ports]
    return NginxMembers(tuple(members), tuple(problems))


def upstream_members(directives: Sequence[Directive], name: str) -> NginxMembers:
    """The ``server`` lines of ``upstream name {}``."""
    members: list[NginxMember] = []
    problems: list[str] = []
    blocks = [d for d in _walk(directives) if d.name == "upstream" and d.args[:1] == (name,) and d.block]
    if not blocks:
        return NginxMembers((), (f"no upstream {name} {{}} block",))
    for line in (d for block in blocks for d in block.block or () if d.name == "server" and d.args):
        where = f"{line.file}:{line.line}"
        try:
            host, port = split_host_port(line.args[0])
        except ValueError:
            problems.append(f"{where}: server {line.args[0]}: not an address:port")
            continue
        ip = _ip(host)
        if ip is None:
            problems.append(f"{where}: server {line.args[0]}: a name, not an address")
            continue
        options = dict(arg.split("=", 1) for arg in line.args[1:] if "=" in arg)
        flags = set(line.args[1:])
        members.append(
            NginxMember(
                ip,
                int(port),
                weight=int(options.get("weight", "1")),
                max_fails=int(options["max_fails"]) if "max_fails" in options else None,
                backup="backup" in flags,
                down="down" in flags,
                where=where,
            )
        )
    return NginxMembers(tuple(members), tuple(problems))
