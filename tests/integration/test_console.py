"""The console against a real bare git remote, in-process over HTTP: edits through the API and the pages become
one commit each whose diff is the entry's lines only, authored by the user; refused edits (protected, internal,
duplicate, unauthenticated, a form without its CSRF token) commit nothing; two consoles editing at once both land,
one rebuilt on the other's tip; pull-request mode pushes a branch and asks a (local) forge for the pull request."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from reconciler.console.allow_list_edits import Entry
from reconciler.console.app import Access, ConsoleApp
from reconciler.console.auth import TokenBook, hash_token
from reconciler.console.service import Console, add_edit, compare_url
from reconciler.errors import ReconcilerError
from reconciler.settings import GitIdentity
from reconciler.system.clock import SystemClock
from reconciler.system.console_git import ConsoleClone
from reconciler.system.forge import Forge
from tests.conftest import EXAMPLE
from tests.integration.agents import Remote, git

pytestmark = pytest.mark.integration

TOKEN = "alice-token"
ALICE = GitIdentity("alice", "alice@example.org")
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PARTNERS = (EXAMPLE / "egress" / "partners.yaml").read_text()
FILE = "desired-state/egress/partners.yaml"


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    remote = Remote(tmp_path)
    remote.commit(
        {FILE: PARTNERS, "desired-state/egress/platform.yaml": (EXAMPLE / "egress" / "platform.yaml").read_text()}
    )
    return remote


def make_app(
    remote: Remote, folder: Path, *, mode: str = "push", forge: Forge | None = None, legacy: str | None = None
) -> ConsoleApp:
    clone = ConsoleClone(
        remote.url, workdir=folder, branch="main", path="desired-state", timeout=30, committer=GitIdentity()
    )
    console = Console(clone, mode=mode, forge=forge, clock=SystemClock())
    access = Access(TokenBook([(hash_token(TOKEN), ALICE)]))
    return ConsoleApp(console, access, status_branch="reconciler-status", stale_after=300, legacy_list=legacy)


def run(scenario: Callable[[], Any]) -> None:
    asyncio.run(scenario())


async def client_for(app: ConsoleApp) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = TestClient(TestServer(app.application()))
    await client.start_server()
    return client


def head(remote: Remote, ref: str = "main") -> str:
    return git(remote.bare, "rev-parse", ref)


def test_api_edits_are_single_commits_and_refusals_commit_nothing(remote: Remote, tmp_path: Path) -> None:
    app = make_app(remote, tmp_path / "console")

    async def scenario() -> None:
        client = await client_for(app)
        try:
            lists = await (await client.get("/api/v1/allowlists", headers=AUTH)).json()
            partners = next(found for found in lists if found["name"] == "partners")
            assert partners["file"] == "egress/partners.yaml"
            assert {"destination": "198.51.100.0/28", "protected": True}.items() <= partners["entries"][3].items()

            before = head(remote)
            added = await client.post(
                "/api/v1/allowlists/partners/entries",
                json={"domain": "api.new.example", "ports": [443], "protocol": "tcp", "comment": "new partner"},
                headers=AUTH,
            )
            assert added.status == 201, await added.text()
            body = await added.json()
            assert body["branch"] == "main"
            assert body["pullRequest"] is None
            assert head(remote) == body["commit"]
            assert git(remote.bare, "rev-parse", f"{body['commit']}^") == before  # one commit
            assert git(remote.bare, "log", "-1", "--format=%an <%ae>", "main") == "alice <alice@example.org>"
            diff = git(remote.bare, "diff", "-U0", before, "main")
            assert [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")] == [
                "+    - domain: api.new.example",
                "+      ports: [443]",
                "+      protocol: tcp",
                "+      comment: new partner",
            ]
            assert git(remote.bare, "show", f"main:{FILE}").startswith(PARTNERS)  # comments and all, untouched

            tip = head(remote)
            internal = await client.post("/api/v1/allowlists/partners/entries", json={"ip": "10.0.0.1"}, headers=AUTH)
            assert internal.status == 422
            error = (await internal.json())["errors"][0]
            assert (error["file"], error["path"]) == ("egress/partners.yaml", "spec.entries[6].ip")
            assert error["line"] > 30
            assert "internal address" in error["message"]
            protected = await client.delete("/api/v1/allowlists/partners/entries/api.partner.example", headers=AUTH)
            assert protected.status == 409
            duplicate = await client.post(
                "/api/v1/allowlists/partners/entries", json={"ip": "203.0.113.7"}, headers=AUTH
            )
            assert duplicate.status == 409
            anonymous = await client.post("/api/v1/allowlists/partners/entries", json={"ip": "203.0.113.8"})
            assert anonymous.status == 401
            wrong = await client.post(
                "/api/v1/allowlists/partners/entries", json={"ip": "203.0.113.8"}, headers={"Authorization": "Bearer x"}
            )
            assert wrong.status == 401
            assert head(remote) == tip  # none of them committed anything

            removed = await client.delete("/api/v1/allowlists/partners/entries/203.0.113.7", headers=AUTH)
            assert removed.status == 200
            assert "203.0.113.7" not in git(remote.bare, "show", f"main:{FILE}")
            nodes = await client.get("/api/v1/nodes", headers=AUTH)
            assert await nodes.json() == []  # no agent has published yet
        finally:
            await client.close()
            app.console.close()

    run(scenario)


def test_an_edit_fetches_the_remote_once(remote: Remote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One fetch per edit when nobody races it (a rejected push fetches again: the racing test)."""
    fetches: list[str | None] = []
    refresh = ConsoleClone.refresh

    def counting(clone: ConsoleClone, ref: str | None = None) -> str:
        fetches.append(ref)
        return refresh(clone, ref)

    monkeypatch.setattr(ConsoleClone, "refresh", counting)
    app = make_app(remote, tmp_path / "console")

    async def scenario() -> None:
        client = await client_for(app)
        try:
            added = await client.post("/api/v1/allowlists/partners/entries", json={"ip": "203.0.113.8"}, headers=AUTH)
            assert added.status == 201, await added.text()
            assert "203.0.113.8" in git(remote.bare, "show", f"main:{FILE}")
            assert len(fetches) == 1
        finally:
            await client.close()
            app.console.close()

    run(scenario)


