// A queue page: live depth, latency and totals, its jobs per state (with the dead-letter queue),
// its periodic schedules, throughput, pause/resume, the rate limit, the enqueue form and the
// live event view of this queue: its durable event log (state changes, progress, cancel
// requests) over a feed of its own that resumes after the last event it showed, so a reconnect
// loses nothing (a `reset` says when the log no longer held the position).

import {api} from "../api.js";
import {createChart} from "../chart.js";
import {LiveFeed} from "../live.js";
import {badge, fmtDuration, fmtNumber, fmtTime, h, jobHref, setText} from "../dom.js";
import {createEnqueueForm} from "./enqueue.js";
import {createJobBrowser} from "./jobs.js";
import {createGroupPanel} from "./groups.js";
import {createSchedulePanel} from "./schedules.js";

const STATES = ["ready", "scheduled", "running", "dead", "succeeded"];
const TOTALS = ["enqueued", "claimed", "succeeded", "failed", "retried", "dead", "reaped",
  "throttled", "cancelled"];
const ACTIVITY = 20;

export function mount(root, ctx, {queue, state}) {
  const depth = {};
  const depthCards = STATES.map((state) => {
    depth[state] = h("span", {class: "value"}, "—");
    return h("div", {class: "card", dataset: {state}}, depth[state], h("span", {}, state));
  });
  const latency = h("span", {class: "value"}, "—");
  depthCards.push(h("div", {class: "card", dataset: {state: "latency"},
    title: "How long the oldest ready job has waited"}, latency, h("span", {}, "latency")));
  const totals = {};
  const totalsRow = TOTALS.map((name) => {
    totals[name] = h("dd", {dataset: {total: name}}, "—");
    return h("div", {}, h("dt", {}, name), totals[name]);
  });
  const pausedBadge = h("span", {hidden: true}, badge("paused"));
  const toggle = h("button", {type: "button", on: {click: togglePause}}, "Pause");
  const limitText = h("span", {class: "limit"}, "—");
  const rate = h("input", {name: "rate", type: "number", min: 0.001, step: "any", required: true,
    placeholder: "jobs/s", "aria-label": "Rate (jobs per second)"});
  const burst = h("input", {name: "burst", type: "number", min: 1, step: 1,
    placeholder: "burst", "aria-label": "Burst"});
  const clearLimit = h("button", {type: "button", on: {click: () =>
    act(() => api.clearRateLimit(queue), "Rate limit cleared")}}, "Clear");
  const chart = createChart(`Jobs per second, ${queue}`);
  const jobs = createJobBrowser(ctx, queue, state, () => refresh());
  const schedules = createSchedulePanel(ctx, queue);
  const groups = createGroupPanel(ctx, queue);
  const activity = h("ol", {class: "activity", "aria-live": "polite"});
  const feedStatus = h("span", {class: "feed-status", dataset: {state: "connecting"}},
    "connecting");
  let current = null;

  root.append(
    h("div", {class: "page-head"}, h("h1", {}, queue), pausedBadge, toggle),
    h("section", {class: "panel"}, h("h2", {}, "Depth"), h("div", {class: "cards"}, depthCards),
      h("h3", {}, "Lifetime totals"), h("dl", {class: "totals"}, totalsRow)),
    jobs.element,
    groups.element,
    schedules.element,
    h("section", {class: "panel"}, h("h2", {}, "Throughput"), chart.element),
    h("section", {class: "panel"}, h("h2", {}, "Rate limit"),
      h("p", {}, "Current: ", limitText),
      h("form", {class: "inline-form", on: {submit: setLimit}}, rate, burst,
        h("button", {type: "submit"}, "Set"), clearLimit)),
    h("section", {class: "panel"}, h("h2", {}, "Enqueue a job"), createEnqueueForm(ctx, queue)),
    h("section", {class: "panel events-panel"},
      h("div", {class: "panel-head"}, h("h2", {}, "Events"), feedStatus), activity));

  function render(stats) {
    current = stats;
    for (const state of STATES) setText(depth[state], fmtNumber(stats[state]));
    setText(latency, fmtDuration(stats.latency_ms));
    jobs.setCounts(stats);
    for (const name of TOTALS) setText(totals[name], fmtNumber((stats.totals || {})[name] ?? 0));
    pausedBadge.hidden = !stats.paused;
    setText(toggle, stats.paused ? "Resume" : "Pause");
    setText(limitText, stats.rate_limit
      ? `${stats.rate_limit.rate} jobs/s, burst ${stats.rate_limit.burst}` : "none");
    clearLimit.disabled = !stats.rate_limit;
    chart.draw(ctx.throughput.series(queue), ctx.throughput.windowMs);
  }

  async function act(call, done) {
    await ctx.act(null, call, done);
    refresh();
  }

  function togglePause() {
    if (current && current.paused) act(() => api.resume(queue), `Resumed ${queue}`);
    else act(() => api.pause(queue), `Paused ${queue}`);
  }

  function setLimit(event) {
    event.preventDefault();
    const value = Number(rate.value);
    const b = burst.value === "" ? undefined : Number(burst.value);
    act(() => api.setRateLimit(queue, value, b), `Rate limit set to ${value}/s`);
  }

  function refresh() {
    api.queueStats(queue).then(render).catch(ctx.fail);
  }

  function onJob(event) {
    if (event.queue !== queue) return;
    jobs.refreshSoon();
    const ids = Array.isArray(event.ids) ? event.ids : [];
    const shown = ids.slice(0, 5).map((id) => h("a", {href: jobHref(id)}, id));
    const more = ids.length > shown.length ? ` and ${ids.length - shown.length} more` : "";
    const percent = event.state === "progress" && typeof event.progress === "number"
      ? ` ${Math.round(event.progress * 100)}%` : "";
    show(h("li", {dataset: {event: event.id ?? ""}},
      h("time", {}, fmtTime(event.at ?? new Date().toISOString())), " ",
      badge(String(event.state)), " ", shown.flatMap((a, i) => (i ? [", ", a] : [a])), more,
      percent));
  }

  function onReset() {
    show(h("li", {class: "reset", dataset: {event: "reset"}},
      "Some events were lost (the log no longer held them): reloaded."));
    refresh();
    jobs.refreshSoon();
  }

  function show(item) {
    activity.prepend(item);
    while (activity.childElementCount > ACTIVITY) activity.lastElementChild.remove();
  }

  // State changes arrive as `job` events; a changed count also catches requeues and purges made
  // elsewhere (which send no event).
  let lastCounts = null;
  function onStats(snapshot) {
    const stats = (snapshot.queues || []).find((s) => s.queue === queue);
    if (!stats) return;
    render(stats);
    const counts = STATES.map((state) => stats[state]).join();
    if (lastCounts !== null && counts !== lastCounts) jobs.refreshSoon();
    lastCounts = counts;
  }

  refresh();
  const offStats = ctx.on("stats", onStats);
  const feed = new LiveFeed({queue});
  feed.addEventListener("job", (event) => onJob(event.detail));
  feed.addEventListener("reset", onReset);
  feed.addEventListener("status", (event) => {
    feedStatus.dataset.state = event.detail;
    setText(feedStatus, event.detail);
  });
  feed.start();
  return {
    unmount() {
      offStats();
      feed.stop();
      jobs.stop();
      schedules.stop();
      groups.stop();
    },
  };
}
