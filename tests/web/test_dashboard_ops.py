"""The operator's views of the dashboard (issue 19 #5) in a real headless Chromium against a real
relayq-server and real workers on this module's own Redis: jobs per state with paging and search,
the Workers page, queue latency, a job's attempt history, errors as the exception's message with
the traceback behind a click, one time format (UTC, said so) whatever the browser's zone, and a
layout that holds on a phone. Screenshots go to test-artifacts/ (git-ignored)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import relayq
from tests.support.helpers import worker_process
from tests.web import browser as shared
from tests.web.browser import PHONE, Page, depth_cell, playwright_sync

expect = playwright_sync.expect

# The shared fixtures (tests/web/browser.py), taken by name.
redis_url, admin_key, server, browser, client, worker, page = (
    shared.redis_url, shared.admin_key, shared.server, shared.browser, shared.client,
    shared.worker, shared.page)

UTC_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")
HOSTILE = "<img src=x onerror=alert(1)>"
TRACEBACK = ('Traceback (most recent call last):\n'
             '  File "/srv/app/tasks.py", line 12, in charge\n'
             '    raise ValueError(f"bad input {card!r}")\n'
             f'ValueError: bad input {HOSTILE}\n')
DEMO_FAILURE = "DemoFailure: demo job failed on request (payload fail=true)"


def shown(iso: str) -> str:
    """An API time as the dashboard must show it."""
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def every_time_is_utc(page: Page) -> None:
    """Every <time> on the page that holds a time says it in the one format, with its zone."""
    texts = [t for t in page.page.locator("time").all_inner_texts() if t != "—"]
    assert texts, "no times on the page"
    assert all(UTC_TIME.match(t) for t in texts), texts


def tab(page: Page, label: str) -> Any:
    return page.page.get_by_role("tab", name=re.compile(f"^{label}"))


def rows(page: Page, state: str) -> Any:
    return page.page.locator(f'table.jobs[data-state="{state}"] tbody tr')


def test_jobs_are_browsed_per_state_a_page_at_a_time_and_searched(
        page: Page, r: Any, queue_name: str) -> None:
    q = relayq.Queue(queue_name, r)
    for _ in range(3):
        q.enqueue({"step": "claimed"}, type="work", priority=9)
    claimed = q.claim(3, worker_id="w-test-1", visibility_ms=600_000)
    q.ack(claimed[0].id, claimed[0].lease, {"ok": True})
    q.nack(claimed[1].id, claimed[1].lease, TRACEBACK, retry=False)
    later = q.enqueue({}, type="reminder", delay_ms=3_600_000).id
    sooner = q.enqueue({}, type="reminder", delay_ms=600_000).id
    emails = [q.enqueue({"n": i}, type="email").id for i in range(21)]
    report = q.enqueue({}, type=f"report{HOSTILE}", priority=5).id

    page.sign_in(hash_route=f"#/queues/{queue_name}")
    p = page.page
    expect(tab(page, "Ready")).to_have_text("Ready 22")
    expect(tab(page, "Ready")).to_have_attribute("aria-selected", "true")
    # Ready in claim order (priority first), 20 to a page.
    expect(rows(page, "ready")).to_have_count(20)
    expect(rows(page, "ready").first).to_have_attribute("data-job", report)
    expect(rows(page, "ready").nth(1)).to_have_attribute("data-job", emails[0])
    p.get_by_role("button", name="Next").click()
    expect(rows(page, "ready")).to_have_count(2)
    expect(rows(page, "ready").last).to_have_attribute("data-job", emails[-1])
    expect(p.locator(".page-label")).to_have_text("Page 2")
    p.get_by_role("button", name="Previous").click()
    expect(rows(page, "ready")).to_have_count(20)
    expect(p.get_by_role("button", name="Previous")).to_be_disabled()

    # Search by type, then by id.
    p.get_by_label("Search jobs").fill("report")
    p.get_by_role("button", name="Search").click()
    expect(rows(page, "ready")).to_have_count(1)
    expect(rows(page, "ready").first).to_contain_text(f"report{HOSTILE}")
    p.get_by_label("Search jobs").fill(emails[7])
    p.get_by_role("button", name="Search").click()
    expect(rows(page, "ready")).to_have_count(1)
    expect(rows(page, "ready").first).to_have_attribute("data-job", emails[7])
    p.get_by_label("Search jobs").fill("")
    p.get_by_role("button", name="Search").click()

    tab(page, "Scheduled").click()  # soonest due first
    expect(rows(page, "scheduled")).to_have_count(2)
    expect(rows(page, "scheduled").first).to_have_attribute("data-job", sooner)
    expect(rows(page, "scheduled").last).to_have_attribute("data-job", later)
    expect(rows(page, "scheduled").first.locator('[data-field="run_at"]')).to_have_text(
        shown(q.get(sooner).to_dict()["run_at"]))

    tab(page, "Running").click()  # with its worker and lease
    running = rows(page, "running")
    expect(running).to_have_count(1)
    expect(running.first).to_have_attribute("data-job", claimed[2].id)
    expect(running.first).to_contain_text("w-test-1")
    expect(running.first.locator('[data-field="lease_deadline"]')).to_have_text(UTC_TIME)
    every_time_is_utc(page)

    tab(page, "Succeeded").click()
    expect(rows(page, "succeeded")).to_have_count(1)
    expect(rows(page, "succeeded").first).to_have_attribute("data-job", claimed[0].id)

    # Dead: the exception's message in the row, the traceback behind a click; search by error.
    tab(page, "Dead").click()
    dead = rows(page, "dead")
    expect(dead).to_have_count(1)
    message = dead.first.locator("summary")
    expect(message).to_have_text(f"ValueError: bad input {HOSTILE}")
    traceback = dead.first.locator("pre.traceback")
    expect(traceback).to_be_hidden()
    message.click()
    expect(traceback).to_have_text(TRACEBACK.rstrip("\n"))
    # A live update redraws the list, and the traceback someone reads stays open.
    expect(p.locator("#live-status")).to_have_text("live")
    dead.first.evaluate("(row) => { row.dataset.drawn = 'before'; }")
    q.enqueue({}, type="email")
    expect(p.locator('tr[data-drawn="before"]')).to_have_count(0)  # redrawn
    expect(traceback).to_be_visible()
    p.get_by_label("Search jobs").fill("bad input")
    p.get_by_role("button", name="Search").click()
    expect(dead).to_have_count(1)
    p.get_by_label("Search jobs").fill("no such failure")
    p.get_by_role("button", name="Search").click()
    expect(p.get_by_text("No dead jobs match “no such failure”.")).to_be_visible()
    assert p.locator("main img, main b").count() == 0 and page.dialogs == []
    p.get_by_label("Search jobs").fill("")
    p.get_by_role("button", name="Search").click()
    dead.first.locator("summary").click()
    page.screenshot("jobs-dead")

    # The tab shown is in the address: a reload shows it again.
    assert p.url.endswith(f"#/queues/{queue_name}/dead")
    p.reload()
    expect(tab(page, "Dead")).to_have_attribute("aria-selected", "true")
    expect(rows(page, "dead")).to_have_count(1)


def test_queue_latency_is_the_age_of_the_oldest_ready_job(page: Page, r: Any,
                                                         queue_name: str) -> None:
    q = relayq.Queue(queue_name, r)
    q.pause()
    q.enqueue({})
    page.sign_in()
    latency = depth_cell(page, queue_name, "latency")
    expect(latency).to_have_text(re.compile(r"^[1-9][\d.]* s$"))  # past a second, and growing
    expect(page.page.locator("thead th", has_text="latency")).to_be_visible()
    page.screenshot("queues-latency")
    page.page.locator(f'tr[data-queue="{queue_name}"] a').click()
    expect(page.page.locator('.card[data-state="latency"] .value')).to_have_text(
        re.compile(r"^[1-9][\d.]* s$"))
    q.resume()
    (job,) = q.claim(1)
    expect(page.page.locator('.card[data-state="latency"] .value')).to_have_text("0 ms")
    q.ack(job.id, job.lease)


@pytest.fixture
def listed_worker(redis_url: str, queue_name: str, tmp_path: Path) -> Iterator[Any]:
    """A real worker on the test's queue that refreshes its registry entry every 300 ms (the
    default is seconds apart), so that the page can follow its busy slots."""
    with worker_process(redis_url, queue_name, "--demo-fail-rate", "0", "--concurrency", "4",
                        "--prefetch", "0", "--registry-refresh-ms", "300",
                        log=tmp_path / "worker.log") as process:
        yield process


def test_the_workers_page_shows_each_live_worker_and_the_jobs_it_runs(
        page: Page, client: relayq.Client, listed_worker: Any, queue_name: str) -> None:
    worker = listed_worker
    ids = [client.enqueue(queue_name, {"sleep_ms": 3000, "n": i}).id for i in range(2)]
    page.sign_in(hash_route="#/workers")
    p = page.page
    expect(p.get_by_role("heading", name="Workers", level=1)).to_be_visible()
    row = p.locator("table.workers tbody tr").filter(
        has=p.locator('td[data-field="pid"]', has_text=re.compile(f"^{worker.pid}$")))
    expect(row).to_have_count(1)
    expect(row.locator('[data-field="host"]')).to_have_text(socket.gethostname())
    expect(row.locator('[data-field="queues"]')).to_have_text(queue_name)
    expect(row.locator('[data-field="busy"]')).to_have_text("2 of 4")
    for job_id in ids:
        expect(row.locator(f'[data-field="jobs"] a[href="#/jobs/{job_id}"]')).to_be_visible()
    every_time_is_utc(page)
    page.screenshot("workers")
    expect(row.locator('[data-field="busy"]')).to_have_text("0 of 4", timeout=10_000)
    expect(row.locator('[data-field="jobs"]')).to_have_text("—")


def test_a_job_page_shows_each_attempt_with_its_worker_times_and_error(
        page: Page, client: relayq.Client, worker: Any, queue_name: str) -> None:
    job_id = client.enqueue(queue_name, {"fail": True}, max_attempts=2, backoff_base_ms=10,
                            backoff_cap_ms=20).id
    page.sign_in(hash_route=f"#/jobs/{job_id}")
    p = page.page
    expect(p.locator(".job-details .page-head .badge")).to_have_text("dead")
    attempts = p.locator("table.history tbody tr")
    expect(attempts).to_have_count(2)
    view = client.get(job_id).to_dict()
    assert len(view["history"]) == 2
    for i, attempt in enumerate(view["history"]):
        row = attempts.nth(i)
        expect(row).to_contain_text(attempt["worker_id"])
        expect(row.locator("time").first).to_have_text(shown(attempt["started_at"]))
        expect(row.locator("time").last).to_have_text(shown(attempt["finished_at"]))
        expect(row.locator("summary")).to_have_text(DEMO_FAILURE)
    assert socket.gethostname() in view["history"][0]["worker_id"]
    expect(p.locator('time[data-field="created_at"]')).to_have_text(shown(view["created_at"]))

    # The last error: the message, and the whole traceback once clicked.
    last = p.locator('[data-field="last_error"]')
    expect(last.locator("summary")).to_have_text(DEMO_FAILURE)
    expect(last.locator("pre")).to_be_hidden()
    last.locator("summary").click()
    expect(last.locator("pre")).to_contain_text("Traceback (most recent call last):")
    expect(last.locator("pre")).to_contain_text('raise DemoFailure("demo job failed on request')
    expect(last.locator("pre")).to_contain_text(f"relayq.worker.demo_app.{DEMO_FAILURE}")
    every_time_is_utc(page)
    page.screenshot("job-history")


def test_a_job_page_catches_up_on_what_changed_while_the_live_feed_was_down(
        page: Page, r: Any, queue_name: str) -> None:
    # Every stream the page opens ends at once, as when a proxy cuts it: the feed goes live and
    # drops again and again, so the job's events are sent while nobody listens.
    p = page.page
    p.route("**/api/events*", lambda route: route.fulfill(
        status=200, content_type="text/event-stream", body="retry: 100\n\n"))
    q = relayq.Queue(queue_name, r)
    job_id = q.enqueue({}).id
    page.sign_in(hash_route=f"#/jobs/{job_id}")
    state = p.locator(".job-details .page-head .badge")
    expect(state).to_have_text("ready")
    (job,) = q.claim(1)
    q.ack(job.id, job.lease)
    p.unroute("**/api/events*")
    expect(page.page.locator("#live-status")).to_have_text("live")
    expect(state).to_have_text("succeeded")


def test_the_message_of_an_error_is_its_exceptions_own_lines(page: Page) -> None:
    page.sign_in()
    expect(page.page.locator("#live-status")).to_have_text("live")
    chained = ('Traceback (most recent call last):\n  File "a.py", line 1, in f\n    g()\n'
               'KeyError: \'k\'\n\nDuring handling of the above exception, another exception '
               'occurred:\n\nTraceback (most recent call last):\n  File "a.py", line 3, in f\n'
               '    raise RuntimeError("wrapped")\n    ^^^^^^^^^^^^^^^^^^^^^\n'
               'RuntimeError: wrapped\n')
    multiline = ('Traceback (most recent call last):\n  File "b.py", line 2, in h\n'
                 '    raise ValueError("first\\nsecond")\nValueError: first\nsecond\n')
    cases = {
        TRACEBACK: f"ValueError: bad input {HOSTILE}",
        chained: "RuntimeError: wrapped",
        multiline: "ValueError: first",
        TRACEBACK.replace("ValueError", "billing.errors.CardDeclined"):
            f"CardDeclined: bad input {HOSTILE}",
        "handler result is not JSON: bad": "handler result is not JSON: bad",
        "lease expired\nreaped by w-1": "lease expired",
    }
    answers = page.page.evaluate(
        """async (texts) => {
             const {errorSummary} = await import("/js/dom.js");
             return texts.map((text) => errorSummary(text));
           }""", list(cases))
    assert [a["message"] for a in answers] == list(cases.values())
    assert answers[4]["full"] is None and answers[5]["full"] == "lease expired\nreaped by w-1"
    assert answers[0]["full"] == TRACEBACK.rstrip("\n")


def test_every_view_holds_on_a_phone(browser: Any, server: Any, admin_key: str,
                                     client: relayq.Client, worker: Any,
                                     queue_name: str) -> None:
    dead_id = client.enqueue(queue_name, {"fail": True, "padding": "x" * 300}, max_attempts=1,
                             type="a-rather-long-job-type-name-for-a-phone").id
    client.enqueue(queue_name, {"sleep_ms": 3000})
    phone = Page(browser, server.url, admin_key, viewport=PHONE)
    try:
        phone.sign_in()
        p = phone.page
        expect(depth_cell(phone, queue_name, "dead")).to_have_text("1")
        views = {"queues": "#/", "queue": f"#/queues/{queue_name}", "job": f"#/jobs/{dead_id}",
                 "workers": "#/workers"}
        for name, route in views.items():
            p.goto("/" + route)
            expect(p.locator("main h1")).to_be_visible()
            if name == "queue":
                tab(phone, "Dead").click()
                expect(rows(phone, "dead")).to_have_count(1)
                rows(phone, "dead").first.locator("summary").click()
            if name == "job":
                expect(p.locator("table.history tbody tr")).to_have_count(1)
                p.locator('[data-field="last_error"] summary').click()
            if name == "workers":
                expect(p.locator("table.workers tbody tr").first).to_be_visible()
            assert not phone.page_scrolls_sideways(), f"the {name} page scrolls sideways"
            phone.screenshot(f"phone-{name}")
        # The wide table is still all there: it scrolls inside its own box.
        assert p.evaluate("""() => [...document.querySelectorAll('.table-box')]
                                   .some((box) => box.scrollWidth > box.clientWidth)""")
        assert not phone.unexpected_errors()
    finally:
        phone.close()
