"""What the browser tests of the dashboard share: a private redis-server and relayq-server per
module, one headless Chromium per module (Debian's `chromium`, driven by Playwright), real
`relayq-worker` processes, and `Page`, a browser page that records console errors and dialogs.
A test module takes the fixtures by name: `redis_url = shared.redis_url` and so on."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import relayq
from relayq.api.security import SESSION_COOKIE
from relayq.auth import ADMIN, KeyStore
from relayq.tools.redis_process import RedisProcess
from relayq.tools.server_process import ServerProcess
from tests.support.helpers import worker_process

playwright_sync = pytest.importorskip("playwright.sync_api")  # in the test extra; see .ci/run

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
DESKTOP = (1280, 900)
PHONE = (390, 844)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """The module's own Redis (overrides the session's), so that the dashboard lists only the
    queues of its tests."""
    with RedisProcess() as redis_server:
        yield redis_server.url


@pytest.fixture(scope="module")
def admin_key(redis_url: str) -> str:
    client = relayq.connect(redis_url)
    try:
        return KeyStore(client).create("dashboard-tests", [ADMIN])[1]
    finally:
        client.close()


@pytest.fixture(scope="module")
def server(redis_url: str, admin_key: str) -> Iterator[ServerProcess]:
    with ServerProcess(redis_url, cwd=ROOT) as process:
        yield process


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert Path(CHROMIUM).exists(), "chromium is not installed: apt-get install chromium"
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking"])
        yield browser
        browser.close()


@pytest.fixture
def client(server: ServerProcess, admin_key: str) -> Iterator[relayq.Client]:
    with relayq.Client(server.url, admin_key) as c:
        yield c


@pytest.fixture
def worker(redis_url: str, queue_name: str, tmp_path: Path) -> Iterator[Any]:
    """A real worker on the test's queue: the demo handler, failing only when asked to."""
    with worker_process(redis_url, queue_name, "--demo-fail-rate", "0", "--concurrency", "4",
                        "--prefetch", "0", log=tmp_path / "worker.log") as process:
        yield process


class Page:
    """A browser page on one server that records every console error and dialog."""

    def __init__(self, browser: Any, base_url: str, key: str = "",
                 viewport: tuple[int, int] = DESKTOP) -> None:
        self.key = key
        self.context = browser.new_context(
            base_url=base_url, viewport={"width": viewport[0], "height": viewport[1]},
            timezone_id="America/New_York")  # not UTC: the page must show UTC by itself
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)
        self.page.set_default_timeout(15_000)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.accept()

    def sign_in(self, key: str | None = None, hash_route: str = "") -> None:
        self.page.goto("/" + hash_route)
        self.page.get_by_label("API key").fill(key or self.key)
        self.page.get_by_role("button", name="Sign in").click()

    def session_cookie(self, path: str = "/api/events") -> dict[str, Any] | None:
        """The session cookie the browser keeps for `path` (the stream's, or /api/session's)."""
        cookies = [c for c in self.context.cookies()
                   if c["name"] == SESSION_COOKIE and c["path"] == path]
        return cookies[0] if cookies else None

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def unexpected_errors(self, also_expected: str = "") -> list[str]:
        """Console errors, less failed requests that the sign-in flow and the job lookup make
        on purpose (401 for a refused key, 404 for no such job), and `also_expected`."""
        expected = r"status of (401|404)" + (f"|{also_expected}" if also_expected else "")
        return [e for e in self.errors if not re.search(expected, e)]

    def page_scrolls_sideways(self) -> bool:
        """Whether the page itself is wider than the window (a table scrolling inside its own
        box does not count)."""
        return bool(self.page.evaluate(
            "document.documentElement.scrollWidth > document.documentElement.clientWidth"))

    def close(self) -> None:
        self.context.close()



def depth_cell(page: Page, queue: str, state: str) -> Any:
    return page.page.locator(f'tr[data-queue="{queue}"] td[data-state="{state}"]')




@pytest.fixture
def page(browser: Any, server: ServerProcess, admin_key: str) -> Iterator[Page]:
    p = Page(browser, server.url, admin_key)
    yield p
    p.close()
    errors = p.unexpected_errors()
    assert not errors, errors
