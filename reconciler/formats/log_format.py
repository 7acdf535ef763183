"""nginx ``log_format`` strings compiled into fast parsers of access-log bytes.

The format is the operator's own (``AccessLog.format``), or nginx's predefined ``combined``. Every ``$variable``
becomes a pattern that matches what nginx writes for it there:

- inside double quotes, what the ``escape=`` mode leaves there: ``default`` writes ``"``, ``\\`` and bytes outside
  printable ASCII as ``\\xXX``, so a quoted value holds no bare quote; ``json`` writes ``\\"``; ``none`` writes
  them raw (the value then ends at the first quote that lets the rest of the line match);
- outside quotes, a run without spaces, except for the variables whose values hold spaces: ``$time_local``
  (``04/Dec/2026:21:01:15 +0000``) and the ``$upstream_*`` lists (``a, b`` for retries, ``a : b`` for internal
  redirects).

Only the variables a scan needs are captured; the rest are matched and skipped. A whole chunk of lines is parsed
by one ``findall`` on a multi-line pattern (lines that do not match are counted by their difference from the
newline count, never an exception), which is what makes a million lines a second reachable in Python.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

COMBINED = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"'
)
PREDEFINED = {"combined": COMBINED}
VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
ESCAPES = ("default", "json", "none")

_QUOTED = {
    "default": rb'[^"\n]*?',
    "json": rb'(?:[^"\\\n]|\\.)*?',
    "none": rb"[^\n]*?",
}
_LIST = rb"[^ ,\n]+(?:(?:, | : )[^ ,\n]+)*"  # nginx's upstream lists: 'a, b' (next upstream) and 'a : b' (redirect)
_BARE = {
    "status": rb"[1-5][0-9][0-9]",  # a line whose status is not one is not a request we can judge
    "time_local": rb"\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}",
    "request": rb"[^\n]*?",
}
_DEFAULT_BARE = rb"[^ \n]*"


def expand(format_: str) -> str:
    """A predefined format's name (``combined``) as its format string; any other string as it is."""
    return PREDEFINED.get(format_.strip(), format_)


def variables(format_: str) -> tuple[str, ...]:
    return tuple(a or b for a, b in VARIABLE.findall(expand(format_)))


@dataclass(frozen=True)
class LogParser:
    """Parses chunks of whole lines: ``fields`` are the captured variables, in the order of each row's values."""

    format: str
    fields: tuple[str, ...]
    pattern: re.Pattern[bytes]

    def parse(self, chunk: bytes) -> tuple[list[tuple[bytes, ...]], int]:
        """The captured values of every line that matches, and how many lines ``chunk`` held (it ends with a
        newline; lines that do not match are the difference)."""
        rows = self.pattern.findall(chunk)
        if len(self.fields) == 1:
            rows = [(value,) for value in rows]
        return rows, chunk.count(b"\n")


def _bare(name: str, following: str) -> bytes:
    if name.startswith("upstream_"):
        return _LIST
    if name == "time_local" and following.startswith("]"):
        return rb"[^\]\n]*"  # as nginx's own formats write it, in brackets: the bracket ends it
    return _BARE.get(name, _DEFAULT_BARE)


def _quoted(escape: str, before: str, following: str) -> bytes:
    """A value in quotes; when it fills the quotes alone (``"$request"``) and nothing in it is a bare quote, a
    greedy run to the closing quote (twice as fast as a lazy one)."""
    whole = before.endswith('"') and following.startswith('"')
    if whole and escape == "default":
        return rb'[^"\n]*'
    if whole and escape == "json":
        return rb'(?:[^"\\\n]|\\.)*'
    return _QUOTED[escape]


def compile_format(format_: str, wanted: Collection[str], *, escape: str = "default") -> LogParser:
    """A parser for lines written with ``format_`` (a ``log_format`` string or ``combined``) that captures the
    ``wanted`` variables (each must appear in the format).

    A line counts as parsed when it is as the format says up to the last captured variable and the literal text
    right after it; the rest of the line is not examined (what a scan does not use costs nothing)."""
    if escape not in ESCAPES:
        raise ValueError(f"escape={escape} is not one of {', '.join(ESCAPES)}")
    text = expand(format_)
    missing = sorted(set(wanted) - set(variables(text)))
    if missing:
        raise ValueError(f"the log format has no ${missing[0]}")
    found = list(VARIABLE.finditer(text))
    literals = [text[a.end() if a else 0 : b.start()] for a, b in zip([None, *found[:-1]], found, strict=True)]
    literals.append(text[found[-1].end() :] if found else text)
    parts: list[bytes] = [b"^"]
    fields: list[str] = []
    quoted = False
    for index, match in enumerate(found):
        before, following = literals[index], literals[index + 1]
        quoted ^= before.count('"') % 2 == 1
        parts.append(re.escape(before.encode()))
        name = match.group(1) or match.group(2)
        body = _quoted(escape, before, following) if quoted else _bare(name, following)
        if name in wanted and name not in fields:
            parts.append(b"(" + body + b")")
            fields.append(name)
            if len(fields) == len(set(wanted)):  # the last one the scan needs: the rest of the line is skipped
                last = index + 1 < len(found)
                parts.append(re.escape(following.encode()) + (rb"[^\n]*\n" if last else rb"\r?\n"))
                break
        else:
            parts.append(b"(?:" + body + b")")
    else:
        parts += [re.escape(literals[-1].encode()), rb"\r?\n"]
    return LogParser(text, tuple(fields), re.compile(b"".join(parts), re.MULTILINE))


def split_list(value: bytes) -> Sequence[bytes]:
    """An ``$upstream_*`` value as its items, in order: ``a, b : c`` -> [a, b, c]."""
    if b"," not in value and b" : " not in value:
        return (value,)
    return [item.strip() for item in re.split(rb", | : ", value)]
