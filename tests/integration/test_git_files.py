"""The files a revision ships (nginx configs, zone templates), written to the state dir for capabilities: the
desired-state folder's non-YAML files, exactly as committed; the newest two revisions kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import SourceError
from reconciler.system.git import BareRepository, GitSource
from tests.integration.agents import Remote

pytestmark = pytest.mark.integration


def test_files_of_a_revision(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    remote = Remote(tmp_path)
    source = GitSource(
        BareRepository(remote.url, workdir=tmp_path / "state" / "repo.git", timeout=30),
        branch="main",
        path="desired-state",
    )
    request.addfinalizer(source.close)
    revisions = []
    for number in range(3):
        remote.commit(
            {
                "desired-state/pools.yaml": "kind: nothing\n",
                "desired-state/files/nginx/proxies.conf": f"server {{ listen {19000 + number}; }}\n",
                "desired-state/status/gw-1/x.yaml": "written by agents\n",
                "other/outside.conf": "not ours\n",
            }
        )
        revisions.append(source.fetch())
        folder = Path(source.files_at(revisions[-1]) or "")
        assert (folder / "files" / "nginx" / "proxies.conf").read_text() == f"server {{ listen {19000 + number}; }}\n"
        assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
            "files/nginx/proxies.conf"
        ]
        assert source.files_at(revisions[-1]) == str(folder)  # written once
    kept = sorted(p.name for p in (tmp_path / "state" / "files").iterdir())
    assert kept == sorted(revisions[1:])
    with pytest.raises(SourceError, match="cannot write the files of revision"):
        source.files_at("0" * 40)
