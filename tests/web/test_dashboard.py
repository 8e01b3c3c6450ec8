"""The dashboard in a real headless Chromium (Debian's `chromium`, driven by Playwright) against
a real `relayq-server` process with auth on, on a Redis of this module's own, and real
`relayq-worker` processes wherever jobs must run: signing in and out, live updates, the queue
page's controls, escaping. Any console error (a CSP violation, a failed module, an exception)
fails the test. Screenshots go to test-artifacts/ (git-ignored). The views of issue 19 (jobs per
state, workers, history, errors, phone) are in test_dashboard_ops.py."""

from __future__ import annotations

import re
from typing import Any

import pytest

import relayq
from relayq import tracing
from relayq.api.dashboard import CSP
from relayq.api.events import KEY_CHECK_S
from relayq.auth import KeyStore
from relayq.tools.server_process import ServerProcess
from tests.support.helpers import wait_until
from tests.web import browser as shared
from tests.web.browser import ROOT, Page, depth_cell, playwright_sync

expect = playwright_sync.expect
WRONG_KEY = "rq_0123456789abcdef_" + "W" * 43


# The shared fixtures (tests/web/browser.py), taken by name.
redis_url, admin_key, server, browser, client, worker, page = (
    shared.redis_url, shared.admin_key, shared.server, shared.browser, shared.client,
    shared.worker, shared.page)


def test_sign_in_then_a_queue_appears_as_jobs_arrive_and_run(
        page: Page, server: ServerProcess, client: relayq.Client, worker: Any,
        queue_name: str, admin_key: str) -> None:
    p = page.page
    stream_urls: list[str] = []
    p.on("request", lambda request: "/api/events" in request.url
         and stream_urls.append(request.url))
    response = p.goto("/")
    assert response.headers["content-security-policy"] == CSP
    expect(p.locator("#login-message")).to_have_text("Sign in with an API key.")
    page.sign_in(WRONG_KEY)
    expect(p.locator("#login-message")).to_have_text("That API key was refused.")
    p.get_by_label("API key").fill(admin_key)
    p.get_by_role("button", name="Sign in").click()
    expect(p.locator("#live-status")).to_have_text("live")
    expect(p.locator(f'tr[data-queue="{queue_name}"]')).to_have_count(0)

    # Jobs arrive over HTTP; the queue shows up, and the worker's progress with it, live.
    client.enqueue_many(queue_name, [{"sleep_ms": 1500, "n": i} for i in range(8)])
    expect(p.locator(f'tr[data-queue="{queue_name}"]')).to_be_visible()
    expect(depth_cell(page, queue_name, "running")).to_have_text("4")
    expect(depth_cell(page, queue_name, "succeeded")).to_have_text("8")
    expect(depth_cell(page, queue_name, "ready")).to_have_text("0")
    expect(p.locator("canvas.chart")).to_have_attribute(
        "aria-label", re.compile(r"succeeded \d+\.\d\d/s"))
    assert p.evaluate("localStorage.getItem('relayq.apiKey')") == admin_key

    # The stream authenticated with the session cookie: the key is in no URL.
    assert stream_urls and set(stream_urls) == {f"{server.url}/api/events"}
    cookie = page.session_cookie()
    assert cookie is not None and admin_key not in cookie["value"]
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (
        True, "Strict", "/api/events")
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


def test_dead_jobs_show_up_live_and_are_requeued_and_purged_by_clicking(
        page: Page, client: relayq.Client, worker: Any, r: Any, queue_name: str) -> None:
    q = relayq.Queue(queue_name, r)
    ids = [client.enqueue(queue_name, {"fail": True, "n": i}, max_attempts=1).id
           for i in range(3)]
    page.sign_in(hash_route=f"#/queues/{queue_name}")
    p = page.page
    p.get_by_role("tab", name=re.compile("^Dead")).click()
    rows = p.locator('table.jobs[data-state="dead"] tbody tr')
    expect(rows).to_have_count(3)  # the worker failed each once: dead, and shown as they die
    expect(p.locator(f'tr[data-job="{ids[2]}"] summary')).to_contain_text(
        "failed on request")

    p.get_by_role("button", name="Pause").click()  # so that a requeued job waits, ready
    expect(p.get_by_role("button", name="Resume")).to_be_visible()
    p.locator(f'tr[data-job="{ids[0]}"]').get_by_role("button", name="Requeue").click()
    expect(rows).to_have_count(2)
    assert (q.get(ids[0]).state, q.get(ids[0]).attempts) == ("ready", 0)
    p.locator(f'tr[data-job="{ids[1]}"]').get_by_role("button", name="Purge").click()
    expect(rows).to_have_count(1)
    assert page.dialogs == [f"Delete dead job {ids[1]} for good?"]
    with pytest.raises(relayq.JobNotFound):
        q.get(ids[1])

    # Resumed, the worker runs the requeued job again; it dies again and comes back by itself.
    p.get_by_role("button", name="Resume").click()
    expect(rows).to_have_count(2)
    assert q.get(ids[0]).attempts == 1
    p.get_by_role("button", name="Purge all").click()
    expect(p.get_by_text("No dead jobs.")).to_be_visible()
    assert q.stats().dead == 0
    page.screenshot("dead")


