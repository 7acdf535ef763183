"""The console's HTTP side: server-rendered pages (Jinja2, usable without JavaScript) and the JSON API, both over
:class:`~reconciler.console.service.Console`. Every edit needs an authenticated user: a bearer token for the API,
a session (and its CSRF token on every form) for the pages, or a user name from a trusted reverse proxy."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import jinja2
from aiohttp import web

from reconciler.console.allow_list_edits import Entry
from reconciler.console.auth import SESSION_COOKIE, Session, Sessions, TokenBook, trusted
from reconciler.console.edge_network_edits import EDGE_MODES
from reconciler.console.edits import EditError
from reconciler.console.legacy import legacy_routes
from reconciler.console.nodes import read_nodes
from reconciler.console.service import (
    Console,
    Edit,
    Outcome,
    RefusedEditError,
    add_edit,
    ban_edit,
    entry_json,
    mode_edit,
    problem_json,
    remove_edit,
)
from reconciler.errors import ReconcilerError
from reconciler.model import EdgeNetwork, IPPool
from reconciler.settings import GitIdentity

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Access:
    """Who may do what. ``trust_header`` (from ``trusted_proxies`` only) names the user; their e-mail is the
    tokens file's for that user name, else ``trust_email_header``'s value when that is set, else
    ``<user>@console.invalid``. ``public_read``: pages and read calls need no user."""

    tokens: TokenBook
    trust_header: str | None = None
    trusted_proxies: tuple[str, ...] = ()
    sessions: Sessions = field(default_factory=Sessions)
    trust_email_header: str | None = None
    public_read: bool = False


READER = Session(GitIdentity("(not logged in)", "read only"), "")  # a page view under --public-read
_NEW_SESSION = web.RequestKey("new_session", str)
JSON = "application/json"


TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("reconciler.console", "templates"),
    autoescape=jinja2.select_autoescape(default=True),
    undefined=jinja2.StrictUndefined,
)


def render(template: str, status: int = 200, **values: Any) -> web.Response:
    return web.Response(text=TEMPLATES.get_template(template).render(**values), status=status, content_type="text/html")


def _entry(form: Any) -> Entry:
    """An entry from a form or a JSON body: ``{domain|ip|cidr, ports, protocol, protected, expires, comment}``."""
    kind = str(form.get("kind", "")) or next((k for k in ("domain", "ip", "cidr") if form.get(k)), "")
    destination = str(form.get("destination", "") or form.get(kind, "")).strip()
    if kind not in ("domain", "ip", "cidr") or not destination:
        raise EditError("give one of domain, ip or cidr", 422)
    ports = form.get("ports") or ()
    if isinstance(ports, str):
        ports = [p.strip() for p in ports.split(",") if p.strip()]
    protected = form.get("protected")
    return Entry(
        kind,
        destination,
        tuple(str(p) for p in ports),
        str(form.get("protocol") or ""),
        protected in (True, "true", "on", "1"),
        str(form.get("expires") or ""),
        str(form.get("comment") or ""),
    )


def page_edit(section: str, name: str, operation: str, form: Any) -> Edit:
    """The edit a page's form asks for."""
    if section == "allowlists" and operation == "add":
        return add_edit(name, _entry(form))
    if section == "allowlists" and operation == "remove":
        return remove_edit(name, str(form.get("destination", "")))
    if section == "pools" and operation in ("ban", "release"):
        return ban_edit(name, str(form.get("address", "")).strip(), operation == "ban")
    if section == "edges" and operation == "mode":
        host, mode = str(form.get("host", "")), str(form.get("mode", ""))
        return mode_edit(name, host, mode, str(form.get("comment", "")).strip())
    raise EditError(f"no {operation} on {section}", 404)


def _observed(nodes: list[dict[str, Any]], kind: str, name: str) -> dict[str, dict[str, Any]]:
    """Per node, what it observed of one resource (its status document's observations)."""
    seen = {}
    for node in nodes:
        for resource in node["resources"]:
            if resource.get("kind") == kind and resource.get("name") == name:
                seen[node["node"]] = resource.get("observations") or {}
    return seen


