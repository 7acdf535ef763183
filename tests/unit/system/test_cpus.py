"""The CPU count behind ``--proxy-workers auto``: the cgroup quota as cgroup v1 and v2 lay it out (real kernels'
files are read in tests/integration/test_cpus_cgroup.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.system.cpus import cpu_quota, usable_cpus


def tree(root: Path, files: dict[str, str], self_cgroup: str) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "proc-self-cgroup").write_text(self_cgroup)
    return root / "proc-self-cgroup"


def test_v2_takes_the_tightest_quota_on_the_path_to_the_root(tmp_path: Path) -> None:
    me = tree(
        tmp_path,
        {
            "cgroup.controllers": "cpu memory",
            "system.slice/cpu.max": "250000 100000",  # a slice's CPUQuota=250 %
            "system.slice/reconciler.service/cpu.max": "max 100000",
        },
        "0::/system.slice/reconciler.service\n",
    )
    assert cpu_quota(tmp_path, me) == 2.5


def test_v2_without_a_quota_and_a_container_whose_path_is_not_below_the_mount(tmp_path: Path) -> None:
    assert cpu_quota(tmp_path, tree(tmp_path, {"cgroup.controllers": "cpu", "cpu.max": "max 100000"}, "0::/\n")) is None
    # cgroup namespace off: /proc/self/cgroup names the host's path, the container sees its own cgroup as the root
    me = tree(tmp_path, {"cpu.max": "150000 100000"}, "0::/kubepods/burstable/pod1/abc\n")
    assert cpu_quota(tmp_path, me) == 1.5


def test_v1_reads_the_cpu_controllers_cfs_quota(tmp_path: Path) -> None:
    files = {
        "cpu,cpuacct/cpu.cfs_quota_us": "-1",
        "cpu,cpuacct/cpu.cfs_period_us": "100000",
        "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "50000",
        "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000",
        "unified/cgroup.procs": "",
    }
    me = tree(tmp_path, files, "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/docker/abc\n")
    assert cpu_quota(tmp_path, me) == 0.5
    (tmp_path / "cpu,cpuacct/docker/abc/cpu.cfs_quota_us").write_text("-1")
    assert cpu_quota(tmp_path, me) is None


@pytest.mark.parametrize("text", ["", "garbage", "0::", "3:cpu:/gone\n"])
def test_unreadable_or_missing_cgroup_files_mean_no_quota(tmp_path: Path, text: str) -> None:
    assert cpu_quota(tmp_path, tree(tmp_path, {}, text)) is None
    assert cpu_quota(tmp_path, tmp_path / "no-such-file") is None


def test_usable_cpus_rounds_the_quota_up_and_never_exceeds_the_affinity(tmp_path: Path) -> None:
    cpus = len(os.sched_getaffinity(0))
    quota = tree(tmp_path, {"cgroup.controllers": "cpu", "cpu.max": "50000 100000"}, "0::/\n")
    assert usable_cpus(tmp_path, quota) == 1
    (tmp_path / "cpu.max").write_text("150000 100000")
    assert usable_cpus(tmp_path, quota) == min(cpus, 2)
    (tmp_path / "cpu.max").write_text(f"{(cpus + 8) * 100000} 100000")
    assert usable_cpus(tmp_path, quota) == cpus
