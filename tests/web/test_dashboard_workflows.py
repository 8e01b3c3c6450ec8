"""The dashboard's job page shows a workflow (issue 14 #5): a job's parents and children with
their states, as an indented list that follows the graph live; real Chromium."""

from __future__ import annotations

import re
from typing import Any

import relayq
from relayq import FlowJob, group
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


def test_the_job_page_shows_parents_and_children_with_their_states(
    page: Page, r: Any, queue_name: str
) -> None:
    q = relayq.Queue(queue_name, r)
    made = {
        m.ref: m.id
        for m in relayq.flow(
            group(
                [FlowJob(queue_name, n, ref=f"part{n}") for n in range(3)],
                then=FlowJob(queue_name, "sum", ref="sum"),
            ),
            redis=r,
        )
    }
    page.sign_in(hash_route=f"#/queues/{queue_name}")
    p = page.page
    waiting_tab = p.get_by_role("tab", name=re.compile("^Waiting"))
    expect(waiting_tab.locator(".count")).to_have_text("1")  # the queue's stats count it
    waiting_tab.click()
    expect(p.locator(f'tr[data-job="{made["sum"]}"]')).to_be_visible()
    p.goto(f"/#/jobs/{made['part0']}")
    child = p.locator(f'[data-graph="children"] li[data-job="{made["sum"]}"]')
    expect(child.locator(".badge")).to_have_text("waiting")
    p.goto(f"/#/jobs/{made['sum']}")
    parents = p.locator('[data-graph="parents"] li')
    expect(parents).to_have_count(3)
    expect(p.locator(".graph-self .badge")).to_have_text("waiting")
    for job in q.claim(3):
        q.ack(job.id, job.lease, job.payload)
    expect(p.locator(".graph-self .badge")).to_have_text("ready", timeout=10_000)
    expect(p.locator('[data-graph="parents"] .badge', has_text="succeeded")).to_have_count(3)
    assert not page.unexpected_errors()
    page.screenshot("workflow")
