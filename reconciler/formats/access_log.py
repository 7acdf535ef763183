"""Each pool member's requests, read from nginx access logs: which member served a request and its status.

Attribution, as the pool's log says:
- ``file``: one log per member (``{ip}`` in the path): every line is that member's;
- ``server_port``: the port nginx accepted on is the member's ``listen`` port;
- ``upstream_addr``: the upstream that served it; nginx writes retries as ``a, b`` and internal redirects as
  ``a : b`` with a matching ``$upstream_status`` list, and each attempt counts for its own member.

A request's time is ``$msec`` or ``$time_local`` when the format has one (the time when nginx logged it), else
the time of the scan. Lines that do not parse, and requests of no known member, are counted, never fatal.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter

from reconciler.formats.log_format import LogParser, compile_format, split_list, variables

TIME_FIELDS = ("msec", "time_local")


@dataclass
class LogCounts:
    lines: int = 0
    unparsable: int = 0
    unattributed: int = 0

    def add(self, other: LogCounts) -> None:
        self.lines += other.lines
        self.unparsable += other.unparsable
        self.unattributed += other.unattributed


Row = tuple[bytes, ...]  # a parsed line: the reader's fields, in its order


@dataclass
class Requests:
    """Per member, the parsed lines of its requests in log order (``LogReader.requests`` reads status and time
    from them); and what could not be used."""

    by_member: dict[str, list[Row]] = field(default_factory=dict)
    counts: LogCounts = field(default_factory=LogCounts)


@dataclass(frozen=True)
class LogReader:
    """A compiled reading of one pool's log format: what to capture and how to attribute a line."""

    parser: LogParser
    by: str  # file | server_port | upstream_addr
    time_field: str | None

    @classmethod
    def for_format(cls, format_: str, *, per_member_files: bool, escape: str = "default") -> LogReader:
        present = set(variables(format_))
        if per_member_files:
            by = "file"
        elif "server_port" in present:
            by = "server_port"
        elif "upstream_addr" in present:
            by = "upstream_addr"
        else:
            raise ValueError("a shared log needs $server_port or $upstream_addr in its format")
        time_field = next((name for name in TIME_FIELDS if name in present), None)
        wanted = ["status"]
        if by == "upstream_addr":
            wanted += ["upstream_addr"] + (["upstream_status"] if "upstream_status" in present else [])
        elif by == "server_port":
            wanted.append("server_port")
        if time_field is not None:
            wanted.append(time_field)
        return cls(compile_format(format_, wanted, escape=escape), by, time_field)


class _Clock:
    """``$time_local`` to epoch seconds, parsing each distinct second once (a batch holds few of them)."""

    def __init__(self) -> None:
        self.cache: dict[bytes, float] = {}

    def local(self, value: bytes) -> float:
        known = self.cache.get(value)
        if known is None:
            if len(self.cache) > 4096:
                self.cache.clear()
            known = datetime.strptime(value.decode(), "%d/%b/%Y:%H:%M:%S %z").timestamp()
            self.cache[value] = known
        return known


def requests(reader: LogReader, rows: Iterable[Row], *, now: float) -> list[tuple[int, float]]:
    """(status, time) of each parsed line, in order; ``now`` for lines that carry no time."""
    fields = reader.parser.fields
    status_at = fields.index("status")
    if reader.time_field is None:
        return [(int(row[status_at]), now) for row in rows]
    time_at = fields.index(reader.time_field)
    if reader.time_field == "msec":
        return [(int(row[status_at]), float(row[time_at])) for row in rows]
    clock = _Clock()
    return [(int(row[status_at]), clock.local(row[time_at])) for row in rows]


def read_requests(
    reader: LogReader,
    chunks: Iterable[bytes],
    members: Mapping[bytes, str],
    *,
    file_member: str | None = None,
    into: Requests | None = None,
) -> Requests:
    """Every request in ``chunks`` attributed to a member: ``members`` maps what the log says (a port, or an
    upstream address ``ip:port``) to the member; with per-member files, ``file_member`` is the file's member.

    Written for speed (a million lines a second): a chunk's lines are sorted by member key (stable: log order is
    kept within a member) and handed over a member at a time, so no Python code runs per line."""
    result = into or Requests()
    counts = result.counts
    fields = reader.parser.fields
    by_member = result.by_member
    for chunk in chunks:
        rows, lines = reader.parser.parse(chunk)
        counts.lines += lines
        counts.unparsable += lines - len(rows)
        if reader.by == "file":
            if file_member is None:
                counts.unattributed += len(rows)
            else:
                by_member.setdefault(file_member, []).extend(rows)
        elif reader.by == "upstream_addr":
            for row in rows:
                _attempts(reader, row, members, result)
        else:
            key = itemgetter(fields.index("server_port"))
            rows.sort(key=key)
            keys = list(map(key, rows))
            start = 0
            while start < len(rows):  # one step per member, not per line
                end = bisect_right(keys, keys[start], start)
                member = members.get(keys[start])
                if member is None:
                    counts.unattributed += end - start
                else:
                    by_member.setdefault(member, []).extend(rows[start:end])
                start = end
    return result


def _attempts(reader: LogReader, row: Row, members: Mapping[bytes, str], result: Requests) -> None:
    """One line naming upstreams: each attempt for its own member, with its own status."""
    fields = reader.parser.fields
    status_at = fields.index("status")
    addresses = split_list(row[fields.index("upstream_addr")])
    if "upstream_status" in fields:
        statuses = split_list(row[fields.index("upstream_status")])
    else:
        statuses = [row[status_at]] * len(addresses)
    if len(statuses) != len(addresses):  # nginx writes matching lists; anything else is not ours to guess
        result.counts.unattributed += 1
        return
    for address, status in zip(addresses, statuses, strict=True):
        member = members.get(address)
        if member is None or not status.isdigit():
            result.counts.unattributed += 1
            continue
        attempt = (*row[:status_at], status, *row[status_at + 1 :])
        result.by_member.setdefault(member, []).append(attempt)
