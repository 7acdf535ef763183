"""The loader across files and documents: what is read, skipped, checked together, and reported."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.errors import DesiredStateError, Severity
from reconciler.loading.loader import FileCache, LoadOptions, load_desired_state, load_tree
from reconciler.model import EgressAllowList, IPPool
from reconciler.model.internal_ranges import AddressRanges
from reconciler.model.source_tree import SourceFile, SourceTree
from reconciler.system.files import read_source_tree
from tests.conftest import ALLOW_LIST, EXAMPLE


def _tree(**files: str | bytes) -> SourceTree:
    return SourceTree(
        "t", tuple(SourceFile(f"t/{n}", n, c if isinstance(c, bytes) else c.encode()) for n, c in files.items())
    )


def test_the_example_loads() -> None:
    """The bundled desired state is valid and holds every kind."""
    tree = read_source_tree(EXAMPLE, max_file_bytes=1 << 20)
    result = load_desired_state(tree)
    assert not result.problems
    assert len({r.KIND for r in result.state}) == 7
    pool = result.state.get(IPPool, "egress")
    assert pool is not None
    source = result.state.source_of(pool)
    assert source is not None
    assert source.file.endswith("pools/egress-pool.yaml")


def test_all_errors_of_a_run_are_reported() -> None:
    """Problems in several files and documents come together, sorted by file and line."""
    tree = _tree(
        **{
            "a.yaml": ALLOW_LIST.format(name="a", entries="    - ip: 10.0.0.1"),
            "b.yaml": ALLOW_LIST.format(name="b", entries="    - ip: nope\n    - cidr: 1.2.3.4/8"),
        }
    )
    with pytest.raises(DesiredStateError) as caught:
        load_desired_state(tree)
    problems = caught.value.problems
    assert [(p.file, p.path) for p in problems] == [
        ("t/a.yaml", "spec.entries[0].ip"),
        ("t/b.yaml", "spec.entries[0].ip"),
        ("t/b.yaml", "spec.entries[1].cidr"),
    ]
    assert "and 2 more" in str(caught.value)


def test_a_document_with_errors_still_has_its_references_and_warnings_checked() -> None:
    """A schema error used to hide what a fix would reveal next: the pool's unknown strategy, the duplicate entry
    of a list with a bad entry. And a gateway naming that list is not told the list does not exist."""
    pool = """apiVersion: reconciler/v1
kind: IPPool
metadata: {name: egress}
spec:
  members: {static: [{ip: 203.0.113.5, port: 19001}]}
  accessLog: {path: /var/log/nginx/access.log}
  strategy: three-in-a-rwo
  scanIntervall: 1m
"""
    partners = ALLOW_LIST.format(
        name="partners", entries="    - ip: nope\n    - ip: 203.0.113.7\n    - ip: 203.0.113.7"
    )
    gateway = """apiVersion: reconciler/v1
