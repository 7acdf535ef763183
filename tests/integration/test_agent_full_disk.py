"""A full disk under the state dir (a real tmpfs, filled): the agent goes on, says in /status and /metrics that it
cannot save its state, writes it once there is room, and starts again on a full disk with the repository it has.
Root: it mounts the tmpfs."""

from __future__ import annotations

import contextlib
import errno
import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from tests.conftest import require_root
from tests.integration.agents import AgentProcess, Remote, free_port, wait_for


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "4m") -> Iterator[Path]:
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Write into ``folder`` until the disk is full; the file that holds the space."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as out:
        while _written(out):
            pass
    return filler


def _written(out: BinaryIO) -> bool:
    try:
        out.write(b"\0" * 65536)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        return False
    return True


PROXY = """apiVersion: reconciler/v1
kind: TCPProxy
metadata: {{name: apps}}
spec:
  healthCheck: {{interval: 300ms, timeout: 200ms, rise: 1, fall: 1}}
  apps:
    - {{name: web, listen: ["127.0.0.1:{listen}"], targets: ["127.0.0.1:{target}"]}}
"""


def unsaved(agent: AgentProcess) -> dict[str, Any] | None:
    return next((c for c in agent.status()["conditions"] if c["type"] == "StateSaved"), None)


def health(agent: AgentProcess) -> str | None:
    for resource in agent.status()["resources"]:
        for app in resource.get("observations", {}).get("apps", {}).values():
            return str(app["targets"][0]["health"])
    return None


def test_a_full_disk_keeps_the_agent_running_and_says_so(tmp_path: Path) -> None:
    """The disk fills while the agent runs; a target goes down, which the state file would record: the agent
    goes on (proxying, checking, answering), shows StateSaved=False with the reason in /status and /metrics, keeps
    the old state file whole, and writes the new state once there is room."""
    require_root("mount", "umount")
    remote = Remote(tmp_path)
    target = socket.create_server(("127.0.0.1", 0))
    port = target.getsockname()[1]
    revision = remote.commit({"proxy.yaml": PROXY.format(listen=free_port(), target=port)})
    args = ("--interval", "1s", "--status-interval", "1s", "--proxy-workers", "0")
    with small_disk(tmp_path / "disk") as disk:
        agent = AgentProcess(remote, disk, node="full-1", args=args).start()
        try:
            wait_for(lambda: health(agent) == "up", timeout=15, what="the target up")
            saved = (disk / "state.json").read_text()
            filler = fill(disk)
            target.close()
            wait_for(lambda: health(agent) == "down", timeout=10, what="the target down")
            condition = wait_for(lambda: unsaved(agent), timeout=15, what="StateSaved=False in /status")
            assert condition["status"] == "False"
            assert f"cannot write {disk / 'state.json'}: No space left on device" in condition["message"]
            metrics = agent.metrics()
            assert 'reconciler_resource_condition{kind="Node",name="full-1",type="StateSaved"} 0.0' in metrics
            assert 'reconciler_errors_total{component="state"} 0.0' not in metrics
            assert (disk / "state.json").read_text() == saved  # the old one, whole

            filler.unlink()
            wait_for(lambda: unsaved(agent) is None, timeout=15, what="the state written once there is room")
            written = json.loads((disk / "state.json").read_text())
            assert f"127.0.0.1:{port}" in json.dumps(written["capabilities"])  # the target that is down
            agent.signal()
            assert agent.wait(15) == 0
        finally:
            agent.stop()

        # a restart on a full disk: the repository it has is opened without a write (git init wrote its config
        # again, and failed), and the revision in force is enforced again
        fill(disk)
        again = AgentProcess(remote, disk, node="full-1", args=args).start()
        try:
            wait_for(lambda: again.applied() == revision, timeout=15, what="the restarted agent enforcing")
            again.signal()
            assert again.wait(15) == 3  # its final status could not be committed: not a clean stop
            log = again.log.read_text()
            assert "stop not clean: the final status was not published" in log
            assert "internal error" not in log
        finally:
            again.stop()