def test_a_file_with_crlf_line_endings_gets_a_diff_of_the_new_lines_only(tmp_path: Path) -> None:
    """A list committed from Windows: the console's commit adds its lines with CRLF and changes no other line."""
    remote = Remote(tmp_path)
    remote.commit({FILE: PARTNERS.replace("\n", "\r\n")})
    app = make_app(remote, tmp_path / "console")

    async def scenario() -> None:
        client = await client_for(app)
        try:
            before = head(remote)
            added = await client.post("/api/v1/allowlists/partners/entries", json={"ip": "203.0.113.8"}, headers=AUTH)
            assert added.status == 201, await added.text()
            stat = git(remote.bare, "diff", "--numstat", before, "main")
            assert stat.split("\t")[:2] == ["1", "0"]  # one line added, none changed
            shown = subprocess.run(["git", "show", f"main:{FILE}"], cwd=remote.bare, capture_output=True, check=True)
            assert b"    - ip: 203.0.113.8\r\n" in shown.stdout  # bytes: text mode would turn CRLF into LF
            assert shown.stdout.count(b"\r\n") == shown.stdout.count(b"\n")
        finally:
            await client.close()
            app.console.close()

    run(scenario)


def test_pages_need_a_login_and_the_forms_csrf_token(remote: Remote, tmp_path: Path) -> None:
    app = make_app(remote, tmp_path / "console")

    async def scenario() -> None:
        client = await client_for(app)
        try:
            assert (await client.get("/allowlists", allow_redirects=False)).status == 303
            refused = await client.post("/login", data={"token": "nope"})
            assert refused.status == 401
            await client.post("/login", data={"token": TOKEN})
            page = await (await client.get("/allowlists")).text()
            assert "api.partner.example" in page
            csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            tip = head(remote)
            form = {"kind": "ip", "destination": "203.0.113.44", "comment": "from the page"}
            forged = await client.post("/allowlists/partners/add", data=form)
            assert forged.status == 403
            wrong = await client.post("/allowlists/partners/add", data={**form, "csrf": "x" * 43})
            assert wrong.status == 403
            preview = await client.post("/allowlists/partners/add", data={**form, "csrf": csrf})
            assert "+    - ip: 203.0.113.44" in await preview.text()
            assert head(remote) == tip  # a preview commits nothing
            done = await client.post("/allowlists/partners/add", data={**form, "csrf": csrf, "action": "commit"})
            assert head(remote) in await done.text()
            assert head(remote) != tip
            refused_page = await client.post(
                "/allowlists/partners/remove",
                data={"destination": "api.partner.example", "csrf": csrf, "action": "commit"},
            )
            assert refused_page.status == 409
            assert "can never be removed" in await refused_page.text()
        finally:
            await client.close()
            app.console.close()

    run(scenario)


