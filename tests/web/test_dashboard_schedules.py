"""The schedules of a queue on the dashboard (issue 13 #4), in a real headless Chromium against a
real relayq-server (which fires the ticks): each schedule with cron and time zone or interval,
next and last run (UTC, said so), its last job as a link, paused or not; Pause, Resume and
Trigger work; names and crons are shown as text, never as HTML."""

from __future__ import annotations

import re
from typing import Any

import relayq
from tests.web import browser as shared
from tests.web.browser import Page, playwright_sync

expect = playwright_sync.expect

redis_url, admin_key, server, browser, page = (
    shared.redis_url, shared.admin_key, shared.server, shared.browser, shared.page)

HOSTILE_PAYLOAD = {"note": "<img src=x onerror=alert(1)>"}


def test_the_queue_page_lists_schedules_with_their_buttons(page: Page, r: Any,
                                                           queue_name: str) -> None:
    q = relayq.Queue(queue_name, r)
    q.schedule("nightly", HOSTILE_PAYLOAD, cron="0 3 * * *", tz="Europe/Paris")
    q.schedule("fast", {}, every_ms=1000)  # the server fires it: a last run and a last job
    page.sign_in(hash_route=f"#/queues/{queue_name}")
    p = page.page
    nightly = p.locator('tr[data-schedule="nightly"]')
    fast = p.locator('tr[data-schedule="fast"]')
    expect(nightly).to_contain_text("0 3 * * *")
    expect(nightly).to_contain_text("Europe/Paris")
    expect(nightly.locator("td").nth(3)).to_have_text(re.compile(r"^\d{4}-.* 02:00:00 UTC$|"
                                                                 r"^\d{4}-.* 01:00:00 UTC$"))
    expect(fast).to_contain_text("every 1000 ms")
    link = fast.locator("td").nth(5).locator("a")
    expect(link).to_have_attribute("href", re.compile(f"^#/jobs/{queue_name}\\.[0-9]+$"),
                                   timeout=20_000)
    expect(fast.locator("td").nth(4)).to_have_text(re.compile(r" UTC$"))

    nightly.get_by_role("button", name="Pause").click()
    expect(nightly).to_contain_text("paused")
    assert q.get_schedule("nightly").paused
    nightly.get_by_role("button", name="Resume").click()
    expect(nightly).to_contain_text("active")
    assert not q.get_schedule("nightly").paused

    nightly.get_by_role("button", name="Trigger").click()
    expect(nightly.locator("td").nth(5).locator("a")).to_have_attribute(
        "href", re.compile(f"^#/jobs/{queue_name}\\.[0-9]+$"))
    job_id = q.get_schedule("nightly").last_job_id
    assert q.get(job_id).payload == HOSTILE_PAYLOAD
    assert p.locator("img").count() == 0  # nothing of the data became markup
    assert page.unexpected_errors() == []
