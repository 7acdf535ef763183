"""``--proxy-workers auto`` inside a real cgroup with a CPU quota, as a container with a CPU limit runs it: the
kernel's own cgroup files (v1 or v2, whichever this machine mounts), read by a process placed in the group."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_root

ROOT = Path("/sys/fs/cgroup")
CHILD = """
import sys
from pathlib import Path
Path(sys.argv[1]).write_text("0")  # "0": the writing process joins the group
from reconciler.settings import AgentSettings
from reconciler.system.cpus import cpu_quota, usable_cpus
print(cpu_quota(), AgentSettings(repo="x", node="n").tcp_proxy_workers(usable_cpus()))
"""


def _cpu_hierarchy() -> Path:
    if (ROOT / "cgroup.controllers").exists():  # v2: the cpu controller must be on for the children of the root
        control = ROOT / "cgroup.subtree_control"
        if "cpu" not in control.read_text().split():
            control.write_text("+cpu")
        return ROOT
    for name in ("cpu,cpuacct", "cpu"):
        if (ROOT / name).is_dir():
            return ROOT / name
    pytest.fail("no cgroup cpu controller mounted under /sys/fs/cgroup")


@contextlib.contextmanager
def cpu_limited_group(cpus: float) -> Iterator[Path]:
    hierarchy = _cpu_hierarchy()
    group = hierarchy / f"reconciler-test-{uuid.uuid4().hex[:8]}"
    group.mkdir()
    try:
        period = 100_000
        if hierarchy == ROOT:
            (group / "cpu.max").write_text(f"{int(cpus * period)} {period}")
        else:
            (group / "cpu.cfs_period_us").write_text(str(period))
            (group / "cpu.cfs_quota_us").write_text(str(int(cpus * period)))
        yield group
    finally:
        for _ in range(50):  # the child that was in it may take a moment to be reaped by the kernel
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def in_group(group: Path) -> tuple[float | None, int]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(group / "cgroup.procs")],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    quota, workers = done.stdout.split()
    return (None if quota == "None" else float(quota)), int(workers)


def test_a_cpu_quota_caps_the_automatic_proxy_worker_count() -> None:
    require_root()
    cpus = len(os.sched_getaffinity(0))
    assert cpus >= 2, "the quota can only be seen to cap the count on a machine with 2 CPUs or more"
    with cpu_limited_group(0.5) as group:
        assert in_group(group) == (0.5, 1)  # half a CPU: one worker, not one per CPU of the machine
    with cpu_limited_group(1.5) as group:
        assert in_group(group) == (1.5, min(cpus, 2, 4))
