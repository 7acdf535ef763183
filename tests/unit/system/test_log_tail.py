"""Following a log across rotations with real files: whole lines only, from the end or the start, rename rotation
while the writer still holds the old file, copytruncate, and restarts from a saved position, never losing or
repeating a line."""

from __future__ import annotations

import os
from pathlib import Path

from reconciler.system.log_tail import LogTail


def _lines(tail: LogTail) -> list[bytes]:
    return b"".join(tail.read()).splitlines()


class Writer:
    """Writes numbered lines the way nginx does: an open descriptor, appended to, reopened on demand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, lines: int) -> None:
        for _ in range(lines):
            self.count += 1
            os.write(self.fd, b"line %d\n" % self.count)

    def reopen(self) -> None:
        os.close(self.fd)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def close(self) -> None:
        os.close(self.fd)


def _numbers(lines: list[bytes]) -> list[int]:
    return [int(line.split()[1]) for line in lines]


def test_whole_lines_only_and_from_end(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_bytes(b"old 1\nold 2\n")
    tail = LogTail(path, from_end=True, chunk=8)
    assert _lines(tail) == []
    with path.open("ab") as log:
        log.write(b"new 1\nnew 2\npart")
    assert _lines(tail) == [b"new 1", b"new 2"]
    with path.open("ab") as log:
        log.write(b"ial\n")
    assert _lines(tail) == [b"partial"]
    assert LogTail(path).position is None
    everything = LogTail(path)
    assert len(_lines(everything)) == 5
    tail.close()
    everything.close()


def test_rename_rotation_while_the_writer_still_writes_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    writer = Writer(path)
    tail = LogTail(path)
    seen: list[int] = []
    writer.write(5)
    seen += _numbers(_lines(tail))
    path.rename(tmp_path / "access.log.1")
    writer.write(3)  # nginx has not reopened yet: these go to the renamed file
    path.touch()  # logrotate's create
    seen += _numbers(_lines(tail))
    writer.write(2)
    writer.reopen()  # nginx -s reopen
    writer.write(4)
    for _ in range(4):
        seen += _numbers(_lines(tail))
    assert seen == list(range(1, 15))
    assert tail.rotations == 1
    assert tail.draining == []  # the old file was let go once it stayed at its end
    writer.close()
    tail.close()


def test_copytruncate_reads_the_rest_from_the_copy(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    writer = Writer(path)
    tail = LogTail(path)
    writer.write(4)
    seen = _numbers(_lines(tail))
    writer.write(3)  # not read before the copy
    (tmp_path / "access.log.1").write_bytes(path.read_bytes())
    os.truncate(path, 0)
    writer.write(2)
    seen += _numbers(_lines(tail))
    assert seen == list(range(1, 10))
    writer.close()
    tail.close()


def test_a_restart_resumes_at_the_saved_position_even_across_a_rotation(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    writer = Writer(path)
    writer.write(3)
    first = LogTail(path)
    seen = _numbers(_lines(first))
    saved = first.position
    first.close()
    assert saved is not None
    writer.write(2)
    second = LogTail(path, saved, from_end=True)
    seen += _numbers(_lines(second))
    saved = second.position
    second.close()
    assert saved is not None
    writer.write(2)  # written while the agent is down, then rotated away
    path.rename(tmp_path / "access.log.1")
    writer.reopen()
    writer.write(1)
    third = LogTail(path, saved, from_end=True)
    seen += _numbers(_lines(third))
    assert seen == list(range(1, 9))
    writer.close()
    third.close()


def test_copytruncate_noticed_when_the_file_grew_past_the_old_offset_again(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    writer = Writer(path)
    tail = LogTail(path)
    writer.write(3)
    seen = _numbers(_lines(tail))
    writer.write(2)
    (tmp_path / "access.log.1").write_bytes(path.read_bytes())
    os.truncate(path, 0)
    writer.write(20)  # longer than what was read before: size alone cannot tell
    seen += _numbers(_lines(tail))
    assert seen == list(range(1, 26))
    assert tail.rotations == 1
    writer.close()
    tail.close()


def test_a_log_that_appears_after_the_start_is_read_from_its_beginning(tmp_path: Path) -> None:
    """from_end skips what was written before the agent started; a file that did not exist then is all new."""
    path = tmp_path / "access.log"
    tail = LogTail(path, from_end=True)
    assert _lines(tail) == []
    path.write_bytes(b"first\nsecond\n")
    assert _lines(tail) == [b"first", b"second"]
