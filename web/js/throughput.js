// Throughput over the last minutes, computed in the browser from the `stats` snapshots: the
// lifetime totals of each queue (enqueued, succeeded, failed) only grow, so the rate between
// two snapshots is their difference over the time between them.

export const SERIES = ["enqueued", "succeeded", "failed"];

export class Throughput {
  constructor(windowMs = 5 * 60 * 1000) {
    this.windowMs = windowMs;
    this.points = []; // {t, rates: Map(queue -> {enqueued, succeeded, failed} per second)}
    this.previous = new Map(); // queue -> {t, totals}
  }

  /** Records one snapshot (`queues`: stats objects) received at time `t` (ms). */
  add(queues, t = Date.now()) {
    const rates = new Map();
    for (const stats of queues) {
      const totals = stats.totals || {};
      const before = this.previous.get(stats.queue);
      this.previous.set(stats.queue, {t, totals});
      if (!before || t <= before.t) continue;
      const seconds = (t - before.t) / 1000;
      const rate = {};
      for (const name of SERIES) {
        // A total can only fall when Redis lost data or a snapshot was restored: count 0.
        rate[name] = Math.max(0, (totals[name] || 0) - (before.totals[name] || 0)) / seconds;
      }
      rates.set(stats.queue, rate);
    }
    if (rates.size) this.points.push({t, rates});
    while (this.points.length && this.points[0].t < t - this.windowMs) this.points.shift();
  }

  /** {t: [...], enqueued: [...], succeeded: [...], failed: [...]} for one queue, or summed
   * over every queue when `queue` is null. */
  series(queue = null) {
    const out = {t: []};
    for (const name of SERIES) out[name] = [];
    for (const point of this.points) {
      const picked = queue === null ? [...point.rates.values()] : [point.rates.get(queue)];
      if (picked[0] === undefined) continue;
      out.t.push(point.t);
      for (const name of SERIES) out[name].push(picked.reduce((sum, r) => sum + r[name], 0));
    }
    return out;
  }

  /** The latest rates of one queue (or all), or null before two snapshots have arrived. */
  latest(queue = null) {
    const s = this.series(queue);
    if (!s.t.length) return null;
    const last = {};
    for (const name of SERIES) last[name] = s[name][s[name].length - 1];
    return last;
  }
}
