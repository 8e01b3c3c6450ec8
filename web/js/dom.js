// DOM helpers. Everything the dashboard shows is built here with createElement and
// textContent: user data (queue names, payloads, errors) is never parsed as HTML.

/**
 * h("a", {href: "#/x", class: "link", on: {click: fn}}, "text", childNode, ...)
 * Props: `class`, `on` (event listeners), `dataset`, DOM properties that exist on the element
 * (value, disabled, hidden, type, ...) and otherwise attributes. Inline event handler
 * attributes and inline styles are refused: the Content-Security-Policy forbids them anyway.
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (/^on./i.test(name) || name === "style") throw new Error(`h(): ${name} is not allowed`);
    if (name === "class") node.className = value;
    else if (name === "on") for (const [type, fn] of Object.entries(value)) node.addEventListener(type, fn);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name in node && typeof node[name] !== "function") node[name] = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

/** Appends children: nodes as they are, strings and numbers as text, arrays flattened. */
export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replaces every child of `node`. */
export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/** Sets text only when it changed (live updates every second should not churn the DOM). */
export function setText(node, text) {
  const value = String(text);
  if (node.textContent !== value) node.textContent = value;
}

const numberFormat = new Intl.NumberFormat();

export function fmtNumber(n) {
  return typeof n === "number" && Number.isFinite(n) ? numberFormat.format(n) : "—";
}

/** A rate per second: 0, 0.25, 3.5, 120. */
export function fmtRate(perSecond) {
  if (!Number.isFinite(perSecond)) return "—";
  const digits = perSecond >= 100 || perSecond === 0 ? 0 : perSecond >= 10 ? 1 : 2;
  return `${perSecond.toFixed(digits)}/s`;
}

/** An RFC 3339 time from the API in the dashboard's one format, always UTC and saying so:
 * "2026-12-02 01:40:05 UTC"; "—" when absent. (UTC as everywhere else in relayq: the API, the
 * CLI and the logs, so that a time read here can be searched for there.) */
export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** A <time> element in that format, with the exact instant (milliseconds) as its tooltip. */
export function timeEl(iso, props = {}) {
  return h("time", {...props, datetime: iso || null, title: iso || null}, fmtTime(iso));
}

/** A duration in milliseconds, short: 0 ms, 850 ms, 4.2 s, 3 min 5 s, 2 h 10 min, 3 d 4 h. */
export function fmtDuration(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.floor(s)} s`;
  const units = [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]];
  const parts = [];
  let rest = Math.floor(s);
  for (const [unit, size] of units) {
    if (rest >= size || parts.length) parts.push(`${Math.floor(rest / size)} ${unit}`);
    rest %= size;
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}

/** The message of a failure's text: for a Python traceback the first of the exception's own
 * lines (those after the last indented frame line), its class named without its module
 * ("DemoFailure: ..." for "relayq.worker.demo_app.DemoFailure: ..."), else the text's first
 * line. Answers {message, full}: `full` is the whole text when there is more to it. */
export function errorSummary(text) {
  const whole = String(text).replace(/\s+$/, "");
  const lines = whole.split("\n");
  let message = lines[0];
  if (/^Traceback \(most recent call last\):/m.test(whole)) {
    let last = lines.length - 1;
    while (last > 0 && !/^\s/.test(lines[last - 1])) last -= 1;
    const own = lines.slice(last).filter((line) => line.trim());
    if (own.length) message = own[0].replace(/^(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_]\w*(?::|$))/, "");
  }
  return {message, full: message === whole ? null : whole};
}

/** A failure shown as its message; the whole text (the traceback) opens with a click. */
export function errorEl(text, props = {}) {
  if (text === null || text === undefined || text === "") {
    return h("span", {...props, class: "empty"}, "—");
  }
  const {message, full} = errorSummary(text);
  if (full === null) return h("span", {...props, class: "error-text"}, message);
  return h("details", {...props, class: "error-details"},
    h("summary", {class: "error-text", title: message}, message),
    h("pre", {class: "error-text traceback"}, full));
}

/** Any JSON value as indented text (for <pre>); undefined and null read "null". */
export function fmtJson(value) {
  return JSON.stringify(value ?? null, null, 2);
}

/** The hash route to a queue (its jobs of `state` shown) or a job page (names and ids are
 * encoded). */
export function queueHref(name, state = null) {
  return `#/queues/${encodeURIComponent(name)}${state ? `/${encodeURIComponent(state)}` : ""}`;
}

export function jobHref(id) {
  return `#/jobs/${encodeURIComponent(id)}`;
}

/** A state (or an attempt's outcome) as a badge; the class only ever takes known names. */
const STATES = new Set(["waiting", "ready", "scheduled", "running", "succeeded", "dead", "cancelled",
  "paused", "retried", "reaped"]);

/** A job's progress (a fraction in [0, 1], or null: none reported) as a bar with its percent. */
export function progressBar(fraction, {dataset} = {}) {
  if (typeof fraction !== "number") return h("span", {class: "empty", dataset}, "—");
  const percent = Math.round(fraction * 100);
  return h("span", {class: "progress", dataset},
    h("progress", {max: 100, value: percent, "aria-label": `${percent}% done`}),
    ` ${percent}%`);
}

export function badge(state) {
  return h("span", {class: `badge ${STATES.has(state) ? `badge-${state}` : ""}`}, state);
}

/** Runs `build`, which redraws what `container` shows, keeping open every traceback that was
 * open (live updates redraw lists and job pages while someone reads one). */
export function keepingOpen(container, build) {
  const opened = new Set([...container.querySelectorAll("details[open] > pre")]
    .map((pre) => pre.textContent));
  build();
  if (!opened.size) return;
  for (const pre of container.querySelectorAll("details > pre")) {
    if (opened.has(pre.textContent)) pre.parentElement.open = true;
  }
}

/** A table inside a box that scrolls sideways by itself, so that a wide table never widens the
 * page (on a phone the page keeps its width and the table scrolls in its box). */
export function tableBox(table) {
  return h("div", {class: "table-box"}, table);
}

/** A short message at the bottom of the page; errors stay longer. */
export function toast(message, kind = "info") {
  const area = document.getElementById("toasts");
  const item = h("div", {class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status"},
    message);
  area.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}