def _outcome_json(outcome: Outcome) -> dict[str, Any]:
    request = outcome.pull_request
    return {
        "commit": outcome.commit,
        "branch": outcome.branch,
        "pullRequest": request.url if request is not None else None,
        "compareUrl": outcome.compare_url or None,
        "file": outcome.file,
    }


class ConsoleApp:
    def __init__(
        self,
        console: Console,
        access: Access,
        *,
        status_branch: str,
        stale_after: float,
        legacy_list: str | None = None,
    ) -> None:
        self.console = console
        self.legacy_list = legacy_list  # the old tool's calls edit this allow-list (None: they are off)
        self.access = access
        self.status_branch = status_branch
        self.stale_after = stale_after

    # --- who is asking ---------------------------------------------------------------------------------------

    def bearer_user(self, request: web.Request) -> GitIdentity | None:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return self.access.tokens.user(header.removeprefix("Bearer ").strip())
        return None

    def refusal(self, request: web.Request, needed: str) -> str:
        """Why a request has no user: a token that was given and is not known is said to be so."""
        if request.headers.get("Authorization", "").startswith("Bearer "):
            return "the bearer token is not valid (it is not in the console's tokens file)"
        return needed

    def api_user(self, request: web.Request) -> GitIdentity | None:
        """A bearer token's user, else the trusted proxy's (its cross-site requests are refused by the JSON-only
        rule: a page elsewhere cannot send ``application/json`` without a preflight, which is never answered)."""
        if request.headers.get("Authorization", "").startswith("Bearer "):
            return self.bearer_user(request)
        return self._proxied_user(request)

    def reader(self, request: web.Request) -> bool:
        """Whether the request may read: any user (token, proxy or page session), or anyone under --public-read."""
        if self.access.public_read or self.api_user(request) is not None:
            return True
        return self.access.sessions.get(request.cookies.get(SESSION_COOKIE)) is not None

    def _proxied_user(self, request: web.Request) -> GitIdentity | None:
        name = self.access.trust_header and request.headers.get(self.access.trust_header, "").strip()
        if not name or not trusted(request.remote, self.access.trusted_proxies):
            return None
        known = self.access.tokens.identity_of(name)
        if known is not None:
            return known
        given = self.access.trust_email_header and request.headers.get(self.access.trust_email_header, "").strip()
        return GitIdentity(name, given or f"{name}@console.invalid")

    def _session(self, request: web.Request) -> Session | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        user = self._proxied_user(request)
        if user is None:
            return self.access.sessions.get(cookie)
        key, session = self.access.sessions.for_proxied(user, cookie)
        if key != cookie:
            request[_NEW_SESSION] = key  # the answer sets the cookie (see _session_cookie)
        return session

    # --- pages -----------------------------------------------------------------------------------------------

    async def login_page(self, request: web.Request) -> web.Response:
        return render("login.html", error="")

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        user = self.access.tokens.user(str(form.get("token", "")))
        if user is None:
            return render("login.html", status=401, error="That token is not known.")
        key, _ = self.access.sessions.start(user)
        redirect = web.HTTPSeeOther("/allowlists")
        _set_cookie(redirect, key)
        raise redirect

    async def logout(self, request: web.Request) -> web.StreamResponse:
        self.access.sessions.end(request.cookies.get(SESSION_COOKIE))
        redirect = web.HTTPSeeOther("/login")
        redirect.del_cookie(SESSION_COOKIE)
        raise redirect

    def _page_user(self, request: web.Request) -> Session:
        session = self._session(request)
        if session is None:
            if self.access.public_read:
                return READER
            raise web.HTTPSeeOther("/login")
        return session

    async def allow_lists_page(self, request: web.Request) -> web.Response:
        session = self._page_user(request)
        query = request.query.get("q", "").strip().lower()
        lists = await self.console.allow_lists()
        shown = []
        for found in lists:
            entries = [entry_json(e) for e in found.entries]
            if query:
                entries = [e for e in entries if query in f"{found.name} {e['destination']} {e['comment']}".lower()]
            shown.append({"name": found.name, "file": found.file, "entries": entries})
        return render("allowlists.html", session=session, lists=shown, query=query, page="allowlists")

    async def _checked_form(self, request: web.Request) -> tuple[Session, Any]:
        session = self._session(request)
        if session is None:
            raise web.HTTPUnauthorized(text="log in first: no edit without a user")
        form = await request.post()
        if not secrets_equal(str(form.get("csrf", "")), session.csrf):
            raise web.HTTPForbidden(text="the form's CSRF token is missing or wrong: reload the page")
        return session, form

    async def edit_page(self, request: web.Request) -> web.Response:
        """Every page form: first a preview (the diff, nothing committed), then, confirmed, the commit."""
        session, form = await self._checked_form(request)
        section, name, operation = (request.match_info[k] for k in ("section", "name", "operation"))
        values = {k: str(v) for k, v in form.items() if k not in ("csrf", "action")}
        try:
            edit = page_edit(section, name, operation, form)
            if form.get("action") == "commit":
                outcome = await self.console.commit(edit, session.user)
                return render("done.html", session=session, outcome=outcome, page=section)
            preview = await self.console.preview(edit)
        except RefusedEditError as exc:
            problems = [problem_json(p) for p in exc.problems]
            return render("refused.html", status=422, session=session, problems=problems, page=section)
        except EditError as exc:
            problems = [{"file": "", "line": 0, "column": 0, "path": "", "message": str(exc)}]
            return render("refused.html", status=exc.status, session=session, problems=problems, page=section)
        return render(
            "preview.html",
            session=session,
            action=f"/{section}/{name}/{operation}",
            values=values,
            preview=preview,
            page=section,
        )

    async def pools_page(self, request: web.Request) -> web.Response:
        session = self._page_user(request)
        nodes = await read_nodes(self.console, self.status_branch, self.stale_after)
        pools = []
        for pool, file in await self.console.resources(IPPool):
            seen = _observed(nodes, IPPool.KIND, pool.metadata.name)
            members: dict[str, dict[str, Any]] = {}
            for node, observations in seen.items():
                for member in observations.get("members", []):
                    shown = members.setdefault(member["ip"], {"ip": member["ip"], "port": member["port"], "nodes": {}})
                    shown["nodes"][node] = member
            banned = [str(a) for a in pool.spec.banned]
            pools.append({"name": pool.metadata.name, "file": file, "banned": banned, "members": members})
        return render("pools.html", session=session, pools=pools, page="pools")

    async def edges_page(self, request: web.Request) -> web.Response:
        session = self._page_user(request)
        nodes = await read_nodes(self.console, self.status_branch, self.stale_after)
        networks = []
        for network, file in await self.console.resources(EdgeNetwork):
            seen = _observed(nodes, EdgeNetwork.KIND, network.metadata.name)
            edges = []
            for edge in network.spec.edge_list:
                live: dict[str, Any] = {
                    node: next((e for e in observations.get("edges", []) if e.get("host") == edge.host), {})
                    for node, observations in seen.items()
                }
                edges.append({"host": edge.host, "mode": edge.mode, "comment": edge.comment, "nodes": live})
            networks.append({"name": network.metadata.name, "file": file, "edges": edges, "modes": EDGE_MODES})
        return render("edges.html", session=session, networks=networks, page="edges")

    async def nodes_page(self, request: web.Request) -> web.Response:
        session = self._page_user(request)
        nodes = await read_nodes(self.console, self.status_branch, self.stale_after)
        return render("nodes.html", session=session, nodes=nodes, page="nodes")

    # --- JSON API --------------------------------------------------------------------------------------------

    def _require(self, request: web.Request) -> GitIdentity:
        user = self.api_user(request)
        if user is None:
            raise web.HTTPUnauthorized(
                text=json.dumps({"error": self.refusal(request, "a bearer token is needed")}),
                content_type=JSON,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return user

    def require_reader(self, request: web.Request) -> None:
        if not self.reader(request):
            needed = "a bearer token is needed to read (or run the console with --public-read)"
            raise web.HTTPUnauthorized(
                text=json.dumps({"error": self.refusal(request, needed)}),
                content_type=JSON,
                headers={"WWW-Authenticate": "Bearer"},
            )

    async def api_lists(self, request: web.Request) -> web.Response:
        self.require_reader(request)
        lists = await self.console.allow_lists()
        return web.json_response(
            [{"name": a.name, "file": a.file, "entries": [entry_json(e) for e in a.entries]} for a in lists]
        )

    async def api_add(self, request: web.Request) -> web.Response:
        user = self._require(request)
        if request.content_type != JSON:  # a form or text/plain post is what a page elsewhere can send unasked
            return web.json_response({"error": f"send the entry as {JSON}"}, status=415)
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "the body is not JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "the body must be an object"}, status=400)
        return await self._api_edit(self.console.add(request.match_info["name"], _entry(body), user), 201)

    async def api_remove(self, request: web.Request) -> web.Response:
        user = self._require(request)
        name, destination = request.match_info["name"], request.match_info["destination"]
        return await self._api_edit(self.console.remove(name, destination, user), 200)

    async def _api_edit(self, edit: Awaitable[Outcome], status: int) -> web.Response:
        try:
            outcome = await edit
        except RefusedEditError as exc:
            return web.json_response({"errors": [problem_json(p) for p in exc.problems]}, status=422)
        except EditError as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
        return web.json_response(_outcome_json(outcome), status=status)

    async def api_nodes(self, request: web.Request) -> web.Response:
        self.require_reader(request)
        return web.json_response(await read_nodes(self.console, self.status_branch, self.stale_after))

    async def home(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPSeeOther("/allowlists")

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def application(self) -> web.Application:
        app = web.Application(middlewares=[_errors, _session_cookie])
        app.add_routes(
            [
                web.get("/", self.home),
                web.get("/healthz", self.healthz),
                web.get("/login", self.login_page),
                web.post("/login", self.login),
                web.post("/logout", self.logout),
                web.get("/allowlists", self.allow_lists_page),
                web.post(
                    "/{section:allowlists|pools|edges}/{name}/{operation:add|remove|ban|release|mode}", self.edit_page
                ),
                web.get("/pools", self.pools_page),
                web.get("/edges", self.edges_page),
                web.get("/nodes", self.nodes_page),
                web.get("/api/v1/allowlists", self.api_lists),
                web.post("/api/v1/allowlists/{name}/entries", self.api_add),
                web.delete("/api/v1/allowlists/{name}/entries/{destination:.+}", self.api_remove),
                web.get("/api/v1/nodes", self.api_nodes),
            ]
        )
        if self.legacy_list is not None:
            app.add_routes(legacy_routes(self, self.legacy_list))
        return app


def secrets_equal(given: str, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given, expected)


def _set_cookie(response: web.StreamResponse, key: str) -> None:
    response.set_cookie(SESSION_COOKIE, key, httponly=True, samesite="Strict", path="/")


@web.middleware
async def _session_cookie(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A session started for a trusted proxy's user is named in a cookie, so the forms' CSRF token is theirs."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if _NEW_SESSION in request:
            _set_cookie(exc, request[_NEW_SESSION])
        raise
    if _NEW_SESSION in request:
        _set_cookie(response, request[_NEW_SESSION])
    return response


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Git and file errors answer 502 with what went wrong, in the operator's words; nothing crashes the console."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except EditError as exc:
        return web.json_response({"error": str(exc)}, status=exc.status)
    except ReconcilerError as exc:
        log.warning("console request failed path=%s error=%s", request.path, exc)
        return web.json_response({"error": str(exc)}, status=502)
