"""How many CPUs this process can use: the ones it may run on, capped by its cgroup's CPU quota.

A container with a CPU limit (``docker run --cpus 2``, a Kubernetes ``limits.cpu``) still sees every CPU of the
machine in its affinity mask; the limit is a CFS quota on its cgroup. Starting one proxy worker per visible CPU
there would put up to four processes in a two-CPU budget, all throttled together. So the quota counts too, the
tightest one on the path from the process's cgroup to the root (a systemd slice's ``CPUQuota`` limits what is
below it), rounded up: 1.5 CPUs give two workers, each able to use what the other leaves.

cgroup v2 keeps ``cpu.max`` ("max 100000" or "150000 100000"); v1 keeps ``cpu.cfs_quota_us`` (-1: none) and
``cpu.cfs_period_us`` under the ``cpu`` controller's mount. Inside a container the cgroup namespace, or a
bind mount of the container's own cgroup at the controller's root, makes the path in ``/proc/self/cgroup``
missing below the mount: then the mount's root is the process's cgroup.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
SELF_CGROUP = Path("/proc/self/cgroup")
V1_CPU_MOUNTS = ("cpu,cpuacct", "cpu", "cpuacct,cpu")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _ancestors(mount: Path, cgroup: str) -> list[Path]:
    """The process's cgroup folder under ``mount`` and every folder above it up to ``mount``."""
    folder = mount / cgroup.strip("/")
    if not folder.is_dir():
        return [mount]
    found = [folder]
    while folder != mount:
        folder = folder.parent
        found.append(folder)
    return found


def _ratio(quota: str | None, period: str | None) -> float | None:
    """CPUs' worth of time a quota gives per period; None for no quota ("max" in v2, -1 in v1) or unreadable."""
    if quota is None or period is None or not quota.isdigit() or not period.isdigit() or int(period) == 0:
        return None
    return int(quota) / int(period)


def _v2_limit(folder: Path) -> float | None:
    quota, _, period = (_read(folder / "cpu.max") or "").partition(" ")
    return _ratio(quota, period)


def _v1_limit(folder: Path) -> float | None:
    return _ratio(_read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us"))


def cpu_quota(root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP) -> float | None:
    """CPUs' worth of time the cgroup quota allows this process (the tightest on its path), None without one."""
    text = _read(self_cgroup) or ""
    limits: list[float] = []
    for line in text.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":  # the v2 unified hierarchy
            mount = root if (root / "cgroup.controllers").exists() else root / "unified"
            limits += [limit for f in _ancestors(mount, path) if (limit := _v2_limit(f)) is not None]
        elif "cpu" in controllers.split(","):
            for name in V1_CPU_MOUNTS:
                if (root / name).is_dir():
                    limits += [limit for f in _ancestors(root / name, path) if (limit := _v1_limit(f)) is not None]
                    break
    return min(limits) if limits else None


def usable_cpus(root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP) -> int:
    """CPUs this process may run on, capped by its cgroup's CPU quota rounded up; at least 1."""
    cpus = len(os.sched_getaffinity(0))
    quota = cpu_quota(root, self_cgroup)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)