def test_two_consoles_editing_at_once_both_land(remote: Remote, tmp_path: Path) -> None:
    """Console A's first push is beaten by B's edit: A makes its edit again on B's tip and pushes."""
    first, second = make_app(remote, tmp_path / "a"), make_app(remote, tmp_path / "b")
    original = first.console._validate
    calls = []

    def validate_then_lose_the_race(base: str) -> None:
        original(base)
        calls.append(base)
        if len(calls) == 1:  # between A's validation and its push, B commits and pushes
            second.console._commit(
                add_edit("partners", Entry("ip", "203.0.113.61", comment="B's")), GitIdentity("bob", "bob@example.org")
            )

    first.console._validate = validate_then_lose_the_race  # type: ignore[method-assign]

    async def scenario() -> None:
        client = await client_for(first)
        try:
            added = await client.post("/api/v1/allowlists/partners/entries", json={"ip": "203.0.113.60"}, headers=AUTH)
            assert added.status == 201, await added.text()
            commit = (await added.json())["commit"]
            assert head(remote) == commit
            authors = git(remote.bare, "log", "-3", "--format=%an", "main").splitlines()
            assert authors == ["alice", "bob", "operator"]  # linear: A rebuilt on B's tip
            text = git(remote.bare, "show", f"main:{FILE}")
            assert "203.0.113.60" in text
            assert "203.0.113.61" in text
            assert len(calls) == 2
        finally:
            await client.close()
            first.console.close()
            second.console.close()

    run(scenario)


