"""nginx log_format strings compiled into parsers: the predefined combined format, custom formats, the three
escape modes, upstream lists, and lines that do not parse counted instead of failing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.formats.access_log import LogReader, read_requests, requests
from reconciler.formats.log_format import compile_format, split_list, variables

EXAMPLE = '$remote_addr - [$time_local] "$request" $status $server_port $upstream_addr $request_time'
LINE = (
    b'198.51.100.7 - [04/Dec/2026:21:01:15 +0000] "CONNECT api.partner.example:443 HTTP/1.1" 502 19001 '
    b"127.0.0.1:19001, 127.0.0.1:19002 0.012\n"
)


def test_combined_is_nginx_predefined_format() -> None:
    parser = compile_format("combined", ["status", "request", "http_user_agent"])
    line = (
        b'203.0.113.9 - - [04/Dec/2026:21:01:15 +0000] "GET /a?q=\\x22x\\x22 HTTP/1.1" 200 512 "-" '
        b'"curl/8.0 (x86_64)"\n'
    )
    rows, lines = parser.parse(line)
    assert lines == 1
    assert rows == [(b"GET /a?q=\\x22x\\x22 HTTP/1.1", b"200", b"curl/8.0 (x86_64)")]
    assert variables("combined")[:3] == ("remote_addr", "remote_user", "time_local")


def test_a_custom_format_captures_what_is_asked_and_skips_the_rest() -> None:
    parser = compile_format(EXAMPLE, ["status", "server_port", "upstream_addr"])
    rows, lines = parser.parse(LINE * 3)
    assert lines == 3
    assert rows == [(b"502", b"19001", b"127.0.0.1:19001, 127.0.0.1:19002")] * 3


def test_escape_modes() -> None:
    json_line = b'{"s":"200","r":"GET /\\"quoted\\" HTTP/1.1"}\n'
    parser = compile_format('{"s":"$status","r":"$request"}', ["status", "request"], escape="json")
    assert parser.parse(json_line)[0] == [(b"200", b'GET /\\"quoted\\" HTTP/1.1')]
    raw = compile_format('"$request" $status', ["status"], escape="none")
    assert raw.parse(b'"GET /"odd" HTTP/1.1" 404\n')[0] == [(b"404",)]
    with pytest.raises(ValueError, match="escape=xml"):
        compile_format(EXAMPLE, ["status"], escape="xml")
    with pytest.raises(ValueError, match=r"has no \$msec"):
        compile_format(EXAMPLE, ["msec"])


def test_garbage_truncated_and_binary_lines_are_counted_not_fatal() -> None:
    parser = compile_format(EXAMPLE, ["status", "server_port"])
    chunk = (
        LINE
        + b"garbage\n"
        + LINE[:40]
        + b"\n"
        + b"\x00\xff\xfe binary \x80\n"
        + LINE.replace(b" 502 ", b" abc ")
        + b"\n"
        + LINE
    )
    rows, lines = parser.parse(chunk)
    assert lines == 7
    assert len(rows) == 2


def test_upstream_lists_split_as_nginx_writes_them() -> None:
    assert split_list(b"127.0.0.1:19001") == (b"127.0.0.1:19001",)
    assert split_list(b"a:1, b:2 : c:3") == [b"a:1", b"b:2", b"c:3"]


def test_requests_are_attributed_by_port_by_upstream_and_by_file() -> None:
    members = {b"19001": "203.0.113.1", b"19002": "203.0.113.2"}
    by_port = LogReader.for_format(EXAMPLE, per_member_files=False)
    assert by_port.by == "server_port"
    other = LINE.replace(b" 19001 ", b" 19002 ").replace(b" 502 ", b" 200 ")
    unknown = LINE.replace(b" 19001 ", b" 18000 ")
    found = read_requests(by_port, [LINE + other + LINE + unknown + b"junk\n"], members)
    assert found.counts.lines == 5
    assert found.counts.unparsable == 1
    assert found.counts.unattributed == 1
    at = 1_796_418_075.0  # 04/Dec/2026:21:01:15 +0000
    assert requests(by_port, found.by_member["203.0.113.1"], now=0.0) == [(502, at), (502, at)]
    assert requests(by_port, found.by_member["203.0.113.2"], now=0.0) == [(200, at)]

    upstream_format = "$msec $status $upstream_addr $upstream_status"
    by_upstream = LogReader.for_format(upstream_format, per_member_files=False)
    line = b"1796418075.250 200 127.0.0.1:19001, 127.0.0.1:19002 : 127.0.0.1:19001 502, 504 : 200\n"
    addresses = {b"127.0.0.1:19001": "a", b"127.0.0.1:19002": "b"}
    found = read_requests(by_upstream, [line, b"1796418076.0 200 127.0.0.1:19001 200, 200\n"], addresses)
    assert requests(by_upstream, found.by_member["a"], now=0.0) == [(502, 1796418075.25), (200, 1796418075.25)]
    assert requests(by_upstream, found.by_member["b"], now=0.0) == [(504, 1796418075.25)]
    assert found.counts.unattributed == 1  # a status list that does not match its address list

    per_file = LogReader.for_format('$remote_addr "$request" $status', per_member_files=True)
    found = read_requests(per_file, [b'203.0.113.9 "GET / HTTP/1.1" 403\n'], {}, file_member="203.0.113.5")
    assert requests(per_file, found.by_member["203.0.113.5"], now=7.0) == [(403, 7.0)]


@given(st.lists(st.sampled_from([LINE, b"x\n", b"\n", LINE[:-1] + b" extra\n", b"\xff\x00\n"]), max_size=30))
def test_every_line_is_either_parsed_or_counted_as_unparsable(lines: list[bytes]) -> None:
    reader = LogReader.for_format(EXAMPLE, per_member_files=False)
    found = read_requests(reader, [b"".join(lines)], {b"19001": "m"})
    parsed = sum(len(v) for v in found.by_member.values()) + found.counts.unattributed
    assert found.counts.lines == len(lines)
    assert parsed + found.counts.unparsable == len(lines)
    assert parsed == sum(1 for line in lines if line.startswith(b"198.51.100.7"))
