"""The deployment kit, each file checked by the tool that will consume it, and each check shown to fail on a
deliberately broken copy: systemd-analyze verify (units), hadolint (Containerfile), kubernetes-validate against a
pinned Kubernetes (every manifest), promtool check and test rules (alerts); and `make install PREFIX=...`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_tools

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "runtime"
BIN = Path(sys.executable).parent
KUBERNETES = "1.31.0"


def _run(*argv: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False, cwd=cwd, timeout=300)


def test_systemd_units_verify(tmp_path: Path) -> None:
    require_tools("systemd-analyze")
    units = []
    for unit in sorted((RUNTIME / "systemd").glob("*.service")):
        # verify checks that ExecStart exists: point it at this checkout's reconciler
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text().replace("/opt/reconciler/bin/reconciler", str(BIN / "reconciler")))
        units.append(copy)
    assert [u.name for u in units] == ["reconciler-console.service", "reconciler.service"]
    verified = _run("systemd-analyze", "verify", *units)
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr == ""
    broken = tmp_path / "broken.service"
    broken.write_text(units[1].read_text().replace("ExecStart=", "ExecStrat="))
    assert _run("systemd-analyze", "verify", broken).returncode != 0


def test_the_containerfile_is_hadolint_clean(tmp_path: Path) -> None:
    config = RUNTIME / "container" / ".hadolint.yaml"
    clean = _run(BIN / "hadolint", "--config", config, RUNTIME / "container" / "Containerfile")
    assert clean.returncode == 0, clean.stdout
    broken = tmp_path / "Containerfile"
    text = (RUNTIME / "container" / "Containerfile").read_text()
    broken.write_text(text.replace("USER 10001", "USER root").replace("--no-install-recommends ", "", 1))
    failed = _run(BIN / "hadolint", "--config", config, broken)
    assert failed.returncode != 0
    assert "DL3002" in failed.stdout  # the last USER is root
    assert "DL3015" in failed.stdout  # recommends come along


def test_every_kubernetes_manifest_validates(tmp_path: Path) -> None:
    manifests = sorted(p for p in (RUNTIME / "k8s").rglob("*.yaml") if p.name != "kustomization.yaml")
    assert {p.parent.name for p in manifests} == {"base", "gateways", "clients", "pools"}
    checked = _run(BIN / "kubernetes-validate", "--strict", "-k", KUBERNETES, *manifests)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("passed") == 8  # the PodMonitor is a CRD: no schema in Kubernetes itself
    broken = tmp_path / "daemonset.yaml"
    text = (RUNTIME / "k8s" / "overlays" / "gateways" / "daemonset.yaml").read_text()
    broken.write_text(text.replace("containerPort: 9900", "containerPort: metrics"))
    assert _run(BIN / "kubernetes-validate", "--strict", "-k", KUBERNETES, broken).returncode != 0
    for role in ("gateways", "clients", "pools"):  # each overlay names the base and its own DaemonSet
        kustomization = (RUNTIME / "k8s" / "overlays" / role / "kustomization.yaml").read_text()
        assert "- ../../base" in kustomization
        assert "- daemonset.yaml" in kustomization


def test_alert_rules_check_and_pass_their_unit_tests(tmp_path: Path) -> None:
    require_tools("promtool")
    folder = RUNTIME / "prometheus"
    assert _run("promtool", "check", "rules", "alerts.yaml", cwd=folder).returncode == 0
    tested = _run("promtool", "test", "rules", "alerts_test.yaml", cwd=folder)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    (tmp_path / "alerts.yaml").write_text((folder / "alerts.yaml").read_text().replace("== 0", "== = 0", 1))
    (tmp_path / "alerts_test.yaml").write_text((folder / "alerts_test.yaml").read_text())
    assert _run("promtool", "check", "rules", "alerts.yaml", cwd=tmp_path).returncode != 0
    # a rule that still parses but no longer fires when it should fails its unit test
    (tmp_path / "alerts.yaml").write_text((folder / "alerts.yaml").read_text().replace("for: 1m", "for: 30m"))
    assert _run("promtool", "test", "rules", "alerts_test.yaml", cwd=tmp_path).returncode != 0


def test_make_install_into_a_prefix(tmp_path: Path) -> None:
    prefix = tmp_path / "opt" / "reconciler"
    installed = _run("make", "install", f"PREFIX={prefix}")
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    version = _run(prefix / "bin" / "reconciler", "--version")
    assert version.returncode == 0
    assert version.stdout.startswith("reconciler ")
    assert (prefix / "share" / "reconciler" / "runtime" / "systemd" / "reconciler.service").is_file()
    assert list(prefix.glob("venv/lib/python3*/site-packages/reconciler/console/templates/base.html"))