def test_pull_request_mode_asks_the_forge(remote: Remote, tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    async def pulls(request: web.Request) -> web.Response:
        seen.append(
            {
                "method": request.method,
                "path": request.path,
                "auth": request.headers.get("Authorization"),
                "body": await request.json(),
            }
        )
        return web.json_response({"number": 7, "html_url": "https://forge.example/team/desired/pull/7"}, status=201)

    async def scenario() -> None:
        forge_app = web.Application()
        forge_app.router.add_post("/repos/team/desired/pulls", pulls)
        forge = TestServer(forge_app)
        await forge.start_server()
        app = make_app(
            remote,
            tmp_path / "console",
            mode="pull-request",
            forge=Forge("github", str(forge.make_url("")), "team/desired", "forge-token"),
        )
        client = await client_for(app)
        try:
            tip = head(remote)
            added = await client.post("/api/v1/allowlists/partners/entries", json={"ip": "203.0.113.70"}, headers=AUTH)
            assert added.status == 201, await added.text()
            body = await added.json()
            assert body["pullRequest"] == "https://forge.example/team/desired/pull/7"
            assert body["branch"].startswith("console/alice/allow-203-0-113-70-in-partners")
            assert head(remote) == tip  # main waits for the review
            assert head(remote, body["branch"]) == body["commit"]
            assert seen == [
                {
                    "method": "POST",
                    "path": "/repos/team/desired/pulls",
                    "auth": "Bearer forge-token",
                    "body": {
                        "title": "Allow 203.0.113.70 in partners",
                        "head": body["branch"],
                        "base": "main",
                        "body": "Allow 203.0.113.70 in partners\n\nFrom the console, by alice.",
                    },
                }
            ]
        finally:
            await client.close()
            await forge.close()
            app.console.close()

    run(scenario)


def test_gitlab_and_gitea_requests() -> None:
    gitlab = Forge("gitlab", "https://gitlab.example/api/v4", "team/desired", "t")._request("h", "main", "T", "B")
    assert gitlab == (
        "https://gitlab.example/api/v4/projects/team%2Fdesired/merge_requests",
        {"PRIVATE-TOKEN": "t"},
        {"source_branch": "h", "target_branch": "main", "title": "T", "description": "B"},
    )
    gitea = Forge("gitea", "https://gitea.example/api/v1/", "team/desired", "t")._request("h", "main", "T", "B")
    assert gitea[0] == "https://gitea.example/api/v1/repos/team/desired/pulls"
    assert gitea[1] == {"Authorization": "token t"}
    assert json.dumps(gitea[2], sort_keys=True) == json.dumps(
        {"base": "main", "body": "B", "head": "h", "title": "T"}, sort_keys=True
    )


def test_the_old_tools_calls_map_onto_the_same_commits(remote: Remote, tmp_path: Path) -> None:
    """--legacy-api partners answers outputGuard's calls as its server did (service/httpserver.go), field by field
    as its page (static/index.html) reads them: data.status and data.info of /api, data.Records[] of /show-all,
    the message of /ping; off without the flag."""
    off = make_app(remote, tmp_path / "off")
    app = make_app(remote, tmp_path / "console", legacy="partners")

    async def scenario() -> None:
        without = await client_for(off)
        client = await client_for(app)
        try:
            assert (await without.get("/show-all")).status == 404
            assert await (await client.get("/ping")).json() == {"message": "pong"}
            tip = head(remote)
            anonymous = await client.get("/api?add=legacy.example.com&nonDeletable=false")
            assert (anonymous.status, (await anonymous.json())["status"]) == (401, "failed")  # no edit without a user
            assert head(remote) == tip
            # the page's own call: /api?${action}=${ip}&nonDeletable=${checkbox.checked}
            added = await client.get("/api?add=legacy.example.com&nonDeletable=true", headers=AUTH)
            assert added.status == 200, await added.text()
            assert await added.json() == {"info": "legacy.example.com", "status": "success"}
            assert added.headers["X-Reconciler-Commit"] == head(remote)
            text = git(remote.bare, "show", f"main:{FILE}")
            assert text.endswith("    - domain: legacy.example.com\n      protected: true")
            go_false = await client.get("/api?add=203.0.113.80&nonDeletable=yes", headers=AUTH)  # ParseBool: not true
            assert (await go_false.json())["status"] == "success"
            assert git(remote.bare, "show", f"main:{FILE}").endswith("    - ip: 203.0.113.80")  # not protected

            shown = (await (await client.get("/show-all", headers=AUTH)).json())["Records"]
            assert [r["ID"] for r in shown] == list(range(1, len(shown) + 1))
            by_name = {r["Name"]: r for r in shown}
            domain = by_name["legacy.example.com"]
            assert (domain["Types"], domain["IP"], domain["IsNoDel"], domain["IsLocalNet"]) == (
                "Domain",
                "",
                True,
                False,
            )
            fixed = by_name["203.0.113.7"]
            assert (fixed["Types"], fixed["IP"], fixed["IsNoDel"]) == ("IP", "203.0.113.7", False)
            assert set(fixed) == {"ID", "Types", "IP", "Name", "IsNoDel", "IsLocalNet", "CreatedAt"}
            assert fixed["CreatedAt"] == "0001-01-01T00:00:00Z"

            refused = await client.get("/api?del=legacy.example.com", headers=AUTH)  # protected
            assert refused.status == 400
            assert (await refused.json())["status"] == "failed"
            assert "protected" in (await refused.json())["info"]
            deleted = await client.get("/api?del=203.0.113.7", headers=AUTH)
            assert await deleted.json() == {"info": "203.0.113.7", "status": "success"}
            internal = await client.get("/api?add=192.168.1.1", headers=AUTH)  # refused by validation
            assert (internal.status, (await internal.json())["status"]) == (400, "failed")
        finally:
            await client.close()
            await without.close()
            app.console.close()
            off.console.close()

    run(scenario)


POOL_STATUS = {
    "status/pool-1/IPPool/egress.yaml": """kind: IPPool
name: egress
conditions: [{type: Ready, status: "True", reason: Applied, message: ""}]
observations:
  members:
    - {ip: 203.0.113.10, port: 19001, available: true, reason: ""}
    - {ip: 203.0.113.11, port: 19002, available: false, reason: "3 failures in a row"}
"""
}
EDGE_STATUS = {
    "status/dns-1/EdgeNetwork/example-org.yaml": """kind: EdgeNetwork
name: example-org
conditions: [{type: Ready, status: "True", reason: Applied, message: ""}]
observations:
  live: [edge1.example.net]
  edges:
    - {host: edge1.example.net, tier: pass_threshold, live: true, mode: available, last: 0.12, average: 0.2}
"""
}


def publish_status(remote: Remote, root: Path, files: dict[str, str], *, layout: str = "per-node") -> None:
    """Status branches as agents would have written them: a branch per node (``reconciler-status/<node>``), or
    one shared branch."""
    nodes = sorted({path.split("/")[1] for path in files}) if layout == "per-node" else [""]
    for node in nodes:
        work = root / f"status-work-{node or 'shared'}"
        git(root, "init", "-q", "-b", "status", str(work))
        for path, text in files.items():
            if node and path.split("/")[1] != node:
                continue
            (work / path).parent.mkdir(parents=True, exist_ok=True)
            (work / path).write_text(text)
        git(work, "add", "-A")
        git(work, "-c", "user.name=agent", "-c", "user.email=agent@example.invalid", "commit", "-q", "-m", "status")
        branch = f"reconciler-status/{node}" if node else "reconciler-status"
        git(work, "push", "-q", str(remote.bare), f"HEAD:refs/heads/{branch}")


def test_pool_bans_and_edge_modes_from_their_pages(tmp_path: Path) -> None:
    """The example's pools and edges: live status from the status branch, a ban and an edge mode committed from
    their forms after a preview; a mode without its comment is refused."""
    remote = Remote(tmp_path)
    files = {
        f"desired-state/{p.relative_to(EXAMPLE).as_posix()}": p.read_text()
        for p in EXAMPLE.rglob("*")
        if p.is_file() and p.suffix in (".yaml", ".conf", ".zone")
    }
    remote.commit(files)
    publish_status(remote, tmp_path, {**POOL_STATUS, **EDGE_STATUS}, layout="shared")  # the browser test: per node
    app = make_app(remote, tmp_path / "console")

    async def scenario() -> None:
        client = await client_for(app)
        try:
            await client.post("/login", data={"token": TOKEN})
            pools = await (await client.get("/pools")).text()
            assert 'pool-1: <span class="bad">unavailable</span> (3 failures in a row)' in pools
            csrf = pools.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            form = {"address": "203.0.113.11", "csrf": csrf}
            preview = await (await client.post("/pools/egress/ban", data=form)).text()
            assert "+  banned: [203.0.113.9, 203.0.113.11]" in preview
            await client.post("/pools/egress/ban", data={**form, "action": "commit"})
            assert git(remote.bare, "log", "-1", "--format=%s", "main") == "Ban 203.0.113.11 in egress"

            edges = await (await client.get("/edges")).text()
            assert 'dns-1: <span class="good">live</span>, pass_threshold, 0.12 s' in edges
            refused = await client.post(
                "/edges/example-org/mode", data={"host": "edge3.example.net", "mode": "unavailable", "csrf": csrf}
            )
            assert refused.status == 422
            assert "the comment is required" in await refused.text()
            mode = {"host": "edge3.example.net", "mode": "unavailable", "comment": "rack move", "csrf": csrf}
            await client.post("/edges/example-org/mode", data={**mode, "action": "commit"})
            text = git(remote.bare, "show", "main:desired-state/edges/example-org.yaml")
            assert '    - {host: edge3.example.net, mode: unavailable, comment: "rack move"}' in text
        finally:
            await client.close()
            app.console.close()

    run(scenario)


def test_who_may_edit_and_where(remote: Remote, tmp_path: Path) -> None:
    """A trusted proxy's header names the user, an untrusted peer's does not; a page form without a session is
    401; a path outside the tree is refused; without a forge, pull-request mode pushes the branch and gives the
    compare page (for web remotes)."""
    app = make_app(remote, tmp_path / "console", mode="pull-request")
    app.access.trust_header = "X-Forwarded-User"

    async def scenario() -> None:
        client = await client_for(app)
        try:
            tip = head(remote)
            untrusted = await client.post(
                "/api/v1/allowlists/partners/entries", json={"ip": "203.0.113.80"}, headers={"X-Forwarded-User": "eve"}
            )
            assert untrusted.status == 401
            no_session = await client.post(
                "/allowlists/partners/add", data={"kind": "ip", "destination": "203.0.113.81"}
            )
            assert no_session.status == 401
            assert head(remote) == tip
            app.access.trusted_proxies = ("127.0.0.0/8",)
            proxied = await client.post(
                "/api/v1/allowlists/partners/entries",
                json={"ip": "203.0.113.80"},
                headers={"X-Forwarded-User": "dave", "X-Forwarded-Email": "dave@example.org"},
            )
            assert proxied.status == 201, await proxied.text()
            body = await proxied.json()
            assert body["pullRequest"] is None
            assert body["compareUrl"] is None  # a file:// remote has no web page
            # a client-sent X-Forwarded-Email is not believed unless --trust-email-header names it
            assert git(remote.bare, "log", "-1", "--format=%an <%ae>", body["branch"]) == "dave <dave@console.invalid>"
            app.access.trust_email_header = "X-Forwarded-Email"
            proxied = await client.post(
                "/api/v1/allowlists/partners/entries",
                json={"ip": "203.0.113.82"},
                headers={"X-Forwarded-User": "dave", "X-Forwarded-Email": "dave@example.org"},
            )
            assert proxied.status == 201, await proxied.text()
            branch = (await proxied.json())["branch"]
            assert git(remote.bare, "log", "-1", "--format=%an <%ae>", branch) == "dave <dave@example.org>"
            assert head(remote) == tip  # pull-request mode: main is untouched
        finally:
            await client.close()
            app.console.close()

    run(scenario)
    with pytest.raises(ReconcilerError, match="is not a file of the desired state"):
        app.console.clone.inside("../outside.yaml")
    with pytest.raises(ReconcilerError, match="is not a file of the desired state"):
        app.console.clone.inside("--upload-pack=x")
    assert compare_url("git@github.com:team/desired.git", "console/a/x", "main") == (
        "https://github.com/team/desired/compare/main...console/a/x"
    )
    assert compare_url("https://token@gitea.example/team/desired.git", "b", "main") == (
        "https://gitea.example/team/desired/compare/main...b"
    )
