"""The dashboard in a real headless Chromium (Debian's `chromium`, driven by Playwright) against
tests/fake_api.py: a STAND-IN for relayq-server, until the server lands, that implements the
routes of web/README.md over the real Queue API and a real Redis, and sends the strict
Content-Security-Policy. Any console error (a CSP violation, a failed module, an exception)
fails the test. Screenshots go to test-artifacts/ (git-ignored)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import relayq

from .conftest import wait_until
from .fake_api import FakeApi

playwright_sync = pytest.importorskip("playwright.sync_api")  # in the test extra; see .ci/run
expect = playwright_sync.expect

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
KEY = "test-key"


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
def fake(redis_url: str) -> Iterator[FakeApi]:
    api = FakeApi(redis_url, key=KEY).start()
    yield api
    api.stop()


class Page:
    """A browser page on the fake API that records every console error."""

    def __init__(self, browser: Any, base_url: str) -> None:
        self.context = browser.new_context(base_url=base_url, viewport={"width": 1280,
                                                                        "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)
        self.page.set_default_timeout(10_000)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.accept()

    def sign_in(self, key: str = KEY, hash_route: str = "") -> None:
        self.page.goto("/" + hash_route)
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_role("button", name="Sign in").click()

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def unexpected_errors(self) -> list[str]:
        """Console errors, less failed requests for a refused key (401: the sign-in flow) and
        the optional session route (404: query-parameter mode)."""
        return [e for e in self.errors if not re.search(r"status of (401|404)", e)]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser: Any, fake: FakeApi) -> Iterator[Page]:
    p = Page(browser, fake.url)
    yield p
    p.close()
    assert not p.unexpected_errors()


def depth_cell(page: Page, queue: str, state: str) -> Any:
    return page.page.locator(f'tr[data-queue="{queue}"] td[data-state="{state}"]')


def test_sign_in_then_the_queue_list_updates_live(page: Page, fake: FakeApi, r: Any,
                                                  queue_name: str) -> None:
    q = relayq.Queue(queue_name, r)
    q.enqueue_many([{"n": i} for i in range(3)])
    page.page.goto("/")
    expect(page.page.locator("#login-message")).to_have_text("Sign in with an API key.")
    page.sign_in("wrong-key")
    expect(page.page.locator("#login-message")).to_have_text("That API key was refused.")
    page.page.get_by_label("API key").fill(KEY)
    page.page.get_by_role("button", name="Sign in").click()
    expect(depth_cell(page, queue_name, "ready")).to_have_text("3")
    expect(page.page.locator("#live-status")).to_have_text("live")
    # Live: a change in Redis reaches the page through the event stream, with no reload.
    q.enqueue_many([{"n": i} for i in range(4)])
    jobs = q.claim(2)
    expect(depth_cell(page, queue_name, "ready")).to_have_text("5")
    expect(depth_cell(page, queue_name, "running")).to_have_text("2")
    q.ack(jobs[0].id, jobs[0].lease)
    expect(depth_cell(page, queue_name, "succeeded")).to_have_text("1")
    # The throughput chart has drawn the completion (its label carries the latest rates).
    expect(page.page.locator("canvas.chart")).to_have_attribute(
        "aria-label", re.compile(r"succeeded \d+\.\d\d/s"))
    assert page.page.evaluate("localStorage.getItem('relayq.apiKey')") == KEY
    # The key went in ?access_token= (no session route on this server), never elsewhere.
    assert fake.event_requests[-1] == {"query": {"access_token": KEY}, "cookie": False}
    page.screenshot("queues")


def test_queue_page_pause_rate_limit_and_enqueue(page: Page, r: Any, queue_name: str) -> None:
    q = relayq.Queue(queue_name, r)
    q.enqueue({"first": True})
    page.sign_in(hash_route=f"#/queues/{queue_name}")
    p = page.page
    expect(p.get_by_role("heading", name=queue_name, level=1)).to_be_visible()
    p.get_by_role("button", name="Pause").click()
    wait_until(lambda: q.stats().paused, message="queue paused")
    expect(p.get_by_role("button", name="Resume")).to_be_visible()
    p.get_by_role("button", name="Resume").click()
    wait_until(lambda: not q.stats().paused, message="queue resumed")

    p.get_by_label("Rate (jobs per second)").fill("2.5")
    p.get_by_label("Burst").fill("4")
    p.get_by_role("button", name="Set", exact=True).click()
    wait_until(lambda: q.stats().rate_limit == {"rate": 2.5, "burst": 4}, message="rate limit")
    expect(p.locator(".limit")).to_have_text("2.5 jobs/s, burst 4")
    p.get_by_role("button", name="Clear").click()
    wait_until(lambda: q.stats().rate_limit is None, message="rate limit cleared")
    expect(p.locator(".limit")).to_have_text("none")

    p.get_by_label("Payload (JSON)").fill('{"to": "ada@example.com"}')
    p.get_by_label("Type").fill("email")
    p.get_by_label("Priority").fill("7")
    p.get_by_role("button", name="Enqueue").click()
    link = p.locator(".form-result a")
    expect(link).to_have_text(re.compile(rf"^{queue_name}\.\d+$"))
    job = q.get(link.inner_text())
    assert (job.payload, job.type, job.priority) == ({"to": "ada@example.com"}, "email", 7)
    expect(p.locator('.card[data-state="ready"] .value')).to_have_text("2")
    p.get_by_label("Payload (JSON)").fill("{not json")
    p.get_by_role("button", name="Enqueue").click()
    expect(p.locator(".form-result")).to_contain_text("Payload is not JSON")
    assert q.stats().ready == 2
    page.screenshot("queue")


def kill(q: relayq.Queue[Any], payload: Any, error: str) -> str:
    """Makes one dead job (whatever else is ready goes back untouched)."""
    job_id = q.enqueue(payload, max_attempts=1).id
    claimed = q.claim(100)
    others = [(job.id, job.lease) for job in claimed if job.id != job_id]
    if others:
        q.release_many(others)
    (job,) = [job for job in claimed if job.id == job_id]
    q.nack(job.id, job.lease, error)
    return job_id


def test_dead_letter_queue_inspect_requeue_purge(page: Page, r: Any, queue_name: str) -> None:
    q = relayq.Queue(queue_name, r)
    ids = [kill(q, {"n": i}, f"boom {i}") for i in range(4)]
    page.sign_in(hash_route=f"#/queues/{queue_name}")
    p = page.page
    rows = p.locator("table.dead tbody tr")
    expect(rows).to_have_count(4)
    expect(p.locator(f'tr[data-job="{ids[2]}"] .error-text')).to_have_text("boom 2")

    p.locator(f'tr[data-job="{ids[0]}"]').get_by_role("button", name="Requeue").click()
    expect(rows).to_have_count(3)
    assert q.get(ids[0]).state == "ready" and q.get(ids[0]).attempts == 0
    p.locator(f'tr[data-job="{ids[1]}"]').get_by_role("button", name="Purge").click()
    expect(rows).to_have_count(2)
    assert page.dialogs == [f"Delete dead job {ids[1]} for good?"]
    with pytest.raises(relayq.JobNotFound):
        q.get(ids[1])

    # A job that dies elsewhere shows up by itself (through its `job` event).
    ids.append(kill(q, {"n": 4}, "boom 4"))
    expect(rows).to_have_count(3)
    p.get_by_role("button", name="Requeue all").click()
    expect(p.locator("table.dead")).to_be_hidden()
    assert q.stats().dead == 0 and {q.get(i).state for i in ids[2:]} == {"ready"}

    for job in q.claim(10):
        q.nack(job.id, job.lease, "again", retry=False)
    expect(rows).to_have_count(4)
    p.get_by_role("button", name="Purge all").click()
    expect(p.get_by_text("No dead jobs.")).to_be_visible()
    assert q.stats().dead == 0


def test_job_lookup_shows_fields_escaped_and_follows_state(page: Page, r: Any,
                                                           queue_name: str) -> None:
    q = relayq.Queue(queue_name, r)
    hostile = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    job_id = q.enqueue({"html": hostile}, type="<b>bold</b>", idempotency_key="k-1").id
    page.sign_in(hash_route=f"#/jobs/{job_id}")
    p = page.page
    expect(p.locator('pre[data-field="payload"]')).to_contain_text(hostile)
    expect(p.locator(".fields")).to_contain_text("<b>bold</b>")
    assert p.locator(".job-details img, .job-details script, .job-details b").count() == 0
    expect(p.locator('time[data-field="created_at"]')).to_have_text(
        re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$"))
    expect(p.locator('time[data-field="finished_at"]')).to_have_text("—")

    # The page follows the job through the `job` events (once its stream is connected).
    expect(p.locator("#live-status")).to_have_text("live")
    (claimed,) = q.claim(1)
    expect(p.locator(".job-details .badge")).to_have_text("running")
    q.nack(claimed.id, claimed.lease, "handler said <no>", retry=False)
    expect(p.locator(".job-details .badge")).to_have_text("dead")
    expect(p.locator('pre[data-field="last_error"]')).to_have_text("handler said <no>")
    p.get_by_role("button", name="Requeue").click()
    expect(p.locator(".job-details .badge")).to_have_text("ready")
    p.get_by_role("button", name="Cancel").click()
    expect(p.locator(".job-details .badge")).to_have_text("cancelled")
    assert q.get(job_id).state == "cancelled"
    assert page.dialogs == [f"Cancel job {job_id}?"]  # and never an alert() from the payload
    page.screenshot("job")

    p.get_by_label("Job id").fill(f"{queue_name}.999")
    p.get_by_role("button", name="Find").click()
    expect(p.locator(".job-details")).to_contain_text(f"No job {queue_name}.999")


def test_event_stream_reconnects_after_the_server_drops_it(page: Page, fake: FakeApi, r: Any,
                                                           queue_name: str) -> None:
    q = relayq.Queue(queue_name, r)
    q.enqueue({})
    page.sign_in()
    expect(depth_cell(page, queue_name, "ready")).to_have_text("1")
    streams = len(fake.event_requests)
    fake.drop_streams()
    wait_until(lambda: len(fake.event_requests) > streams, message="the dashboard to reconnect")
    q.enqueue({})
    expect(depth_cell(page, queue_name, "ready")).to_have_text("2")
    expect(page.page.locator("#live-status")).to_have_text("live")


def test_session_cookie_keeps_the_key_out_of_the_stream_url(browser: Any, redis_url: str,
                                                            r: Any, queue_name: str) -> None:
    fake = FakeApi(redis_url, key=KEY, sessions=True).start()
    page = Page(browser, fake.url)
    try:
        relayq.Queue(queue_name, r).enqueue({})
        page.sign_in()
        expect(depth_cell(page, queue_name, "ready")).to_have_text("1")
        expect(page.page.locator("#live-status")).to_have_text("live")
        assert fake.event_requests[-1] == {"query": {}, "cookie": True}
        page.page.get_by_role("button", name="Sign out").click()
        expect(page.page.get_by_label("API key")).to_be_visible()
        assert page.page.evaluate("localStorage.getItem('relayq.apiKey')") is None
        assert not page.unexpected_errors()
    finally:
        page.close()
        fake.stop()


def test_no_key_and_auth_off_needs_no_sign_in(browser: Any, redis_url: str, r: Any,
                                              queue_name: str) -> None:
    """A server started with --auth off answers without a key: no login form."""
    fake = FakeApi(redis_url, key=KEY).start()
    fake._authorized = lambda: True  # type: ignore[method-assign]
    page = Page(browser, fake.url)
    try:
        relayq.Queue(queue_name, r).enqueue({})
        page.page.goto("/")
        expect(depth_cell(page, queue_name, "ready")).to_have_text("1")
        expect(page.page.locator("#login")).to_be_hidden()
        expect(page.page.get_by_role("button", name="Sign out")).to_be_hidden()
        assert not page.unexpected_errors()
    finally:
        page.close()
        fake.stop()
