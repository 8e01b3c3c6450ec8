"""The dashboard and running jobs (issue 15): a demo job's progress moves on its page and in the
queue's running tab, Cancel on a running job asks for its cancel (202: "cancel requested") and
the job ends cancelled within seconds; the queue's live event view resumes after a server
restart with every event that happened meanwhile, once each."""

from __future__ import annotations

import re
from typing import Any

import relayq
from relayq.tools.server_process import ServerProcess
from tests.support.helpers import wait_until
from tests.web import browser as shared
from tests.web.browser import ROOT, Page, playwright_sync

expect = playwright_sync.expect

redis_url, admin_key, server, browser, client, worker, page = (
    shared.redis_url, shared.admin_key, shared.server, shared.browser, shared.client,
    shared.worker, shared.page)


def test_progress_moves_and_cancel_stops_a_running_job(
        page: Page, client: relayq.Client, worker: Any, r: Any, queue_name: str) -> None:
    q = relayq.Queue(queue_name, r)
    on_page, in_list = (client.enqueue(queue_name, {"sleep_ms": 60_000, "n": n}).id
                        for n in range(2))
    wait_until(lambda: all((q.get(j).progress or 0) > 0 for j in (on_page, in_list)),
               timeout=20, message="both jobs to run and report progress")
    page.sign_in(hash_route=f"#/jobs/{on_page}")
    p = page.page
    bar = p.locator('[data-field="progress"] progress')
    expect(bar).to_be_visible()
    first = int(bar.get_attribute("value") or 0)
    expect(bar).not_to_have_attribute("value", str(first))  # it moves, live
    p.get_by_role("button", name="Cancel").click()
    assert page.dialogs == [f"Cancel running job {on_page}? Its handler is asked to stop."]
    expect(p.locator(".toast")).to_contain_text(f"Cancel requested for {on_page}")
    expect(p.locator(".page-head .badge").first).to_have_text("cancelled", timeout=10_000)
    assert q.get(on_page).state == "cancelled"

    p.goto(f"/#/queues/{queue_name}/running")
    row = p.locator(f'tr[data-job="{in_list}"]')
    expect(row.locator('[data-field="progress"] progress')).to_be_visible()
    row.get_by_role("button", name="Cancel").click()
    expect(row).to_have_count(0, timeout=10_000)  # it ended: no longer running
    assert q.get(in_list).state == "cancelled"
    expect(p.locator(".activity li").filter(has=p.locator(".badge", has_text="cancelled"))
           ).not_to_have_count(0)
    page.screenshot("running")


def test_the_event_view_resumes_after_a_restart_without_losing_events(
        browser: Any, redis_url: str, admin_key: str, r: Any, queue_name: str) -> None:
    q = relayq.Queue(queue_name, r)
    first = ServerProcess(redis_url, cwd=ROOT).start()
    second = None
    page = Page(browser, first.url, admin_key)
    try:
        page.sign_in(hash_route=f"#/queues/{queue_name}")
        p = page.page
        feed = p.locator(".feed-status")
        expect(feed).to_have_text("live")
        before = q.enqueue({"n": 0}).id
        expect(p.locator(f'.activity a:text-is("{before}")')).to_have_count(1)
        first.stop()
        expect(feed).to_have_text(re.compile("reconnecting|connecting"))
        missed = [q.enqueue({"n": n}).id for n in range(1, 4)]  # while the server is down
        second = ServerProcess(redis_url, cwd=ROOT, port=first.port).start()
        expect(feed).to_have_text("live", timeout=30_000)
        for job_id in missed:  # each once, none lost
            expect(p.locator(f'.activity a:text-is("{job_id}")')).to_have_count(1)
        expect(p.locator(f'.activity a:text-is("{before}")')).to_have_count(1)
        assert not page.unexpected_errors(also_expected="ERR_CONNECTION_REFUSED")
    finally:
        page.close()
        first.stop()
        if second is not None:
            second.stop()
