// A small line chart on a <canvas>, drawn by hand (no chart library): jobs per second over
// the throughput window, one line per series. Colours come from the CSS custom properties
// --series-<name> on the canvas, so the stylesheet owns the palette (and dark mode).

import {h} from "./dom.js";
import {SERIES} from "./throughput.js";

/** A canvas with its HTML legend; call `draw(series, windowMs)` to repaint it. */
export function createChart(label) {
  const canvas = h("canvas", {class: "chart", role: "img", "aria-label": label});
  const legend = h("ul", {class: "legend"},
    SERIES.map((name) => h("li", {}, h("span", {class: `swatch swatch-${name}`}), name)));
  const figure = h("figure", {class: "chart-box"}, canvas, legend);
  return {
    element: figure,
    draw(series, windowMs) {
      draw(canvas, series, windowMs);
      const last = SERIES.map((name) => {
        const values = series[name];
        return `${name} ${values.length ? values[values.length - 1].toFixed(2) : "0"}/s`;
      });
      canvas.setAttribute("aria-label", `${label}: ${last.join(", ")}`);
    },
  };
}

/** A round upper bound for the y axis: 1, 2, 5, 10, 20, 50, ... */
function niceCeiling(value) {
  if (value <= 1) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (value <= step * magnitude) return step * magnitude;
  return 10 * magnitude;
}

function draw(canvas, series, windowMs) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (!width || !height) return; // not laid out (hidden): nothing to draw
  if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
  if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);

  const style = getComputedStyle(canvas);
  const color = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
  const pad = {left: 48, right: 8, top: 8, bottom: 20};
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const now = Date.now();
  const x = (t) => pad.left + plotW * (1 - (now - t) / windowMs);
  const top = niceCeiling(Math.max(0, ...SERIES.flatMap((name) => series[name])));
  const y = (v) => pad.top + plotH * (1 - v / top);

  // Grid and axis labels.
  ctx.font = `11px ${style.fontFamily || "sans-serif"}`;
  ctx.fillStyle = color("--chart-text", "#666");
  ctx.strokeStyle = color("--chart-grid", "#ddd");
  ctx.lineWidth = 1;
  ctx.textBaseline = "middle";
  ctx.textAlign = "right";
  // 2·10^k splits into 4 steps, 1·10^k and 5·10^k into 5: every label stays round.
  const steps = String(top)[0] === "2" ? 4 : 5;
  for (let i = 0; i <= steps; i++) {
    const v = (top * i) / steps;
    const gy = Math.round(y(v)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(pad.left, gy);
    ctx.lineTo(width - pad.right, gy);
    ctx.stroke();
    ctx.fillText(`${Number.isInteger(v) ? v : Number(v.toFixed(2))}/s`, pad.left - 6, gy);
  }
  ctx.textBaseline = "top";
  const minutes = Math.round(windowMs / 60000);
  for (let m = minutes; m >= 0; m--) {
    // The end labels align inwards so that they are not cut off.
    ctx.textAlign = m === minutes ? "left" : m === 0 ? "right" : "center";
    ctx.fillText(m === 0 ? "now" : `-${m}m`, x(now - m * 60000), height - pad.bottom + 5);
  }

  // One line per series.
  ctx.lineWidth = 2;
  ctx.lineJoin = "round";
  for (const name of SERIES) {
    const values = series[name];
    if (!values.length) continue;
    ctx.strokeStyle = color(`--series-${name}`, "#333");
    ctx.beginPath();
    values.forEach((v, i) => {
      const px = Math.max(pad.left, x(series.t[i]));
      if (i === 0) ctx.moveTo(px, y(v));
      else ctx.lineTo(px, y(v));
    });
    ctx.stroke();
  }
}
