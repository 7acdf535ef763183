"""Pool members from real nginx configuration files (crossplane): server blocks with proxy_bind, upstream server
lines with their parameters, includes with globs, and what cannot be a member reported with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import ObserveError
from reconciler.observers.nginx_members import NginxMember, server_members, upstream_members
from reconciler.system.nginx import read_nginx_config
from tests.conftest import EXAMPLE


def test_the_example_files() -> None:
    proxies = server_members(read_nginx_config(EXAMPLE / "files" / "nginx" / "003-proxies.conf"))
    assert [(m.ip, m.port) for m in proxies.members] == [
        ("203.0.113.5", 19001),
        ("203.0.113.6", 19002),
        ("203.0.113.8", 19003),
        ("203.0.113.9", 19004),
    ]
    assert proxies.problems == ()
    crawler = upstream_members(read_nginx_config(EXAMPLE / "files" / "nginx" / "upstream.conf"), "crawler")
    assert [(m.ip, m.port, m.max_fails) for m in crawler.members] == [
        ("198.51.100.20", 8080, None),
        ("198.51.100.21", 8080, None),
        ("198.51.100.22", 8080, 3),
    ]


def test_includes_quoting_comments_and_problems(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "nginx.conf").write_text(
        "# the pool\nstream {\n  include conf.d/*.conf;\n"
        "  upstream pool { server 203.0.113.7:19010 weight=3 max_fails=2; server '203.0.113.8:19011' backup down;"
        " server edge.example:1; }\n}\n"
    )
    (tmp_path / "conf.d" / "a.conf").write_text(
        'server { listen 127.0.0.1:19001 reuseport; listen [::1]:19002; proxy_bind "203.0.113.5" transparent; }\n'
        "server { listen 19003; proxy_bind $remote_addr; }  # not a fixed address\n"
        "server { listen 19004; }\n"
    )
    directives = read_nginx_config(tmp_path / "nginx.conf")
    servers = server_members(directives)
    assert [(m.ip, m.port) for m in servers.members] == [("203.0.113.5", 19001), ("203.0.113.5", 19002)]
    assert servers.members[0].where == f"{tmp_path}/conf.d/a.conf:1"
    assert servers.problems == (
        f"{tmp_path}/conf.d/a.conf:2: server block with proxy_bind $remote_addr: not a pool member (needs an address)",
        f"{tmp_path}/conf.d/a.conf:3: server block with no proxy_bind: not a pool member (needs an address)",
    )
    pool = upstream_members(directives, "pool")
    assert pool.members == (
        NginxMember("203.0.113.7", 19010, weight=3, max_fails=2, where=f"{tmp_path}/nginx.conf:4"),
        NginxMember("203.0.113.8", 19011, backup=True, down=True, where=f"{tmp_path}/nginx.conf:4"),
    )
    assert pool.problems == (f"{tmp_path}/nginx.conf:4: server edge.example:1: a name, not an address",)
    assert upstream_members(directives, "other").problems == ("no upstream other {} block",)


def test_a_file_nginx_would_refuse_is_an_error_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.conf").write_text("server {\n  listen 19001;\n")
    with pytest.raises(ObserveError, match=r"bad.conf:\d+: unexpected end of file"):
        read_nginx_config(tmp_path / "bad.conf")
    with pytest.raises(ObserveError, match="No such file"):
        read_nginx_config(tmp_path / "missing.conf")
