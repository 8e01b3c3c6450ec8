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

/** An RFC 3339 time from the API as local date and time (with milliseconds), or "—". */
export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** Any JSON value as indented text (for <pre>); undefined and null read "null". */
export function fmtJson(value) {
  return JSON.stringify(value ?? null, null, 2);
}

/** The hash route to a queue or a job page (names and ids are encoded). */
export function queueHref(name) {
  return `#/queues/${encodeURIComponent(name)}`;
}

export function jobHref(id) {
  return `#/jobs/${encodeURIComponent(id)}`;
}

/** A state name as a badge; the class only ever takes known state names. */
const STATES = new Set(["ready", "scheduled", "running", "succeeded", "dead", "cancelled", "paused"]);

export function badge(state) {
  return h("span", {class: `badge ${STATES.has(state) ? `badge-${state}` : ""}`}, state);
}

/** A short message at the bottom of the page; errors stay longer. */
export function toast(message, kind = "info") {
  const area = document.getElementById("toasts");
  const item = h("div", {class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status"},
    message);
  area.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}
