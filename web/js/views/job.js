// Job lookup by id: every field of the job's JSON view (payload, result, error, timestamps,
// progress) and its attempt history, refreshed when the job changes state or reports progress;
// cancel (a running job by request: 202, then "cancel requested"), requeue or purge where its
// state allows. A job of a workflow also shows its parents and children with their states
// (docs/workflows.md), as an indented list.

import {api} from "../api.js";
import {
  badge, errorEl, fmtJson, h, jobHref, keepingOpen, progressBar, queueHref, replace, tableBox,
  timeEl,
} from "../dom.js";

const GRAPH_LIMIT = 100;  // parents or children shown (and read) at most

const TIMES = {created_at: "Created", run_at: "Due", started_at: "Started",
  finished_at: "Finished", lease_deadline: "Lease deadline"};

export function mount(root, ctx, {id}) {
  const input = h("input", {name: "id", required: true, value: id ?? "", autocomplete: "off",
    placeholder: "job id, e.g. emails.1732300000000000001", "aria-label": "Job id"});
  const details = h("div", {class: "job-details", "aria-live": "polite"});
  root.append(
    h("h1", {}, "Find a job"),
    h("form", {class: "inline-form", on: {submit: (event) => {
      event.preventDefault();
      location.hash = jobHref(input.value.trim());
    }}}, input, h("button", {type: "submit"}, "Find")),
    details);

  async function act(question, call, done) {
    if (await ctx.act(question, call, done)) load();
  }

  function actions(job) {
    const buttons = [];
    if (job.state === "ready" || job.state === "scheduled" || job.state === "waiting") {
      buttons.push(h("button", {type: "button", on: {click: () =>
        act(`Cancel job ${job.id}?`, () => api.cancelJob(job.id), `Cancelled ${job.id}`)}},
      "Cancel"));
    }
    if (job.state === "running" && job.cancel_requested) {
      buttons.push(badge("cancel requested"));
    } else if (job.state === "running") {
      buttons.push(h("button", {type: "button", on: {click: () =>
        act(`Cancel running job ${job.id}? Its handler is asked to stop.`,
          () => api.cancelJob(job.id), `Cancel requested for ${job.id}`)}}, "Cancel"));
    }
    if (job.state === "dead") {
      buttons.push(
        h("button", {type: "button", on: {click: () =>
          act(null, () => api.requeueDead(job.queue, job.id), `Requeued ${job.id}`)}},
        "Requeue"),
        h("button", {type: "button", class: "danger", on: {click: () =>
          act(`Delete dead job ${job.id} for good?`, () => api.purgeDead(job.queue, job.id),
            `Purged ${job.id}`)}}, "Purge"));
    }
    return h("div", {class: "actions"}, buttons);
  }

  function row(label, ...value) {
    return [h("dt", {}, label), h("dd", {}, ...value)];
  }

  function render(job, states) {
    keepingOpen(details, () => show(job, states));
  }

  /** The states of the job's parents and children (the first GRAPH_LIMIT of each), by id;
   * "expired" for one that is gone. */
  async function related(job) {
    const ids = [...(job.depends_on ?? []).slice(0, GRAPH_LIMIT),
      ...(job.children ?? []).slice(0, GRAPH_LIMIT)];
    const states = new Map();
    await Promise.all(ids.map(async (other) => {
      try {
        states.set(other, (await api.getJob(other)).state);
      } catch (err) {
        if (err.status !== 404) throw err;
        states.set(other, "expired");
      }
    }));
    return states;
  }

  /** Parents, then this job, then its children, each with its state: an indented list. */
  function graph(job, states) {
    const parents = job.depends_on ?? [];
    const children = job.children ?? [];
    if (!parents.length && !children.length) return [];
    const item = (other) => h("li", {dataset: {job: other}},
      h("a", {href: jobHref(other)}, other), " ", badge(states.get(other) ?? "unknown"));
    const more = (ids) => ids.length > GRAPH_LIMIT
      ? [h("li", {class: "empty"}, `and ${ids.length - GRAPH_LIMIT} more`)] : [];
    const list = (ids, name) => h("ul", {class: "graph", dataset: {graph: name}},
      ids.slice(0, GRAPH_LIMIT).map(item), more(ids));
    const self = h("li", {class: "graph-self"}, h("strong", {}, job.id), " ", badge(job.state),
      job.on_parent_failure === "run" ? " (runs even if a parent fails)" : "",
      children.length ? [h("div", {}, `Children (${children.length})`),
        list(children, "children")] : []);
    return [h("h3", {}, "Workflow"), h("ul", {class: "graph workflow"},
      parents.length ? [h("li", {}, `Parents (${parents.length})`, list(parents, "parents"))]
        : [],
      self)];
  }

  function show(job, states) {
    replace(details,
      h("div", {class: "page-head"}, h("h2", {}, job.id), badge(job.state), actions(job)),
      h("dl", {class: "fields"},
        row("Queue", h("a", {href: queueHref(job.queue)}, job.queue)),
        row("Type", job.type ?? "—"),
        row("Priority", String(job.priority)),
        row("Attempts", `${job.attempts} of ${job.max_attempts}`),
        row("Progress", progressBar(job.progress, {dataset: {field: "progress"}}),
          job.progress_info == null ? "" : h("code", {class: "progress-info"},
            " ", fmtJson(job.progress_info))),
        row("Worker", job.worker_id ?? "—"),
        row("Idempotency key", job.idempotency_key ?? "—"),
        row("Trace", job.trace ?? "—"),  // the W3C traceparent of its enqueue (OpenTelemetry)
        Object.entries(TIMES).map(([name, label]) => row(label,
          timeEl(job[name], {dataset: {field: name}})))),
      h("h3", {}, "Payload"), h("pre", {class: "json", dataset: {field: "payload"}},
        fmtJson(job.payload)),
      h("h3", {}, "Result"), h("pre", {class: "json", dataset: {field: "result"}},
        fmtJson(job.result)),
      h("h3", {}, "Last error"), errorEl(job.last_error, {dataset: {field: "last_error"}}),
      graph(job, states),
      h("h3", {}, "Attempt history"), history(job));
  }

  /** Its attempts, newest first: the one running or that succeeded (from the job's own fields),
   * then the earlier ones that failed or were lost (`history`, the newest few the server keeps),
   * each with its worker, start, end, outcome and error message. */
  function history(job) {
    const attempts = Array.isArray(job.history) ? [...job.history] : [];
    if ((job.state === "running" || job.state === "succeeded") && job.started_at) {
      attempts.unshift({worker_id: job.worker_id, started_at: job.started_at,
        finished_at: job.finished_at, outcome: job.state, error: null});
    }
    if (!attempts.length) return h("p", {class: "empty"}, "Not run yet.");
    const rows = attempts.map((attempt, i) => h("tr", {dataset: {attempt: String(i)}},
      h("td", {}, attempt.worker_id ?? "—"),
      h("td", {}, timeEl(attempt.started_at)),
      h("td", {}, timeEl(attempt.finished_at)),
      h("td", {}, attempt.outcome ? badge(String(attempt.outcome)) : "—"),
      h("td", {class: "error-cell"}, errorEl(attempt.error))));
    return tableBox(h("table", {class: "history"},
      h("thead", {}, h("tr", {},
        ["Worker", "Started", "Finished", "Outcome", "Error"].map((label) =>
          h("th", {scope: "col"}, label)))),
      h("tbody", {}, rows)));
  }

  async function load() {
    if (!id) return;
    try {
      const job = await api.getJob(id);
      render(job, await related(job));
    } catch (err) {
      if (err.status === 404 || err.status === 400) {
        replace(details, h("p", {class: "empty"}, err.status === 404
          ? `No job ${id} (it never existed, or it finished and expired).` : err.message));
      } else {
        ctx.fail(err);
      }
    }
  }

  load();
  const unsubscribes = [
    ctx.on("job", (event) => {
      if (Array.isArray(event.ids) && event.ids.includes(id)) load();
    }),
    // Events sent while the feed was (re)connecting are lost: reload once it is live again, or
    // a job that changed state in that gap would show its old state until the next change.
    ctx.on("status", (status) => {
      if (status === "live") load();
    }),
  ];
  return {unmount: () => unsubscribes.forEach((unsubscribe) => unsubscribe())};
}
