// The jobs of a queue page, one tab per state (ready by priority, scheduled by due time,
// waiting for parents, running with worker, lease and progress), succeeded, dead), a page at a
// time, searchable by id, type or error text; the running tab cancels a job (by request), the dead tab requeues or
// purges one job or all.

import {api} from "../api.js";
import {
  badge, errorEl, fmtNumber, h, jobHref, keepingOpen, progressBar, queueHref, replace, setText,
  tableBox, timeEl,
} from "../dom.js";

const PAGE = 20;

const id = ["Job", (job) => h("a", {href: jobHref(job.id)}, job.id)];
const type = ["Type", (job) => job.type ?? "—"];
const attempts = ["Attempts", (job) => `${fmtNumber(job.attempts)}/${fmtNumber(job.max_attempts)}`,
  "num"];
const time = (label, field) => [label, (job) => timeEl(job[field], {dataset: {field}})];
const error = ["Last error", (job) => errorEl(job.last_error, {dataset: {field: "last_error"}}),
  "error-cell"];

/** Each tab: its label, the order the server lists it in, and its columns
 * ([header, cell(job), class]). */
const TABS = {
  ready: {label: "Ready", order: "highest priority first, then oldest",
    columns: [id, type, ["Priority", (job) => String(job.priority), "num"], attempts,
      time("Enqueued", "created_at")]},
  scheduled: {label: "Scheduled", order: "soonest due first",
    columns: [id, type, time("Due", "run_at"), attempts, error]},
  waiting: {label: "Waiting", order: "oldest first: jobs waiting for their parents",
    columns: [id, type, ["Parents", (job) => fmtNumber((job.depends_on ?? []).length), "num"],
      time("Enqueued", "created_at")]},
  running: {label: "Running", order: "soonest lease deadline first",
    columns: [id, type, ["Worker", (job) => job.worker_id ?? "—"], time("Started", "started_at"),
      time("Lease until", "lease_deadline"), attempts,
      ["Progress", (job) => progressBar(job.progress, {dataset: {field: "progress"}})]]},
  succeeded: {label: "Succeeded", order: "newest first",
    columns: [id, type, time("Finished", "finished_at"), attempts]},
  dead: {label: "Dead", order: "newest first",
    columns: [id, type, attempts, time("Died", "finished_at"), error]},
};

/** Shows the jobs of `initial` (a state; ready when unknown); the tab shown goes in the page's
 * address, so that a reload or a shared link shows it again. `onChanged` runs after every action
 * (the page refreshes its stats). */
