"""The access-log scanner against a real nginx writing our log_format while requests keep coming: every request
is counted exactly once across a rename rotation with ``nginx -s reopen`` and across a copytruncate, and each is
attributed to the member whose port served it with the status nginx wrote."""

from __future__ import annotations

import http.client
import shutil
import threading
from pathlib import Path

from reconciler.formats.access_log import LogReader, Requests, read_requests, requests
from reconciler.system.log_tail import LogTail
from tests.integration.agents import wait_for
from tests.integration.nginx_server import free_port, nginx

FORMAT = '$remote_addr - [$time_local] "$request" $status $server_port $upstream_addr $request_time'


class Traffic:
    """Requests to every port in turn until stopped. ``quiet`` is held by a copytruncate: what nginx writes between
    the copy and the truncation is lost to every reader (logrotate says so); traffic goes on around it."""

    def __init__(self, ports: dict[int, int]) -> None:
        self.ports = ports
        self.sent = dict.fromkeys(ports.values(), 0)
        self.stop = threading.Event()
        self.quiet = threading.Lock()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self.stop.is_set():
            for port, status in self.ports.items():
                with self.quiet:
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    connection.request("GET", "/x")
                    assert connection.getresponse().status == status
                    connection.close()
                    self.sent[status] += 1

    def more(self, count: int) -> None:
        target = sum(self.sent.values()) + count
        wait_for(lambda: sum(self.sent.values()) >= target, timeout=20, what=f"{count} more requests")


def test_every_request_counted_once_across_rotations(tmp_path: Path) -> None:
    ports = {free_port(): 200, free_port(): 502, free_port(): 403}
    log = tmp_path / "logs" / "access.log"
    servers = "\n".join(f"server {{ listen 127.0.0.1:{port}; return {status}; }}" for port, status in ports.items())
    members = {str(port).encode(): f"member-{status}" for port, status in ports.items()}
    reader = LogReader.for_format(FORMAT, per_member_files=False)
    found = Requests()
    tail = LogTail(log)
    traffic = Traffic(ports)

    def scan() -> None:
        read_requests(reader, tail.read(), members, into=found)

    with nginx(tmp_path, f"log_format pool '{FORMAT}';\naccess_log {log} pool;\n{servers}") as server:
        traffic.thread.start()
        try:
            traffic.more(150)
            scan()
            log.rename(log.with_name("access.log.1"))
            traffic.more(150)  # nginx still writes the renamed file
            server.reopen()
            wait_for(log.exists, timeout=5, what="nginx to reopen its log")
            for _ in range(2):
                traffic.more(150)
                scan()
            traffic.more(150)  # not read before the copy
            with traffic.quiet:  # as logrotate does it: shift the older file, copy, truncate
                log.with_name("access.log.1").rename(log.with_name("access.log.2"))
                shutil.copyfile(log, log.with_name("access.log.1"))
                log.write_bytes(b"")
            traffic.more(150)
        finally:
            traffic.stop.set()
            traffic.thread.join(timeout=10)
        for _ in range(3):
            scan()
    tail.close()
    assert tail.rotations == 2
    assert found.counts.unparsable == 0
    assert found.counts.unattributed == 0
    for status, count in traffic.sent.items():
        statuses = [code for code, _ in requests(reader, found.by_member[f"member-{status}"], now=0.0)]
        assert statuses == [status] * count, (status, len(statuses), count)
