"""The console attacked as an outsider would (issue 23): values that try to smuggle YAML are refused or stored as
inert strings, with the tree read back by the agent's loader holding exactly the intended change; cross-site
requests from a trusted proxy's user (text/plain and form posts to the API, the legacy API's GET) commit nothing;
that user completes a page edit with a session bound to them; reads need a user; sessions expire and stay few."""

from __future__ import annotations

import tracemalloc
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest

from reconciler.console.allow_list_edits import Entry
from reconciler.console.auth import Sessions
from reconciler.console.edits import EditError
from reconciler.console.service import Edit, add_edit, ban_edit, mode_edit
from reconciler.loading.loader import load_tree
from reconciler.model import EdgeNetwork
from reconciler.model.source_tree import SourceFile, SourceTree
from reconciler.settings import GitIdentity
from reconciler.system.files import read_source_tree
from tests.conftest import EXAMPLE
from tests.integration.agents import Remote, git
from tests.integration.test_console import AUTH, FILE, PARTNERS, client_for, head, make_app, run

pytestmark = pytest.mark.integration

PLATFORM = "desired-state/egress/platform.yaml"
SMUGGLED_PROXY = "2030-01-01\n---\napiVersion: reconciler/v1\nkind: TCPProxy\nmetadata: {name: evil}\nspec: {}\n"
SWITCHED_OFF = "2030-01-01\n  nodes: [nowhere]"


def state_at(remote: Remote, ref: str = "main") -> dict[tuple[str, str], dict[str, Any]]:
    """Every resource at ``ref`` as the agent's loader reads it."""
    files = tuple(
        SourceFile(path, path, git(remote.bare, "show", f"{ref}:{path}").encode() + b"\n") for path in (FILE, PLATFORM)
    )
    result = load_tree(SourceTree("", files))
    return {(r.KIND, r.metadata.name): r.model_dump() for r in result.state}


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    remote = Remote(tmp_path)
    remote.commit({FILE: PARTNERS, PLATFORM: (Path(__file__).parents[2] / PLATFORM).read_text()})
    return remote


def test_values_that_smuggle_yaml_are_refused_or_inert(remote: Remote, tmp_path: Path) -> None:
    app = make_app(remote, tmp_path / "console")
    refused = [
        {"domain": "a.example", "expires": SMUGGLED_PROXY},
        {"domain": "a.example", "expires": SWITCHED_OFF},
        {"domain": "a.example\n  nodes: [nowhere]"},
        {"domain": "a.example", "ports": ["443]\n  nodes: [nowhere"]},
        {"domain": "a.example", "ports": [443], "protocol": "tcp\n  nodes: [nowhere]"},
        {"ip": "203.0.113.9\n---\nkind: TCPProxy"},
        {"domain": "a.example", "comment": "fine \u202e txet desrever"},  # a bidi override
    ]
    inert = [
        "x\n---\napiVersion: reconciler/v1\nkind: TCPProxy\nmetadata: {name: evil}",
        "x\n  nodes: [nowhere]",
        "'] # \" \\ {a: b}, [c]",
    ]

    async def scenario() -> None:
        client = await client_for(app)
        try:
            tip, before = head(remote), state_at(remote)
            for body in refused:
                answer = await client.post("/api/v1/allowlists/partners/entries", json=body, headers=AUTH)
                assert answer.status == 422, (body, await answer.text())
            assert head(remote) == tip  # nothing committed
            for number, comment in enumerate(inert):
                entry = {"ip": f"203.0.113.{100 + number}", "comment": comment}
                answer = await client.post("/api/v1/allowlists/partners/entries", json=entry, headers=AUTH)
                assert answer.status == 201, await answer.text()
            after = state_at(remote)
            assert after.keys() == before.keys()  # no document came in, none went
            assert {k: v for k, v in after.items() if k != ("EgressAllowList", "partners")} == {
                k: v for k, v in before.items() if k != ("EgressAllowList", "partners")
            }
            was, now = before[("EgressAllowList", "partners")], after[("EgressAllowList", "partners")]
            assert {k: v for k, v in now["spec"].items() if k != "entries"} == {
                k: v for k, v in was["spec"].items() if k != "entries"
            }
            added = now["spec"]["entries"][len(was["spec"]["entries"]) :]
            assert now["spec"]["entries"][: len(was["spec"]["entries"])] == was["spec"]["entries"]
            assert [e["comment"] for e in added] == inert  # stored as the strings given
        finally:
            await client.close()
            app.console.close()

    run(scenario)


