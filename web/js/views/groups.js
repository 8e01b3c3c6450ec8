// The groups of one queue (fair queues, docs/fair-queues.md), a panel of the queue page: the top
// groups by backlog with their ready and running jobs, their own limits (— : the queue's
// default) and state, and a form per group to set its limits or clear them. The queue's figures
// (groups with ready jobs, at their limit, throttled) head it. Reloaded every few seconds and
// after each action; every value is shown as text (dom.js).

import {api} from "../api.js";
import {badge, fmtNumber, h, replace, setText} from "../dom.js";

const REFRESH_MS = 3000;
const TOP = 10;

export function createGroupPanel(ctx, queue) {
  const body = h("tbody");
  const summary = h("p", {class: "groups-summary"}, "—");
  const empty = h("p", {class: "empty"}, "No groups: jobs enqueued with a group show here.");
  const table = h("table", {class: "groups", hidden: true},
    h("thead", {}, h("tr", {}, ["Group", "Ready", "Running", "Max running", "Rate", "Burst",
      "State", "Limits"].map((name) => h("th", {scope: "col"}, name)))),
    body);
  const element = h("section", {class: "panel", dataset: {panel: "groups"}},
    h("h2", {}, "Groups (top by backlog)"), summary, empty, table);

  const own = (value) => (value === null || value === undefined ? "—" : String(value));

  function limitsForm(g) {
    const input = (name, value, attrs) => h("input", {name, type: "number", value: value ?? "",
      placeholder: name.replace("_", " "), "aria-label": `${name} of ${g.group}`, ...attrs});
    const maxRunning = input("max_running", g.max_running, {min: 0, step: 1});
    const rate = input("rate", g.rate, {min: 0, step: "any"});
    const burst = input("burst", g.burst, {min: 1, step: 1});
    const clear = h("button", {type: "button", on: {click: () => act(
      () => api.clearGroupLimits(queue, g.group), `Limits of ${g.group} cleared`)}}, "Clear");
    function save(event) {
      event.preventDefault();
      const limits = {};
      for (const [name, field] of [["max_running", maxRunning], ["rate", rate],
        ["burst", burst]]) {
        if (field.value !== "") limits[name] = Number(field.value);
      }
      act(() => api.setGroupLimits(queue, g.group, limits), `Limits of ${g.group} set`);
    }
    return h("form", {class: "inline-form", on: {submit: save}}, maxRunning, rate, burst,
      h("button", {type: "submit"}, "Set"), clear);
  }

  function row(g) {
    return h("tr", {dataset: {group: g.group}},
      h("td", {}, g.group), h("td", {}, fmtNumber(g.ready)), h("td", {}, fmtNumber(g.running)),
      h("td", {}, own(g.max_running)), h("td", {}, own(g.rate)), h("td", {}, own(g.burst)),
      h("td", {}, g.state === "ready" || g.state === "idle" ? g.state : badge(g.state)),
      h("td", {class: "actions"}, limitsForm(g)));
  }

  let editing = false;
  element.addEventListener("focusin", () => { editing = true; });
  element.addEventListener("focusout", () => { editing = false; });

  function render(page) {
    const groups = page.groups || [];
    setText(summary, `${fmtNumber(page.total)} groups: ${fmtNumber(page.with_ready)} with ` +
      `ready jobs, ${fmtNumber(page.limited)} at their limit, ${fmtNumber(page.throttled)} ` +
      "throttled");
    empty.hidden = groups.length > 0;
    table.hidden = groups.length === 0;
    if (!editing) replace(body, groups.map(row));  // never under the cursor of someone typing
  }

  function refresh() {
    api.groups(queue, TOP).then(render).catch(ctx.fail);
  }

  async function act(call, done) {
    editing = false;
    await ctx.act(null, call, done);
    refresh();
  }

  refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return {element, refresh, stop: () => clearInterval(timer)};
}
