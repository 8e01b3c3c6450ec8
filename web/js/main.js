// The dashboard's entry point: hash routes, the shared context the views get, sign-in and
// sign-out, and the live feed that keeps every view current.
//
// Routes:  #/                 queues list
//          #/queues/<name>[/<state>]   one queue, its jobs of that state shown
//          #/jobs[/<id>]      job lookup
//          #/workers          live workers
// A view is a module with mount(root, ctx, params) answering {unmount()}.

import {api, describeError} from "./api.js";
import {clearKey, getKey} from "./auth.js";
import {setText, toast} from "./dom.js";
import {LiveFeed} from "./live.js";
import {Throughput} from "./throughput.js";
import * as jobView from "./views/job.js";
import {hideLogin, initLogin, showLogin} from "./views/login.js";
import * as queueView from "./views/queue.js";
import * as queuesView from "./views/queues.js";
import * as workersView from "./views/workers.js";

const live = new LiveFeed();
const throughput = new Throughput();
const root = document.getElementById("view");
let current = null;

/** What every view gets. */
const ctx = {
  throughput,
  /** Subscribes to a live event ("stats", "job" or "status") with fn(detail); answers the
   * unsubscribe. */
  on(type, fn) {
    const listener = (event) => fn(event.detail);
    live.addEventListener(type, listener);
    return () => live.removeEventListener(type, listener);
  },
  /** Runs a user action: asks `question` first (when given), then reports success with `done`
   * or the error. Answers false when the user declined; callers reload what they show. */
  async act(question, call, done) {
    if (question && !window.confirm(question)) return false;
    try {
      await call();
      toast(done);
    } catch (err) {
      ctx.fail(err);
    }
    return true;
  },
  /** Reports a failed request: a refused key sends the user to sign in again. */
  fail(err) {
    if (err && err.status === 401) {
      signedOut(getKey() ? "The server refused the API key: sign in again."
        : "Sign in with an API key.");
    } else {
      toast(describeError(err), "error");
    }
  },
};

// The throughput history is kept here, outside the views, so that it survives navigation.
live.addEventListener("stats", (event) => throughput.add(event.detail.queues || []));

live.addEventListener("status", (event) => {
  const status = document.getElementById("live-status");
  status.dataset.state = event.detail;
  setText(status, event.detail);
  if (event.detail === "unauthorized") signedOut("Sign in with an API key.");
});

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  if (parts[0] === "queues" && parts[1]) {
    return [queueView, {queue: parts[1], state: parts[2] || null}, "queues"];
  }
  if (parts[0] === "jobs") return [jobView, {id: parts[1] || null}, "jobs"];
  if (parts[0] === "workers") return [workersView, {}, "workers"];
  return [queuesView, {}];
}

function route() {
  if (current) current.unmount();
  root.replaceChildren();
  const [view, params, section = "queues"] = parseRoute();
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.view === section);
  }
  current = view.mount(root, ctx, params);
  root.focus({preventScroll: true});
}

function signedIn() {
  hideLogin();
  document.getElementById("logout").hidden = !getKey();
  live.start();
  route();
}

function signedOut(reason) {
  live.stop();
  if (current) current.unmount();
  current = null;
  root.replaceChildren();
  document.getElementById("logout").hidden = true;
  showLogin(reason);
}

document.getElementById("logout").addEventListener("click", async () => {
  try {
    await api.endSession(); // drops the SSE cookie where the server has sessions
  } catch {
    // no session route, or already gone: nothing to undo
  }
  clearKey();
  signedOut("Signed out.");
});

window.addEventListener("hashchange", () => {
  if (live.status !== "stopped" && live.status !== "unauthorized") route();
});

initLogin(signedIn);
signedIn();