kind: EgressGateway
metadata: {name: gw}
spec: {clients: [10.0.0.0/8], allowLists: [partners]}
"""
    strategy = (
        "apiVersion: reconciler/v1\nkind: HealthStrategy\nmetadata: {name: three-in-a-row}\nspec: {type: consecutive}\n"
    )
    result = load_tree(_tree(**{"pool.yaml": pool, "partners.yaml": partners, "gw.yaml": gateway, "s.yaml": strategy}))
    said = [(p.file, p.path, p.severity.value, p.message) for p in result.problems]
    paths = [(file, path, severity) for file, path, severity, _ in said]
    assert ("t/pool.yaml", "spec.strategy", "error") in paths, said  # checked beside its own schema error
    assert ("t/pool.yaml", "spec.scanIntervall", "error") in paths, said
    assert any("did you mean 'three-in-a-row'" in message for *_, message in said)
    assert ("t/partners.yaml", "spec.entries[2]", "warning") in paths, said  # the duplicate
    assert not any(file == "t/gw.yaml" for file, *_ in said), said  # partners exists, with errors of its own


def test_status_and_hidden_folders_are_skipped(write_tree: Callable[[dict[str, str | bytes]], Path]) -> None:
    """status/ (written by agents) and hidden folders are not desired state; other files are references."""
    root = write_tree(
        {
            "status/node/x.yaml": "not: [valid",
            ".github/workflows/ci.yml": "on: push",
            "egress/a.yaml": ALLOW_LIST.format(name="a", entries="    - ip: 203.0.113.1"),
            "files/nginx.conf": "server {}",
        }
    )
    tree = read_source_tree(root, max_file_bytes=1 << 20)
    assert [f.relpath for f in tree.files] == ["egress/a.yaml"]
    assert tree.other_paths == frozenset({"files/nginx.conf"})


def test_symlinks_out_of_the_tree_are_ignored(
    write_tree: Callable[[dict[str, str | bytes]], Path], tmp_path: Path
) -> None:
    """A desired-state repository cannot make the agent read files elsewhere on the machine."""
    secret = tmp_path / "secret.yaml"
    secret.write_text("password: hunter2\n")
    root = write_tree({"a.yaml": ALLOW_LIST.format(name="a", entries="    - ip: 203.0.113.1")})
    (root / "b.yaml").symlink_to(secret)
    tree = read_source_tree(root, max_file_bytes=1 << 20)
    assert [f.relpath for f in tree.files] == ["a.yaml"]


def test_oversized_files_are_refused() -> None:
    """A file over the limit is one located problem, not a slow parse."""
    result = load_tree(_tree(**{"big.yaml": "a: " + "x" * 200}), LoadOptions(max_file_bytes=100))
    assert [(p.file, p.line, p.message[:16]) for p in result.errors] == [("t/big.yaml", 1, "the file is 203 ")]


def test_empty_documents_and_comment_only_files_are_fine() -> None:
    """A file of comments, or a trailing '---', holds no resource and no error."""
    result = load_desired_state(
        _tree(
            **{
                "a.yaml": "# nothing yet\n",
                "b.yaml": ALLOW_LIST.format(name="b", entries="    - ip: 203.0.113.1") + "---\n",
            }
        )
    )
    assert result.documents == 1


def test_duplicate_entries_are_warnings() -> None:
    """The same destination twice in a list is a warning that names the first one; the state stays valid."""
    result = load_desired_state(
        _tree(**{"a.yaml": ALLOW_LIST.format(name="a", entries="    - ip: 203.0.113.1\n    - ip: 203.0.113.1")})
    )
    [warning] = result.warnings
    assert warning.severity is Severity.WARNING
    assert (warning.line, warning.path) == (7, "spec.entries[1]")
    assert "already listed at line 6" in warning.message


def test_internal_ranges_are_configurable() -> None:
    """Tests (and operators) can choose the internal-range list; here 10/8 becomes public."""
    tree = _tree(**{"a.yaml": ALLOW_LIST.format(name="a", entries="    - ip: 10.0.0.1\n    - ip: 192.0.2.1")})
    result = load_tree(tree, LoadOptions(internal_ranges=AddressRanges(["192.0.2.0/24"])))
    assert [p.path for p in result.errors] == ["spec.entries[1].ip"]


def test_a_gateway_override_applies_to_the_lists_it_enforces() -> None:
    """A gateway whose internalRanges omit 10/8 may enforce a list with 10.x; other lists keep the default."""
    gateway = """apiVersion: reconciler/v1
kind: EgressGateway
metadata: {name: lab}
spec:
  allowLists: [lab]
  clients: [192.168.0.0/16]
  internalRanges: [127.0.0.0/8]