export function createJobBrowser(ctx, queue, initial, onChanged) {
  let state = Object.hasOwn(TABS, initial) ? initial : "ready";
  let search = "";
  let cursors = [null]; // the cursor of each page seen so far; the last one is shown
  let next = null;
  let loading = null;

  const counts = {};
  const tabs = Object.entries(TABS).map(([name, tab]) => {
    counts[name] = h("span", {class: "count"}, "");
    return h("button", {type: "button", role: "tab", id: `tab-${name}`, dataset: {state: name},
      "aria-selected": String(name === state), "aria-controls": "jobs-panel",
      on: {click: () => select(name)}}, tab.label, " ", counts[name]);
  });
  const order = h("p", {class: "hint"});
  const searchInput = h("input", {type: "search", name: "q", autocomplete: "off",
    placeholder: "id, type or error text", "aria-label": "Search jobs"});
  const searchForm = h("form", {class: "inline-form search", role: "search", on: {submit: (e) => {
    e.preventDefault();
    search = searchInput.value.trim();
    first();
  }}}, searchInput, h("button", {type: "submit"}, "Search"));
  const thead = h("thead");
  const tbody = h("tbody");
  const table = h("table", {class: "jobs"}, thead, tbody);
  const box = tableBox(table);
  const empty = h("p", {class: "empty", hidden: true});
  const pageLabel = h("span", {class: "page-label"});
  const previous = h("button", {type: "button", on: {click: () => {
    cursors.pop();
    load();
  }}}, "Previous");
  const nextButton = h("button", {type: "button", on: {click: () => {
    cursors.push(next);
    load();
  }}}, "Next");
  const requeueAll = h("button", {type: "button", on: {click: () =>
    act(`Requeue every dead job of ${queue}?`, () => api.requeueAllDead(queue), "Requeued all")}},
  "Requeue all");
  const purgeAll = h("button", {type: "button", class: "danger", on: {click: () =>
    act(`Delete every dead job of ${queue} for good?`, () => api.purgeAllDead(queue),
      "Purged all")}}, "Purge all");
  const deadActions = h("div", {class: "actions"}, requeueAll, purgeAll);

  function deadButtons(job) {
    return h("td", {class: "actions"},
      h("button", {type: "button", on: {click: () =>
        act(null, () => api.requeueDead(queue, job.id), `Requeued ${job.id}`)}}, "Requeue"),
      h("button", {type: "button", class: "danger", on: {click: () =>
        act(`Delete dead job ${job.id} for good?`, () => api.purgeDead(queue, job.id),
          `Purged ${job.id}`)}}, "Purge"));
  }

  /** A running job: Cancel asks for its cancel (202); once asked, it says so instead. */
  function runningButtons(job) {
    return h("td", {class: "actions"}, job.cancel_requested ? badge("cancel requested")
      : h("button", {type: "button", on: {click: () =>
        act(`Cancel running job ${job.id}? Its handler is asked to stop.`,
          () => api.cancelJob(job.id), `Cancel requested for ${job.id}`)}}, "Cancel"));
  }

  const ACTIONS = {dead: deadButtons, running: runningButtons};

  function row(job) {
    return h("tr", {dataset: {job: job.id}},
      TABS[state].columns.map(([, cell, cls]) => h("td", {class: cls || null}, cell(job))),
      ACTIONS[state] ? ACTIONS[state](job) : null);
  }

  function header() {
    replace(thead, h("tr", {},
      TABS[state].columns.map(([label, , cls]) => h("th", {scope: "col", class: cls || null},
        label)),
      ACTIONS[state] ? h("th", {scope: "col"}, "Actions") : null));
  }

  function select(name) {
    state = name;
    history.replaceState(null, "", queueHref(queue, name)); // no hashchange: no re-route
    for (const tab of tabs) tab.setAttribute("aria-selected", String(tab.dataset.state === name));
    setText(order, `${TABS[name].label}, ${TABS[name].order}.`);
    deadActions.hidden = name !== "dead";
    table.dataset.state = name;
    first();
  }

  function first() {
    cursors = [null];
    load();
  }

  /** Loads the page at the top of `cursors` for the current tab and search. */
  async function load() {
    const request = api.jobs(queue, state, PAGE, cursors[cursors.length - 1], search);
    loading = request;
    let page;
    try {
      page = await request;
    } catch (err) {
      if (loading === request) ctx.fail(err);
      return;
    }
    if (loading !== request) return; // a newer load started meanwhile
    header();
    keepingOpen(tbody, () => replace(tbody, page.jobs.map(row)));
    next = page.next_cursor ?? null;
    const any = page.jobs.length > 0;
    box.hidden = !any;
    empty.hidden = any;
    // A search reads a bounded stretch of the queue per page: none here may still mean some
    // further on.
    setText(empty, !search ? `No ${state} jobs.`
      : next === null ? `No ${state} jobs match “${search}”.`
        : `No ${state} jobs match “${search}” on this page: try the next one.`);
    previous.disabled = cursors.length === 1;
    nextButton.disabled = next === null;
    setText(pageLabel, `Page ${cursors.length}`);
    requeueAll.disabled = purgeAll.disabled = state !== "dead" || (!any && !search);
  }

  async function act(question, call, done) {
    if (!(await ctx.act(question, call, done))) return;
    await load();
    onChanged();
  }

  // Many jobs changing at once make many events: reload at most every 500 ms, and only the
  // first page (a later page stays put while its reader reads it).
  let timer = null;
  function refreshSoon() {
    if (timer === null && cursors.length === 1) {
      timer = setTimeout(() => {
        timer = null;
        load();
      }, 500);
    }
  }

  /** The tab labels' counts, from a stats object. */
  function setCounts(stats) {
    for (const name of Object.keys(TABS)) setText(counts[name], fmtNumber(stats[name]));
  }

  const element = h("section", {class: "panel jobs-panel"},
    h("div", {class: "panel-head"}, h("h2", {}, "Jobs"), deadActions),
    h("div", {class: "tabs", role: "tablist", "aria-label": "Job states"}, tabs),
    searchForm, order,
    h("div", {id: "jobs-panel", role: "tabpanel"}, box, empty,
      h("div", {class: "pager"}, previous, pageLabel, nextButton)));
  select(state);

  return {
    element,
    setCounts,
    refreshSoon,
    stop() {
      clearTimeout(timer);
      timer = null;
    },
  };
}