def test_an_edit_that_changes_more_than_its_value_is_refused(tmp_path: Path) -> None:
    """The read-back guard on its own: whatever the writer emits, more than the intended change is refused."""
    platform = (Path(__file__).parents[2] / PLATFORM).read_text()
    tree = SourceTree("", (SourceFile("egress/platform.yaml", "egress/platform.yaml", platform.encode()),))
    honest = add_edit("partners", Entry("ip", "203.0.113.50"))
    assert "203.0.113.50" in honest.apply(tree, FILE, PARTNERS)

    def smuggling(extra: str) -> Edit:
        return Edit(honest.kind, honest.name, lambda text: honest.change(text) + extra, honest.message, honest.expect)

    for extra in (
        "\n---\napiVersion: reconciler/v1\nkind: EgressAllowList\nmetadata: {name: more}\nspec: {entries: []}\n",
        "  maxAddressesPerDomain: 5\n",  # valid YAML, a valid spec: one more field than the entry
    ):
        with pytest.raises(EditError) as refused:
            smuggling(extra).apply(tree, FILE, PARTNERS)
        assert refused.value.status == 422


def test_cross_site_requests_from_a_proxied_user_commit_nothing(remote: Remote, tmp_path: Path) -> None:
    app = make_app(remote, tmp_path / "console", legacy="partners")
    app.access.trust_header, app.access.trusted_proxies = "X-Forwarded-User", ("127.0.0.0/8",)
    proxied = {"X-Forwarded-User": "dave"}

    async def scenario() -> None:
        client = await client_for(app)
        try:
            tip = head(remote)
            plain = await client.post(
                "/api/v1/allowlists/partners/entries",
                data='{"ip": "203.0.113.90"}',
                headers={**proxied, "Content-Type": "text/plain"},
            )
            assert plain.status == 415
            form = await client.post(
                "/api/v1/allowlists/partners/entries", data={"ip": "203.0.113.91"}, headers=proxied
            )
            assert form.status == 415
            legacy = await client.get("/api?add=evil.example", headers=proxied)  # what an <img> tag sends
            assert legacy.status == 401
            page = await client.post(
                "/allowlists/partners/add",
                data={"kind": "ip", "destination": "203.0.113.92", "action": "commit"},
                headers=proxied,
            )
            assert page.status == 403  # no CSRF token
            assert head(remote) == tip

            # the same user, through their pages: the session is bound to them, with a cookie
            shown = await client.get("/allowlists", headers=proxied)
            assert shown.status == 200
            assert [c.key for c in client.session.cookie_jar] == ["reconciler_console"]
            csrf = (await shown.text()).split('name="csrf" value="', 1)[1].split('"', 1)[0]
            again = await (await client.get("/allowlists", headers=proxied)).text()
            assert f'name="csrf" value="{csrf}"' in again  # reused, not one session per view
            assert len(app.access.sessions) == 1
            form_values = {"kind": "ip", "destination": "203.0.113.93", "csrf": csrf, "action": "commit"}
            done = await client.post("/allowlists/partners/add", data=form_values, headers=proxied)
            assert done.status == 200, await done.text()
            assert head(remote) != tip
            assert git(remote.bare, "log", "-1", "--format=%an", "main") == "dave"
            other = await client.get("/allowlists", headers={"X-Forwarded-User": "erin"})  # dave's cookie, erin
            assert f'name="csrf" value="{csrf}"' not in await other.text()
        finally:
            await client.close()
            app.console.close()

    run(scenario)