"""
    tree = _tree(
        **{
            "gw.yaml": gateway,
            "lab.yaml": ALLOW_LIST.format(name="lab", entries="    - ip: 10.0.0.1"),
            "prod.yaml": ALLOW_LIST.format(name="prod", entries="    - ip: 10.0.0.1"),
        }
    )
    result = load_tree(tree)
    assert [(p.name, p.path) for p in result.errors] == [("prod", "spec.entries[0].ip")]
    assert result.state.get(EgressAllowList, "lab") is not None


def test_node_selection_keeps_only_what_selects_the_node() -> None:
    """DesiredState.for_node drops resources whose spec.nodes exclude the node."""
    tree = read_source_tree(EXAMPLE, max_file_bytes=1 << 20)
    state = load_desired_state(tree).state
    on_gateway = {(r.KIND, r.metadata.name) for r in state.for_node("gw-1")}
    assert ("EgressGateway", "gateways") in on_gateway
    assert ("IPPool", "egress") not in on_gateway
    assert ("EgressAllowList", "partners") in on_gateway


def test_the_file_cache_rereads_only_changed_files() -> None:
    """A second load with a cache reuses the resources of unchanged valid files and re-reads the rest."""
    cache = FileCache()
    a = ALLOW_LIST.format(name="a", entries="    - ip: 203.0.113.1")
    b_before = ALLOW_LIST.format(name="b", entries="    - ip: 203.0.113.2")
    b_after = ALLOW_LIST.format(name="b", entries="    - ip: 203.0.113.3")
    first = load_desired_state(_tree(**{"a.yaml": a, "b.yaml": b_before}), cache=cache)
    second = load_desired_state(_tree(**{"a.yaml": a, "b.yaml": b_after}), cache=cache)
    assert second.state.get(EgressAllowList, "a") is first.state.get(EgressAllowList, "a")
    assert second.state.get(EgressAllowList, "b") is not first.state.get(EgressAllowList, "b")
    assert second.documents == 2


def test_files_with_errors_are_not_cached() -> None:
    """An invalid file is read again on every load, so its problems are always reported."""
    cache = FileCache()
    tree = _tree(**{"a.yaml": ALLOW_LIST.format(name="a", entries="    - ip: 10.0.0.1")})
    for _ in range(2):
        result = load_tree(tree, cache=cache)
        assert [p.path for p in result.errors] == ["spec.entries[0].ip"]


def _errors(result: object) -> list[tuple[int, str, str]]:
    problems = getattr(result, "problems", ())
    return [(p.line, p.path, p.message) for p in problems if p.severity is Severity.ERROR]


def test_a_bad_entry_does_not_hide_the_internal_ranges_of_the_others() -> None:
    """A host-bits error in one entry and internal addresses in two others: all three in one run."""
    text = ALLOW_LIST.format(
        name="mixed",
        entries="    - cidr: 198.51.100.5/28\n    - ip: 10.1.2.3\n    - ip: 203.0.113.4\n    - cidr: 192.168.0.0/24",
    )
    errors = _errors(load_tree(_tree(**{"a.yaml": text})))
    assert [(line, path) for line, path, _ in errors] == [
        (6, "spec.entries[0].cidr"),
        (7, "spec.entries[1].ip"),
        (9, "spec.entries[3].cidr"),
    ]
    assert "did you mean 198.51.100.0/28?" in errors[0][2]
    assert "10.1.2.3 is an internal address" in errors[1][2]


def test_an_unknown_api_version_does_not_hide_field_errors() -> None:
    text = "apiVersion: reconciler/v9\nkind: TCPProxy\nmetadata: {name: p}\nspec: {apps: [], balanse: random}\n"
    errors = _errors(load_tree(_tree(**{"p.yaml": text})))
    assert [path for _, path, _ in errors] == ["apiVersion", "spec.apps", "spec.balanse"]


def test_a_duplicate_key_does_not_hide_the_other_documents_of_the_file() -> None:
    """Document 1 has a duplicate key, document 2 a field error, document 3 is valid and loaded."""
    text = (
        ALLOW_LIST.format(name="one", entries="    - ip: 203.0.113.1")
        + "  resolveInterval: 60s\n  resolveInterval: 90s\n---\n"
        + ALLOW_LIST.format(name="two", entries="    - ip: 10.0.0.1")
        + "---\n"
        + ALLOW_LIST.format(name="three", entries="    - ip: 203.0.113.3")
    )
    result = load_tree(_tree(**{"lists.yaml": text}))
    messages = [message for _, _, message in _errors(result)]
    assert any("duplicate key 'resolveInterval'" in m for m in messages)
    assert any("10.0.0.1 is an internal address" in m for m in messages)
    assert [r.metadata.name for r in result.state.of_kind(EgressAllowList)] == ["three", "two"]  # not "one"


def test_a_file_over_the_limit_is_reported_with_its_real_size(tmp_path: Path) -> None:
    """Only limit + 1 bytes are read, but the message gives the file's size (it said "1025 bytes" for any)."""
    (tmp_path / "big.yaml").write_bytes(b"# " + b"x" * 5000 + b"\n")
    result = load_tree(read_source_tree(tmp_path, max_file_bytes=1024), LoadOptions(max_file_bytes=1024))
    assert [p.message.split(":")[0] for p in result.errors] == ["the file is 5003 bytes, over the limit of 1024"]


def test_a_domain_that_looks_like_a_listed_one_or_mixes_scripts_is_warned_about() -> None:
    """A homoglyph of a listed or protected domain of any list is a warning naming it: a Cyrillic letter among
    Latin ones, or a name all in Cyrillic; a label that mixes scripts without a twin is warned about too; a name in
    one script that looks like nothing listed is not."""
    text = (
        "apiVersion: reconciler/v1\nkind: EgressAllowList\nmetadata: {name: a}\nspec:\n  entries:\n"
        "    - {domain: paypal.example, protected: true}\n"
        "    - domain: p\u0430ypal.example\n"
        "    - domain: b\u00fccher.example\n"
        "    - domain: \u043f\u0440\u0438\u043c\u0435\u0440.example\n"
        "    - domain: \u0430\u0440\u0440\u04cf\u0435.example\n"
        "    - domain: g\u043e\u043egle.test\n"
        "---\napiVersion: reconciler/v1\nkind: EgressAllowList\nmetadata: {name: b}\nspec:\n  entries:\n"
        "    - domain: apple.example\n"
    )
    result = load_tree(SourceTree("", (SourceFile("a.yaml", "a.yaml", text.encode()),)))
    warnings = [(p.line, p.message) for p in result.warnings if "looks like" in p.message or "mixes" in p.message]
    assert [line for line, _ in warnings] == [7, 10, 11]
    assert (
        "p\u0430ypal.example (xn--pypal-4ve.example) looks like paypal.example, protected in list a" in warnings[0][1]
    )
    assert "looks like apple.example, in list b, but is another name" in warnings[1][1]
    assert "mixes Cyrillic and Latin letters in 'g\u043e\u043egle'" in warnings[2][1]
