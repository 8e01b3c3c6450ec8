// Live updates over Server-Sent Events from GET /api/events, reconnecting on its own.
//
// EventSource cannot send an Authorization header, so before each connection the feed picks
// how to authenticate (web/README.md has the contract):
//   1. cookie: POST /api/session with the Bearer key; a server that implements it answers 2xx
//      with an HttpOnly cookie, which the same-origin EventSource then carries;
//   2. query:  when that route is missing (404/405), the key goes in ?access_token=.
// Before connecting it also checks that the key is accepted, so a refused key ends in the
// "unauthorized" status (and the login form) instead of endless reconnects.
//
// Events dispatched: "stats" (detail: {queues: [...]}), "job" (detail: {queue, state, ids}),
// "status" (detail: "connecting" | "live" | "reconnecting" | "unauthorized" | "stopped").
//
// A feed of one queue (`new LiveFeed({queue})`) reads that queue's durable event log: its job
// events carry ids (detail.id too), and it also dispatches "reset" (the log no longer held the
// position: events were lost, reload). The browser resumes it after the last id by itself
// (Last-Event-ID); when this feed opens a new EventSource instead (a refused or stale stream),
// it asks for `since=` the last id it saw, so no event is lost across reconnects either way.

import {api} from "./api.js";
import {getKey} from "./auth.js";

const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30000;

export class LiveFeed extends EventTarget {
  /** staleAfterMs: with stats sent about every second, this long without any event means the
   * connection is dead even if the socket looks open (a proxy holding it): reconnect. */
  constructor({staleAfterMs = 10000, queue = null} = {}) {
    super();
    this.staleAfterMs = staleAfterMs;
    this.queue = queue;
    this.lastEventId = ""; // a queue feed's position in the log: where a new stream resumes
    this.status = "stopped";
    this.source = null;
    this.retryMs = FIRST_RETRY_MS;
    this.retryTimer = null;
    this.watchdog = null;
    this.lastEventAt = 0;
    this.generation = 0; // bumps on stop/restart, so stale async work can tell it is stale
  }

  start() {
    this.stop();
    this.generation += 1;
    this.retryMs = FIRST_RETRY_MS;
    this.watchdog = setInterval(() => this.checkStale(), 1000);
    this.connect("connecting");
  }

  stop() {
    this.generation += 1;
    this.closeSource();
    clearTimeout(this.retryTimer);
    clearInterval(this.watchdog);
    this.retryTimer = this.watchdog = null;
    this.setStatus("stopped");
  }

  setStatus(status) {
    if (status === this.status) return;
    this.status = status;
    this.dispatchEvent(new CustomEvent("status", {detail: status}));
  }

  closeSource() {
    if (this.source) {
      this.source.close();
      this.source = null;
    }
  }

  async connect(status) {
    const generation = this.generation;
    this.setStatus(status);
    let url;
    try {
      url = await this.eventsUrl();
    } catch (err) {
      if (generation !== this.generation) return;
      if (err.status === 401) {
        this.stop();
        this.setStatus("unauthorized");
      } else {
        this.scheduleReconnect();
      }
      return;
    }
    if (generation !== this.generation) return;
    const source = new EventSource(url, {withCredentials: true});
    this.source = source;
    this.lastEventAt = Date.now();
    source.addEventListener("open", () => {
      this.retryMs = FIRST_RETRY_MS;
      this.lastEventAt = Date.now();
      this.setStatus("live");
    });
    source.addEventListener("stats", (event) => this.deliver("stats", event));
    source.addEventListener("job", (event) => this.deliver("job", event));
    source.addEventListener("reset", (event) => this.deliver("reset", event));
    source.addEventListener("error", () => {
      if (source !== this.source) return;
      if (source.readyState === EventSource.CLOSED) {
        // The server refused the stream (e.g. 401) or answered something that is not SSE:
        // the browser gives up, so we start over, checking the key again first.
        this.closeSource();
        this.scheduleReconnect();
      } else {
        this.setStatus("reconnecting"); // the browser retries by itself
      }
    });
  }

  async eventsUrl() {
    const key = getKey();
    const params = new URLSearchParams();
    if (this.queue) params.set("queue", this.queue);
    if (this.queue && this.lastEventId) params.set("since", this.lastEventId);
    const url = () => (params.toString() ? `/api/events?${params}` : "/api/events");
    if (key) {
      try {
        await api.startSession();
        return url();
      } catch (err) {
        if (err.status !== 404 && err.status !== 405) throw err;
      }
    }
    await api.listQueues(); // throws a 401 ApiError when the key (or no key) is refused
    if (key) params.set("access_token", key);
    return url();
  }

  deliver(type, event) {
    this.lastEventAt = Date.now();
    // Every event carries the stream's last id (a queue stream's first message sets it to
    // where the stream starts, before any job event).
    if (this.queue && event.lastEventId) this.lastEventId = event.lastEventId;
    if (this.status !== "live") this.setStatus("live");
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      console.warn(`relayq: ignoring a ${type} event that is not JSON`);
      return;
    }
    this.dispatchEvent(new CustomEvent(type, {detail: data}));
  }

  scheduleReconnect() {
    clearTimeout(this.retryTimer);
    this.setStatus("reconnecting");
    const delay = this.retryMs * (0.5 + Math.random() / 2); // jitter: clients spread out
    this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    this.retryTimer = setTimeout(() => this.connect("reconnecting"), delay);
  }

  checkStale() {
    if (this.source && Date.now() - this.lastEventAt > this.staleAfterMs) {
      this.closeSource();
      this.scheduleReconnect();
    }
  }
}
