// The HTTP API client: one function per route the dashboard uses (see web/README.md for the
// contract). Every request carries `Authorization: Bearer <key>` when a key is stored; errors
// come back as ApiError with the server's {"error": {"code", "message"}}.

import {getKey} from "./auth.js";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** fetch() with the key, JSON in and out. Answers the parsed body (null when empty). */
export async function request(method, path, body) {
  const headers = {Accept: "application/json"};
  const key = getKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin", cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, "network", `Cannot reach the server (${err.message})`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = data && data.error ? data.error : {};
    throw new ApiError(response.status, error.code || `http_${response.status}`,
      error.message || `${method} ${path} failed: HTTP ${response.status}`);
  }
  return data;
}

const q = (name) => `/api/queues/${encodeURIComponent(name)}`;
const job = (id) => `/api/jobs/${encodeURIComponent(id)}`;

export const api = {
  listQueues: () => request("GET", "/api/queues"),
  queueStats: (name) => request("GET", q(name)),
  pause: (name) => request("POST", `${q(name)}/pause`),
  resume: (name) => request("POST", `${q(name)}/resume`),
  setRateLimit: (name, rate, burst) =>
    request("PUT", `${q(name)}/rate-limit`, burst === undefined ? {rate} : {rate, burst}),
  clearRateLimit: (name) => request("DELETE", `${q(name)}/rate-limit`),
  // fair queues: the top groups by backlog, a group's own limits
  groups: (name, limit) => request("GET", `${q(name)}/groups?limit=${limit}`),
  setGroupLimits: (name, group, limits) =>
    request("PUT", `${q(name)}/groups/${encodeURIComponent(group)}/limits`, limits),
  clearGroupLimits: (name, group) =>
    request("DELETE", `${q(name)}/groups/${encodeURIComponent(group)}/limits`),
  enqueue: (name, body) => request("POST", `${q(name)}/jobs`, body),
  /** One page of the jobs of `state` in queue `name`; `search` filters by id, type or error. */
  jobs: (name, state, limit, cursor, search) => {
    const params = new URLSearchParams({state, limit: String(limit)});
    if (cursor) params.set("cursor", cursor);
    if (search) params.set("q", search);
    return request("GET", `${q(name)}/jobs?${params}`);
  },
  requeueDead: (name, id) => request("POST", `${q(name)}/dead/${encodeURIComponent(id)}/requeue`),
  requeueAllDead: (name) => request("POST", `${q(name)}/dead/requeue`),
  purgeDead: (name, id) => request("DELETE", `${q(name)}/dead/${encodeURIComponent(id)}`),
  purgeAllDead: (name) => request("DELETE", `${q(name)}/dead`),
  schedules: (name) => request("GET", `${q(name)}/schedules`),
  pauseSchedule: (name, id) =>
    request("POST", `${q(name)}/schedules/${encodeURIComponent(id)}/pause`),
  resumeSchedule: (name, id) =>
    request("POST", `${q(name)}/schedules/${encodeURIComponent(id)}/resume`),
  triggerSchedule: (name, id) =>
    request("POST", `${q(name)}/schedules/${encodeURIComponent(id)}/trigger`),
  workers: () => request("GET", "/api/workers"),
  getJob: (id) => request("GET", job(id)),
  cancelJob: (id) => request("DELETE", job(id)),
  // Optional route (see web/README.md): trades the key for an HttpOnly cookie that the
  // EventSource carries. A server without it answers 404 or 405.
  startSession: () => request("POST", "/api/session"),
  endSession: () => request("DELETE", "/api/session"),
};

/** A human sentence for an error, naming the missing scope on a 403. */
export function describeError(err) {
  if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
  if (err.status === 401) return "The server refused the API key: sign in again.";
  if (err.status === 403) return `Not allowed with this API key: ${err.message}`;
  return err.message;
}
