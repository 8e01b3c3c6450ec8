// The Workers page: every live worker from the registry the workers keep alive (GET
// /api/workers): host, pid, queues, concurrency, busy slots, the jobs it runs, started, last
// seen. A worker that dies drops out when its entry expires. Refreshed every few seconds.

import {api} from "../api.js";
import {fmtNumber, h, jobHref, queueHref, replace, setText, tableBox, timeEl} from "../dom.js";

const REFRESH_MS = 2000;

/** A job a worker runs: its id, as the registry gives it (an id, or an object with one). */
function jobId(job) {
  return typeof job === "string" ? job : job && (job.id ?? job.job_id);
}

function links(items, href) {
  return items.flatMap((item, i) => [i ? ", " : null, h("a", {href: href(item)}, item)]);
}

export function mount(root, ctx) {
  const summary = h("p", {class: "hint", role: "status"});
  const tbody = h("tbody");
  const table = h("table", {class: "workers"},
    h("thead", {}, h("tr", {},
      h("th", {scope: "col"}, "Worker"), h("th", {scope: "col"}, "Host"),
      h("th", {scope: "col", class: "num"}, "PID"), h("th", {scope: "col"}, "Queues"),
      h("th", {scope: "col", class: "num"}, "Busy"), h("th", {scope: "col"}, "Jobs"),
      h("th", {scope: "col"}, "Started"), h("th", {scope: "col"}, "Last seen"))),
    tbody);
  const box = tableBox(table);
  const empty = h("p", {class: "empty"},
    "No workers are running. Start one with: relayq-worker --queue <name>");
  box.hidden = true;
  root.append(h("h1", {}, "Workers"), h("section", {class: "panel"}, summary, box, empty));

  function row(worker) {
    const jobs = (worker.jobs || []).map(jobId).filter(Boolean);
    return h("tr", {dataset: {worker: worker.id}},
      h("th", {scope: "row"}, worker.id),
      h("td", {dataset: {field: "host"}}, worker.host ?? "—"),
      h("td", {class: "num", dataset: {field: "pid"}}, worker.pid ?? "—"),
      h("td", {dataset: {field: "queues"}}, links(worker.queues || [], queueHref)),
      h("td", {class: "num", dataset: {field: "busy"}},
        `${fmtNumber(worker.busy)} of ${fmtNumber(worker.concurrency)}`),
      h("td", {class: "job-list", dataset: {field: "jobs"}},
        jobs.length ? links(jobs, jobHref) : "—"),
      h("td", {}, timeEl(worker.started_at, {dataset: {field: "started_at"}})),
      h("td", {}, timeEl(worker.last_seen_at, {dataset: {field: "last_seen_at"}})));
  }

  function render(workers) {
    const sorted = [...workers].sort((a, b) => String(a.id).localeCompare(String(b.id)));
    replace(tbody, sorted.map(row));
    box.hidden = sorted.length === 0;
    empty.hidden = sorted.length !== 0;
    const busy = sorted.reduce((n, w) => n + (w.busy || 0), 0);
    const slots = sorted.reduce((n, w) => n + (w.concurrency || 0), 0);
    const n = sorted.length;
    setText(summary, n ? `${fmtNumber(n)} worker${n === 1 ? "" : "s"}, ` +
      `${fmtNumber(busy)} of ${fmtNumber(slots)} slots busy.` : "");
  }

  let stopped = false;
  let timer = null;
  async function refresh() {
    try {
      const data = await api.workers();
      if (!stopped) render(data.workers || []);
    } catch (err) {
      if (!stopped) ctx.fail(err);
    }
    if (!stopped) timer = setTimeout(refresh, REFRESH_MS);
  }
  refresh();
  return {
    unmount() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
