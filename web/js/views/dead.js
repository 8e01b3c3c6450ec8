// The dead-letter queue of a queue page: inspect (paged), requeue or purge one job or all.

import {api} from "../api.js";
import {fmtNumber, fmtTime, h, jobHref, replace} from "../dom.js";

const PAGE = 20;

/** `onChanged` runs after every action (the page refreshes its stats). */
export function createDeadLetters(ctx, queue, onChanged) {
  const tbody = h("tbody");
  const table = h("table", {class: "dead", hidden: true},
    h("thead", {}, h("tr", {},
      h("th", {scope: "col"}, "Job"), h("th", {scope: "col"}, "Type"),
      h("th", {scope: "col", class: "num"}, "Attempts"), h("th", {scope: "col"}, "Died"),
      h("th", {scope: "col"}, "Last error"), h("th", {scope: "col"}, "Actions"))),
    tbody);
  const empty = h("p", {class: "empty"}, "No dead jobs.");
  const more = h("button", {type: "button", hidden: true, on: {click: () => load(cursor)}},
    "Load more");
  const requeueAll = h("button", {type: "button", on: {click: () =>
    act(`Requeue every dead job of ${queue}?`, () => api.requeueAllDead(queue), "Requeued all")}},
  "Requeue all");
  const purgeAll = h("button", {type: "button", class: "danger", on: {click: () =>
    act(`Delete every dead job of ${queue} for good?`, () => api.purgeAllDead(queue),
      "Purged all")}}, "Purge all");
  let cursor = null;
  let loading = null;

  function jobRow(job) {
    return h("tr", {dataset: {job: job.id}},
      h("td", {}, h("a", {href: jobHref(job.id)}, job.id)),
      h("td", {}, job.type ?? "—"),
      h("td", {class: "num"}, `${fmtNumber(job.attempts)}/${fmtNumber(job.max_attempts)}`),
      h("td", {}, fmtTime(job.finished_at)),
      h("td", {class: "error-text", title: job.last_error ?? ""}, job.last_error ?? "—"),
      h("td", {class: "actions"},
        h("button", {type: "button", on: {click: () =>
          act(null, () => api.requeueDead(queue, job.id), `Requeued ${job.id}`)}}, "Requeue"),
        h("button", {type: "button", class: "danger", on: {click: () =>
          act(`Delete dead job ${job.id} for good?`, () => api.purgeDead(queue, job.id),
            `Purged ${job.id}`)}}, "Purge")));
  }

  /** Loads the first page (cursor null, replacing the table) or the next one. */
  async function load(from = null) {
    const request = api.dead(queue, PAGE, from);
    loading = request;
    let page;
    try {
      page = await request;
    } catch (err) {
      ctx.fail(err);
      return;
    }
    if (loading !== request) return; // a newer load started meanwhile
    if (from === null) replace(tbody);
    tbody.append(...page.jobs.map(jobRow));
    cursor = page.next_cursor ?? null;
    more.hidden = cursor === null;
    const any = tbody.childElementCount > 0;
    table.hidden = !any;
    empty.hidden = any;
    requeueAll.disabled = purgeAll.disabled = !any;
  }

  async function act(question, call, done) {
    if (!(await ctx.act(question, call, done))) return;
    await load();
    onChanged();
  }

  const element = h("section", {class: "panel"},
    h("div", {class: "panel-head"}, h("h2", {}, "Dead letters"),
      h("div", {class: "actions"}, requeueAll, purgeAll)),
    table, empty, more);
  // Many jobs dying at once make many events: reload at most every 300 ms.
  let timer = null;
  function refreshSoon() {
    if (timer === null) {
      timer = setTimeout(() => {
        timer = null;
        load();
      }, 300);
    }
  }

  return {element, refresh: () => load(), refreshSoon};
}
