// The home page: every queue with its live depth per state and latency (how long its oldest
// ready job has waited), and the throughput of all queues.

import {api} from "../api.js";
import {createChart} from "../chart.js";
import {badge, fmtDuration, fmtNumber, fmtRate, h, queueHref, setText, tableBox} from "../dom.js";

const COLUMNS = ["ready", "scheduled", "running", "dead", "succeeded"];

export function mount(root, ctx) {
  const chart = createChart("Jobs per second, all queues");
  const rows = new Map(); // queue name -> {row, cells}
  const tbody = h("tbody");
  const table = h("table", {class: "queues"},
    h("thead", {}, h("tr", {},
      h("th", {scope: "col"}, "Queue"), h("th", {scope: "col"}, "Status"),
      COLUMNS.map((c) => h("th", {scope: "col", class: "num"}, c)),
      h("th", {scope: "col", class: "num", title: "How long the oldest ready job has waited"},
        "latency"),
      h("th", {scope: "col", class: "num"}, "done/s"))),
    tbody);
  const box = tableBox(table);
  box.hidden = true;
  const empty = h("p", {class: "empty", hidden: true},
    "No queues yet: open one by name below and enqueue a job to create it.");
  const nameInput = h("input", {name: "queue", required: true, pattern: "[A-Za-z0-9_\\-]{1,64}",
    placeholder: "queue name", "aria-label": "Queue name", autocomplete: "off"});
  const openForm = h("form", {class: "inline-form", on: {submit: (event) => {
    event.preventDefault();
    location.hash = queueHref(nameInput.value.trim());
  }}}, nameInput, h("button", {type: "submit"}, "Open queue"));

  root.append(
    h("h1", {}, "Queues"),
    h("section", {class: "panel"}, h("h2", {}, "Throughput"), chart.element),
    h("section", {class: "panel"}, h("h2", {}, "Depth"), box, empty, openForm));

  function row(name) {
    let entry = rows.get(name);
    if (!entry) {
      const cells = {status: h("td"), rate: h("td", {class: "num"}),
        latency: h("td", {class: "num", dataset: {state: "latency"}})};
      for (const c of COLUMNS) cells[c] = h("td", {class: "num", dataset: {state: c}});
      const tr = h("tr", {dataset: {queue: name}},
        h("th", {scope: "row"}, h("a", {href: queueHref(name)}, name)),
        cells.status, COLUMNS.map((c) => cells[c]), cells.latency, cells.rate);
      entry = {tr, cells, status: ""};
      rows.set(name, entry);
    }
    return entry;
  }

  function render(queues) {
    const sorted = [...queues].sort((a, b) => a.queue.localeCompare(b.queue));
    for (const stats of sorted) {
      const entry = row(stats.queue);
      const {cells} = entry;
      for (const c of COLUMNS) setText(cells[c], fmtNumber(stats[c]));
      setText(cells.latency, fmtDuration(stats.latency_ms));
      const rates = ctx.throughput.latest(stats.queue);
      setText(cells.rate, rates ? fmtRate(rates.succeeded + rates.failed) : "—");
      const status = (stats.paused ? "paused " : "") +
        (stats.rate_limit ? `limit ${stats.rate_limit.rate}/s` : "");
      if (status !== entry.status) {
        entry.status = status;
        cells.status.replaceChildren(
          ...(stats.paused ? [badge("paused")] : []),
          ...(stats.rate_limit ? [` limit ${stats.rate_limit.rate}/s`] : []));
      }
    }
    const names = new Set(sorted.map((s) => s.queue));
    for (const [name, entry] of rows) {
      if (!names.has(name)) {
        entry.tr.remove();
        rows.delete(name);
      }
    }
    // Keep rows in name order (appending an attached node moves it).
    for (const stats of sorted) tbody.append(rows.get(stats.queue).tr);
    box.hidden = sorted.length === 0;
    empty.hidden = sorted.length !== 0;
    chart.draw(ctx.throughput.series(null), ctx.throughput.windowMs);
  }

  api.listQueues().then((data) => render(data.queues)).catch(ctx.fail);
  const off = ctx.on("stats", (data) => render(data.queues));
  return {unmount: off};
}
