// The periodic schedules of one queue, a panel of the queue page: when each fires (cron with its
// time zone, or its interval), its next and last run, its last job (a link), whether it is
// paused, and Pause/Resume and Trigger buttons. Reloaded every few seconds and after each
// action. Every value is shown as text (dom.js).

import {api} from "../api.js";
import {badge, h, jobHref, replace, timeEl} from "../dom.js";

const REFRESH_MS = 5000;

export function createSchedulePanel(ctx, queue) {
  const body = h("tbody");
  const empty = h("p", {class: "empty"}, "No schedules.");
  const table = h("table", {class: "schedules", hidden: true},
    h("thead", {}, h("tr", {}, ["Schedule", "When", "Time zone", "Next run", "Last run",
      "Last job", "State", ""].map((name) => h("th", {scope: "col"}, name)))),
    body);
  const element = h("section", {class: "panel", dataset: {panel: "schedules"}},
    h("h2", {}, "Schedules"), empty, table);

  function row(s) {
    const when = s.cron === null ? `every ${s.every_ms} ms` : s.cron;
    const lastJob = s.last_job_id ? h("a", {href: jobHref(s.last_job_id)}, s.last_job_id) : "—";
    const toggle = s.paused
      ? h("button", {type: "button", on: {click: () => act(
        () => api.resumeSchedule(queue, s.id), `Resumed schedule ${s.id}`)}}, "Resume")
      : h("button", {type: "button", on: {click: () => act(
        () => api.pauseSchedule(queue, s.id), `Paused schedule ${s.id}`)}}, "Pause");
    const trigger = h("button", {type: "button", on: {click: () => act(
      () => api.triggerSchedule(queue, s.id), `Triggered schedule ${s.id}: one job now`)}},
    "Trigger");
    return h("tr", {dataset: {schedule: s.id}},
      h("td", {}, s.id), h("td", {}, when), h("td", {}, s.tz),
      h("td", {}, timeEl(s.next_run_at)), h("td", {}, timeEl(s.last_run_at)),
      h("td", {}, lastJob), h("td", {}, s.paused ? badge("paused") : "active"),
      h("td", {class: "actions"}, toggle, trigger));
  }

  function render(data) {
    const schedules = data.schedules || [];
    empty.hidden = schedules.length > 0;
    table.hidden = schedules.length === 0;
    replace(body, schedules.map(row));
  }

  function refresh() {
    api.schedules(queue).then(render).catch(ctx.fail);
  }

  async function act(call, done) {
    await ctx.act(null, call, done);
    refresh();
  }

  refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return {element, refresh, stop: () => clearInterval(timer)};
}
