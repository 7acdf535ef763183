"""The console in a real browser (headless Chromium through Selenium), as a person uses it: log in with a token,
add an entry with the form, read the diff, commit, see the entry and the commit; a protected entry has no remove
button; the nodes page shows two real agents' status from the status branch they publish to. With
RECONCILER_SCREENSHOTS=DIR set, each page is saved there (the README's screenshots come from this test)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.selenium_manager import SeleniumManager
from selenium.webdriver.remote.webdriver import WebDriver

from reconciler.console.auth import hash_token
from tests.conftest import EXAMPLE, require_tools
from tests.integration.agents import AgentProcess, Remote, free_port, git, wait_for
from tests.integration.test_console import EDGE_STATUS, POOL_STATUS, publish_status

pytestmark = pytest.mark.integration

TOKEN = "browser-token"
FILES = {  # the whole example: the agents below (edge-a, edge-b) are selected by its allow-lists only
    f"desired-state/{p.relative_to(EXAMPLE).as_posix()}": p.read_text()
    for p in EXAMPLE.rglob("*")
    if p.is_file() and p.suffix in (".yaml", ".conf", ".zone")
}


class World:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.remote = Remote(root)
        self.revision = self.remote.commit(FILES)
        self.agents = [
            AgentProcess(
                self.remote,
                root / f"state-{node}",
                node=node,
                args=("--path", "desired-state", "--status-interval", "1s"),
            )
            for node in ("edge-a", "edge-b")
        ]
        self.port = free_port()
        self.console: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # what a pool node and a DNS node would have published; the agents add their own folders beside them
        publish_status(self.remote, self.root, {**POOL_STATUS, **EDGE_STATUS})
        for agent in self.agents:
            agent.start()
        for node in ("edge-a", "edge-b"):
            wait_for(
                lambda node=node: self.remote.status_file(f"status/{node}/agent.yaml"),  # type: ignore[misc]
                timeout=30,
                what=f"{node}'s status on the status branch",
            )
        tokens = self.root / "tokens"
        tokens.write_text(f"sha256:{hash_token(TOKEN)} carol carol@example.org\n")
        command = [
            *(sys.executable, "-m", "reconciler", "console", "--repo", self.remote.url, "--path", "desired-state"),
            *("--mode", "push", "--tokens", str(tokens), "--listen", f"127.0.0.1:{self.port}"),
            *("--state-dir", str(self.root / "console")),
        ]
        with (self.root / "console.log").open("ab") as log:
            self.console = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._answers, timeout=20, what="the console")

    def _answers(self) -> bool:
        assert self.console is not None
        if self.console.poll() is not None:
            raise AssertionError((self.root / "console.log").read_text()[-2000:])
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.console is not None:
            self.console.terminate()
            self.console.wait(timeout=15)
        for agent in self.agents:
            agent.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    require_tools("chromium", "chromedriver")
    built = World(tmp_path_factory.mktemp("console-browser"))
    try:
        built.start()
        yield built
    finally:
        built.stop()


def _no_selenium_manager(*args: object, **kwargs: object) -> dict[str, str]:
    """Selenium Manager downloads drivers from the internet: a test never starts it."""
    raise AssertionError("Selenium Manager was about to run: give Selenium the Debian chromedriver and chromium")


@pytest.fixture(scope="module")
def browser(world: World) -> Iterator[WebDriver]:
    driver_path, browser_path = shutil.which("chromedriver"), shutil.which("chromium")
    assert driver_path is not None  # require_tools failed otherwise
    assert browser_path is not None
    patch = pytest.MonkeyPatch()
    patch.setattr(SeleniumManager, "binary_paths", _no_selenium_manager)
    options = Options()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,1000")
    options.binary_location = browser_path
    try:
        driver = webdriver.Chrome(options=options, service=Service(driver_path))
        driver.implicitly_wait(5)
        try:
            yield driver
        finally:
            driver.quit()
    finally:
        patch.undo()


def _shot(driver: WebDriver, name: str) -> None:
    folder = os.environ.get("RECONCILER_SCREENSHOTS")
    if folder:
        driver.save_screenshot(str(Path(folder) / f"console-{name}.png"))


def _login(browser: WebDriver, base: str) -> None:
    """A fresh session: no cookie, the login page, the token, and the allow-lists page it leads to."""
    browser.get(f"{base}/healthz")
    browser.delete_all_cookies()
    browser.get(f"{base}/allowlists")
    assert browser.current_url.endswith("/login")  # no session: the login page
    _shot(browser, "login")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "login").click()
    browser.find_element(By.ID, "search")  # waits for the page after the login
    assert browser.current_url.endswith("/allowlists")


def test_log_in_add_an_entry_with_the_form_and_see_the_commit(world: World, browser: WebDriver) -> None:
    base = f"http://127.0.0.1:{world.port}"
    _login(browser, base)
    protected = browser.find_element(By.CSS_SELECTOR, 'tr[data-destination="api.partner.example"]')
    assert "protected" in protected.text
    assert not protected.find_elements(By.CSS_SELECTOR, "button.remove")
    plain = browser.find_element(By.CSS_SELECTOR, 'tr[data-destination="203.0.113.7"]')
    assert plain.find_elements(By.CSS_SELECTOR, "button.remove")
    _shot(browser, "allowlists")

    form = browser.find_element(By.CSS_SELECTOR, "#list-partners form.add-form")
    form.find_element(By.CSS_SELECTOR, 'select[name="kind"] option[value="ip"]').click()
    form.find_element(By.NAME, "destination").send_keys("203.0.113.88")
    form.find_element(By.NAME, "ports").send_keys("443")
    form.find_element(By.NAME, "comment").send_keys("added in the browser")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    diff = browser.find_element(By.ID, "diff").text
    assert "+    - ip: 203.0.113.88" in diff
    assert "+      comment: added in the browser" in diff
    _shot(browser, "preview")
    before = git(world.remote.bare, "rev-parse", "main")
    browser.find_element(By.ID, "commit").click()
    commit = browser.find_element(By.ID, "commit-id").text
    assert commit == git(world.remote.bare, "rev-parse", "main") != before
    assert git(world.remote.bare, "log", "-1", "--format=%an", "main") == "carol"
    _shot(browser, "committed")
    browser.get(f"{base}/allowlists?q=browser")
    rows = browser.find_elements(By.CSS_SELECTOR, "#list-partners tr.entry")
    assert [row.get_attribute("data-destination") for row in rows] == ["203.0.113.88"]


def test_the_nodes_page_shows_both_agents(world: World, browser: WebDriver) -> None:
    _login(browser, f"http://127.0.0.1:{world.port}")
    browser.get(f"http://127.0.0.1:{world.port}/nodes")
    for node in ("edge-a", "edge-b"):
        section = browser.find_element(By.ID, f"node-{node}")
        assert world.revision[:12] in section.text
        assert "Ready=True" in section.text
        assert "EgressAllowList/partners" in section.text
        assert "stale" not in section.text
    _shot(browser, "nodes")


def test_a_ban_and_an_edge_mode_from_their_pages(world: World, browser: WebDriver) -> None:
    base = f"http://127.0.0.1:{world.port}"
    _login(browser, base)
    browser.get(f"{base}/pools")
    member = browser.find_element(By.CSS_SELECTOR, 'tr.member[data-ip="203.0.113.11"]')
    assert "unavailable (3 failures in a row)" in member.text
    _shot(browser, "pools")
    member.find_element(By.CSS_SELECTOR, "button.ban").click()
    assert "+  banned: [203.0.113.9, 203.0.113.11]" in browser.find_element(By.ID, "diff").text
    browser.find_element(By.ID, "commit").click()
    assert browser.find_element(By.ID, "commit-id").text == git(world.remote.bare, "rev-parse", "main")

    browser.get(f"{base}/edges")
    row = browser.find_element(By.CSS_SELECTOR, 'tr.edge[data-host="edge1.example.net"]')
    assert "dns-1: live, pass_threshold" in row.text
    _shot(browser, "edges")
    row.find_element(By.CSS_SELECTOR, 'select[name="mode"] option[value="force"]').click()
    comment = row.find_element(By.NAME, "comment")
    comment.clear()
    comment.send_keys("keep during the migration")
    row.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert 'mode: force, comment: "keep during the migration"' in browser.find_element(By.ID, "diff").text
    browser.find_element(By.ID, "commit").click()
    committed = browser.find_element(By.ID, "commit-id").text  # waits for the page that says it is done
    assert committed == git(world.remote.bare, "rev-parse", "main")
    assert git(world.remote.bare, "log", "-1", "--format=%s", "main").startswith("edge1.example.net force")


class HeaderProxy:
    """A reverse proxy that has authenticated "frank": every request is passed to the console with
    X-Forwarded-User (as nginx's auth_request or oauth2-proxy would), cookies and redirects both ways."""

    def __init__(self, upstream: int) -> None:
        self.upstream, self.port = upstream, free_port()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        self.client = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())

        async def forward(request: web.Request) -> web.Response:
            headers = {k: v for k, v in request.headers.items() if k.lower() in ("cookie", "content-type")}
            async with self.client.request(
                request.method,
                f"http://127.0.0.1:{self.upstream}{request.path_qs}",
                data=await request.read(),
                headers={**headers, "X-Forwarded-User": "frank"},
                allow_redirects=False,
            ) as answer:
                passed = {k: v for k, v in answer.headers.items() if k.lower() in ("location", "set-cookie")}
                return web.Response(
                    status=answer.status, body=await answer.read(), headers=passed, content_type=answer.content_type
                )

        app = web.Application()
        app.router.add_route("*", "/{path:.*}", forward)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        async def down() -> None:
            await self.runner.cleanup()
            await self.client.close()

        asyncio.run_coroutine_threadsafe(down(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def test_a_trusted_proxy_user_edits_from_the_page(world: World, browser: WebDriver) -> None:
    """Behind a proxy that names the user: no login page, the form's CSRF token is the user's session's (bound to
    them with a cookie), and the edit is committed as them."""
    port = free_port()
    command = [
        *(sys.executable, "-m", "reconciler", "console", "--repo", world.remote.url, "--path", "desired-state"),
        *("--mode", "push", "--listen", f"127.0.0.1:{port}", "--state-dir", str(world.root / "console-proxied")),
        *("--trust-header", "X-Forwarded-User", "--trusted-proxy", "127.0.0.1"),
    ]
    with (world.root / "console-proxied.log").open("ab") as log:
        console = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    proxy = None
    try:
        wait_for(lambda: _healthy(port), timeout=20, what="the proxied console")
        proxy = HeaderProxy(port)
        base = f"http://127.0.0.1:{proxy.port}"
        browser.get(f"{base}/healthz")
        browser.delete_all_cookies()
        browser.get(f"{base}/allowlists")
        assert browser.current_url.endswith("/allowlists")  # no login page: the proxy said who
        assert "frank" in browser.find_element(By.CSS_SELECTOR, "span.user").text
        form = browser.find_element(By.CSS_SELECTOR, "#list-partners form.add-form")
        form.find_element(By.CSS_SELECTOR, 'select[name="kind"] option[value="ip"]').click()
        form.find_element(By.NAME, "destination").send_keys("203.0.113.99")
        form.find_element(By.NAME, "comment").send_keys("through the proxy")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        assert "+    - ip: 203.0.113.99" in browser.find_element(By.ID, "diff").text
        before = git(world.remote.bare, "rev-parse", "main")
        browser.find_element(By.ID, "commit").click()
        commit = browser.find_element(By.ID, "commit-id").text
        assert commit == git(world.remote.bare, "rev-parse", "main") != before
        assert git(world.remote.bare, "log", "-1", "--format=%an <%ae>", "main") == "frank <frank@console.invalid>"
    finally:
        if proxy is not None:
            proxy.stop()
        console.terminate()
        console.wait(timeout=15)


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False
