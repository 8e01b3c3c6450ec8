"""The groups of a queue on the dashboard (fair queues), in a real headless Chromium against a
real relayq-server: the top groups by backlog with their counts, limits and state, and a
group's limits set and cleared from its row; names are shown as text."""

from __future__ import annotations

from typing import Any

import relayq
from relayq import JobOptions, NewJob
from tests.web import browser as shared
from tests.web.browser import Page, playwright_sync

expect = playwright_sync.expect

redis_url, admin_key, server, browser, page = (
    shared.redis_url,
    shared.admin_key,
    shared.server,
    shared.browser,
    shared.page,
)


def test_the_queue_page_shows_the_top_groups_and_edits_their_limits(
    page: Page, r: Any, queue_name: str
) -> None:
    q = relayq.Queue(queue_name, r)
    q.configure(group_max_running=1)
    q.enqueue_many([NewJob(i, JobOptions(group="tenant-a")) for i in range(30)])
    q.enqueue_many([NewJob(i, JobOptions(group="tenant-b")) for i in range(3)])
    q.claim(5)  # one of each: both at their limit
    page.sign_in(hash_route=f"#/queues/{queue_name}")
    p = page.page
    a = p.locator('tr[data-group="tenant-a"]')
    expect(a.locator("td").nth(1)).to_have_text("29")
    expect(a.locator("td").nth(2)).to_have_text("1")
    expect(a).to_contain_text("limited")
    expect(p.locator(".groups-summary")).to_contain_text("2 at their limit")
    rows = p.locator("table.groups tbody tr")
    expect(rows.first).to_have_attribute("data-group", "tenant-a")  # the largest backlog first

    a.locator('input[name="max_running"]').fill("3")
    a.get_by_role("button", name="Set").click()
    expect(a.locator("td").nth(3)).to_have_text("3")
    assert next(g for g in q.groups().groups if g.group == "tenant-a").max_running == 3
    assert len(q.claim(10)) == 2  # tenant-a's two more slots
    a.get_by_role("button", name="Clear").click()
    expect(a.locator("td").nth(3)).to_have_text("—")
    assert next(g for g in q.groups().groups if g.group == "tenant-a").max_running is None
    assert page.unexpected_errors() == []
