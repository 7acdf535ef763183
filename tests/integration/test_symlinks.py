"""Symbolic links in the desired state are read by one rule, by `reconciler validate` (a folder, in CI) and by the
agent (a git revision): a link to a file inside the desired-state folder is read; one leading out of it, or to
nothing, is not, and both say so with the same warning. Before, CI passed a link the agent then refused (git
hands over a link's target text, which the agent read as the file)."""

from __future__ import annotations

import os
from pathlib import Path

import git as gitpython

from reconciler.errors import Severity
from reconciler.loading.loader import load_tree
from reconciler.system.files import read_source_tree
from reconciler.system.git import _tree_files, _write_files
from tests.integration.agents import git

LIST = (
    "apiVersion: reconciler/v1\nkind: EgressAllowList\nmetadata: {{name: {name}}}\nspec:\n  entries: [{{ip: {ip}}}]\n"
)


def test_a_folder_and_a_revision_read_links_alike(tmp_path: Path) -> None:
    work = tmp_path / "work"
    git(tmp_path, "init", "-q", "-b", "main", str(work))
    folder = work / "desired-state"
    (folder / ".shared").mkdir(parents=True)  # a hidden folder: not read by itself
    (folder / ".shared" / "partners.yaml").write_text(LIST.format(name="partners", ip="203.0.113.7"))
    (folder / "egress").mkdir()
    (folder / "egress" / "direct.yaml").write_text(LIST.format(name="direct", ip="203.0.113.8"))
    (work / "elsewhere.yaml").write_text(LIST.format(name="elsewhere", ip="203.0.113.9"))
    os.symlink("../.shared/partners.yaml", folder / "egress" / "partners.yaml")  # inside: read
    (folder / ".shared" / "second.yaml").write_text(LIST.format(name="second", ip="203.0.113.10"))
    os.symlink("second.yaml", folder / ".shared" / "alias.yaml")
    os.symlink("../.shared/alias.yaml", folder / "egress" / "chained.yml")  # a link to a link: read
    os.symlink("../../elsewhere.yaml", folder / "egress" / "outside.yaml")  # out of the folder: not read
    os.symlink("/etc/hostname", folder / "egress" / "machine.yaml")  # the machine's files: not read
    os.symlink("gone.yaml", folder / "egress" / "dangling.yaml")  # to nothing: not read
    (folder / "conf").mkdir()
    (folder / ".shared" / "nginx.conf").write_text("events {}\n")
    os.symlink("../.shared/nginx.conf", folder / "conf" / "nginx.conf")  # other files: the same rule
    os.symlink("/etc/passwd", folder / "conf" / "passwd")
    git(work, "add", "-A")
    git(work, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "links")

    on_disk = read_source_tree(folder, display_root="", max_file_bytes=1 << 20)
    with gitpython.Repo(work) as repo:
        in_git = _tree_files(repo.commit("HEAD"), "desired-state", "rev", 1 << 20)

    read = {f.relpath: f.content for f in on_disk.files}
    assert read == {f.relpath: f.content for f in in_git.files}
    assert sorted(read) == ["egress/chained.yml", "egress/direct.yaml", "egress/partners.yaml"]
    assert read["egress/partners.yaml"] == (folder / ".shared" / "partners.yaml").read_bytes()
    reasons = {
        "egress/dangling.yaml": "a symbolic link to gone.yaml, which does not exist",
        "egress/machine.yaml": "a symbolic link to /etc/hostname, outside the folder",
        "egress/outside.yaml": "a symbolic link to ../../elsewhere.yaml, outside the folder",
    }
    assert dict(on_disk.unread) == reasons
    assert dict(in_git.unread) == {f"rev:desired-state/{path}": why for path, why in reasons.items()}

    assert on_disk.other_paths == in_git.other_paths == {"conf/nginx.conf"}
    with gitpython.Repo(work) as repo:  # what the agent writes for capabilities to read (nginx configs, zones)
        _write_files(repo.commit("HEAD"), "desired-state", tmp_path / "files")
    assert (tmp_path / "files" / "conf" / "nginx.conf").read_text() == "events {}\n"
    assert not (tmp_path / "files" / "conf" / "passwd").exists()

    for tree in (on_disk, in_git):
        result = load_tree(tree)
        warnings = sorted(p.message for p in result.problems if p.severity is Severity.WARNING)
        assert warnings == sorted(f"not read: {why}; put the file itself in the folder" for why in reasons.values())
        assert not [p for p in result.problems if p.severity is Severity.ERROR]
        assert sorted(result.state.resources["EgressAllowList"]) == ["direct", "partners", "second"]