def test_a_payload_full_of_html_is_shown_as_text_and_runs_nothing(page: Page, r: Any,
                                                                  queue_name: str) -> None:
    q = relayq.Queue(queue_name, r)
    hostile = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with tracing.incoming({"traceparent": traceparent}):  # passed on: no tracer provider here
        job_id = q.enqueue({"html": hostile}, type="<b>bold</b>", idempotency_key="k-1").id
    page.sign_in(hash_route=f"#/jobs/{job_id}")
    p = page.page
    expect(p.locator('pre[data-field="payload"]')).to_contain_text(hostile)
    expect(p.locator(".fields")).to_contain_text("<b>bold</b>")
    expect(p.locator(".fields")).to_contain_text(traceparent)
    assert p.locator(".job-details img, .job-details script, .job-details b").count() == 0
    expect(p.locator('time[data-field="created_at"]')).to_have_text(
        re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$"))
    expect(p.locator('time[data-field="finished_at"]')).to_have_text("—")

    # The page follows the job through the `job` events (once its stream is connected).
    expect(p.locator("#live-status")).to_have_text("live")
    (claimed,) = q.claim(1)
    expect(p.locator(".job-details .page-head .badge")).to_have_text("running")
    q.nack(claimed.id, claimed.lease, "handler said <no>", retry=False)
    expect(p.locator(".job-details .page-head .badge")).to_have_text("dead")
    expect(p.locator('[data-field="last_error"]')).to_have_text("handler said <no>")
    p.get_by_role("button", name="Requeue").click()
    expect(p.locator(".job-details .page-head .badge")).to_have_text("ready")
    p.get_by_role("button", name="Cancel").click()
    expect(p.locator(".job-details .page-head .badge")).to_have_text("cancelled")
    assert q.get(job_id).state == "cancelled"
    assert page.dialogs == [f"Cancel job {job_id}?"]  # and never an alert() from the payload
    page.screenshot("job")

    p.get_by_label("Job id").fill(f"{queue_name}.999")
    p.get_by_role("button", name="Find").click()
    expect(p.locator(".job-details")).to_contain_text(f"No job {queue_name}.999")


def test_live_updates_come_back_after_the_server_restarts(browser: Any, redis_url: str,
                                                         admin_key: str, r: Any,
                                                         queue_name: str) -> None:
    q = relayq.Queue(queue_name, r)
    first = ServerProcess(redis_url, cwd=ROOT).start()
    second = None
    page = Page(browser, first.url, admin_key)
    try:
        q.enqueue({})
        page.sign_in()
        status = page.page.locator("#live-status")
        expect(depth_cell(page, queue_name, "ready")).to_have_text("1")
        expect(status).to_have_text("live")
        first.stop()
        expect(status).to_have_text("reconnecting")
        second = ServerProcess(redis_url, cwd=ROOT, port=first.port).start()
        expect(status).to_have_text("live")
        q.enqueue({})
        expect(depth_cell(page, queue_name, "ready")).to_have_text("2")
        # While the server was down, the browser's own attempts were refused, and said so.
        assert not page.unexpected_errors(also_expected="ERR_CONNECTION_REFUSED")
    finally:
        page.close()
        first.stop()
        if second is not None:
            second.stop()


def test_a_revoked_key_ends_at_the_sign_in_form_and_sign_out_forgets_the_key(
        page: Page, r: Any, queue_name: str) -> None:
    store = KeyStore(r)
    record, key = store.create("revoked-in-test", ["jobs:read"])
    relayq.Queue(queue_name, r).enqueue({})
    page.sign_in(key)
    p = page.page
    expect(depth_cell(page, queue_name, "ready")).to_have_text("1")
    expect(p.locator("#live-status")).to_have_text("live")
    store.revoke(record.id)
    # The open stream looks its key up again, ends, and the dashboard, refused, signs out.
    expect(p.get_by_label("API key")).to_be_visible(timeout=(KEY_CHECK_S + 20) * 1000)

    page.sign_in()
    expect(p.locator("#live-status")).to_have_text("live")
    assert page.session_cookie() is not None
    p.get_by_role("button", name="Sign out").click()
    expect(p.get_by_label("API key")).to_be_visible()
    assert p.evaluate("localStorage.getItem('relayq.apiKey')") is None
    assert page.session_cookie() is None and page.session_cookie("/api/session") is None


def test_with_auth_off_no_sign_in_is_needed(browser: Any, redis_url: str, r: Any,
                                            queue_name: str) -> None:
    with ServerProcess(redis_url, "--auth", "off", cwd=ROOT) as server:
        page = Page(browser, server.url)
        try:
            relayq.Queue(queue_name, r).enqueue({})
            page.page.goto("/")
            expect(depth_cell(page, queue_name, "ready")).to_have_text("1")
            expect(page.page.locator("#live-status")).to_have_text("live")
            expect(page.page.locator("#login")).to_be_hidden()
            expect(page.page.get_by_role("button", name="Sign out")).to_be_hidden()
            assert not page.unexpected_errors()
        finally:
            page.close()