def test_reads_need_a_user_unless_public(remote: Remote, tmp_path: Path) -> None:
    app = make_app(remote, tmp_path / "console", legacy="partners")

    async def scenario() -> None:
        client = await client_for(app)
        try:
            wrong = {"Authorization": "Bearer not-a-token"}
            for path in ("/api/v1/allowlists", "/api/v1/nodes", "/show-all"):
                missing = await client.get(path)
                assert missing.status == 401, path
                assert "a bearer token is needed" in (await missing.json())["error"]
                refused = await client.get(path, headers=wrong)
                assert refused.status == 401, path
                assert "the bearer token is not valid" in (await refused.json())["error"], path
                assert (await client.get(path, headers=AUTH)).status == 200, path
            assert (await client.get("/allowlists", allow_redirects=False)).status == 303
            app.access.public_read = True
            for path in ("/api/v1/allowlists", "/show-all", "/allowlists"):
                assert (await client.get(path)).status == 200, path
            anonymous = await client.post("/api/v1/allowlists/partners/entries", json={"ip": "203.0.113.94"})
            assert anonymous.status == 401  # edits always need a user
            forged = await client.post(
                "/api/v1/allowlists/partners/entries", json={"ip": "203.0.113.94"}, headers=wrong
            )
            assert "the bearer token is not valid" in (await forged.json())["error"]
            legacy = await client.get("/api?add=203.0.113.94", headers=wrong)
            assert (legacy.status, "the bearer token is not valid" in await legacy.text()) == (401, True)
        finally:
            await client.close()
            app.console.close()

    run(scenario)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_sessions_expire_are_bounded_and_end_at_logout() -> None:
    clock = _Clock()
    sessions = Sessions(idle=60, lifetime=300, limit=3, clock=clock)
    alice = GitIdentity("alice", "alice@example.org")
    key, _ = sessions.start(alice)
    clock.now = 59
    assert sessions.get(key) is not None  # used: idle counts from here
    clock.now = 118
    assert sessions.get(key) is not None
    clock.now = 179
    assert sessions.get(key) is None  # idle 61 s
    key, _ = sessions.start(alice)
    for step in range(1, 7):
        clock.now = 179 + 50 * step
        found = sessions.get(key)
        assert (found is not None) == (50 * step <= 300), step  # the lifetime ends it though in use
    keys = [sessions.start(alice)[0] for _ in range(5)]
    assert len(sessions) == 3
    assert sessions.get(keys[0]) is None  # the oldest went first
    assert sessions.get(keys[-1]) is not None
    sessions.end(keys[-1])
    assert sessions.get(keys[-1]) is None


def test_memory_stays_flat_under_proxied_page_views(tmp_path: Path, remote: Remote) -> None:
    """10,000 page views of a proxied user that sends no cookie: one session, and memory that does not grow."""
    app = make_app(remote, tmp_path / "console")
    app.access.trust_header, app.access.trusted_proxies = "X-Forwarded-User", ("127.0.0.0/8",)

    class Request(dict[object, object]):  # what a page view gives _page_user, without aiohttp's own weight
        cookies: ClassVar[dict[str, str]] = {}
        headers: ClassVar[dict[str, str]] = {"X-Forwarded-User": "dave"}
        remote = "127.0.0.1"

    def view() -> None:
        app._page_user(Request())  # type: ignore[arg-type]

    for _ in range(1000):  # warm up
        view()
    tracemalloc.start()
    first = tracemalloc.take_snapshot()
    for _ in range(10_000):
        view()
    ours = [tracemalloc.Filter(True, "*/reconciler/*")]
    grown = sum(
        stat.size_diff
        for stat in tracemalloc.take_snapshot().filter_traces(ours).compare_to(first.filter_traces(ours), "filename")
    )
    tracemalloc.stop()
    app.console.close()
    print(f"sessions after 11,000 proxied page views: {len(app.access.sessions)}; memory grown: {grown} bytes")
    assert len(app.access.sessions) == 1
    assert grown < 200_000  # the old code kept ~600 bytes per view: 6 MB here


def test_edge_comments_and_ban_addresses_cannot_smuggle_yaml() -> None:
    """The pages' other values, through the same writer and read-back: an edge-mode comment is stored as the
    string given; a ban address that is not an address is refused before anything is written."""
    tree = read_source_tree(EXAMPLE, display_root="", max_file_bytes=1 << 20)
    edges, pools = "edges/example-org.yaml", "pools/egress-pool.yaml"
    host = str(load_tree(tree).state.get(EdgeNetwork, "example-org").spec.edge_list[0].host)  # type: ignore[union-attr]
    comment = "down}\n---\nkind: TCPProxy\nmetadata: {name: evil}, mode: force"
    text = (EXAMPLE / edges).read_text()
    after = mode_edit("example-org", host, "unavailable", comment).apply(tree, edges, text)
    edited = load_tree(
        replace(
            tree,
            files=tuple(SourceFile(f.path, f.relpath, after.encode()) if f.relpath == edges else f for f in tree.files),
        )
    )
    assert len(edited.state) == len(load_tree(tree).state)
    edge = edited.state.get(EdgeNetwork, "example-org").spec.edge_list[0]  # type: ignore[union-attr]
    assert (edge.mode, edge.comment) == ("unavailable", comment.strip())
    for address in ("203.0.113.9]\n  nodes: [nowhere", "203.0.113.9\n---\nkind: TCPProxy", "not-an-address"):
        with pytest.raises(EditError) as refused:
            ban_edit("egress", address, banned=True)
        assert refused.value.status == 422
    assert "203.0.113.77" in ban_edit("egress", "203.0.113.77", banned=True).apply(
        tree, pools, (EXAMPLE / pools).read_text()
    )
