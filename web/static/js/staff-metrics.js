// Today's metrics: key figures, orders by status (CSS bars) and per hour (an inline SVG bar
// chart with a text alternative), and queue depths. Refreshed every 30 s and on demand.

import { $, clock } from "./util.js";
import { problemMessage, staffApi } from "./staff-common.js";

const LABELS = { pending: "Pending", confirmed: "Confirmed", preparing: "Preparing", ready: "Ready", picked_up: "Picked up", cancelled: "Cancelled", expired: "Expired" };
const SVG = "http://www.w3.org/2000/svg";

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text != null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text != null) node.textContent = text;
  return node;
}

const minutes = (value) => (value == null ? "–" : `${value.toFixed(1)} min`);

function byStatus(counts) {
  const entries = Object.keys(LABELS).map((key) => [key, counts[key] || 0]);
  const max = Math.max(1, ...entries.map(([, count]) => count));
  $("[data-by-status]").replaceChildren(
    ...entries.map(([key, count]) => {
      const li = el("li", null, "bar-row");
      const bar = el("span", null, `bar status-${key}`);
      bar.style.setProperty("--share", `${(count / max) * 100}%`);
      const track = el("span", null, "bar-track");
      track.setAttribute("aria-hidden", "true");
      track.append(bar);
      li.append(el("span", LABELS[key], "bar-label"), track, el("span", String(count), "bar-value"));
      return li;
    }),
  );
}

function perHour(hours) {
  const box = $("[data-per-hour]");
  const first = hours.findIndex((hour) => hour.orders > 0);
  const last = hours.length - 1 - [...hours].reverse().findIndex((hour) => hour.orders > 0);
  const shown = first < 0 ? [] : hours.slice(first, last + 1);
  const data = shown.length ? shown : hours.slice(-8);
  if (!data.length) {
    box.replaceChildren(el("p", "No orders yet today.", "muted"));
    return;
  }
  const max = Math.max(1, ...data.map((hour) => hour.orders));
  const width = Math.max(320, data.length * 44);
  const height = 200;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "hour-svg", role: "img", "aria-labelledby": "per-hour-desc" });
  chart.append(svg("title", { id: "per-hour-desc" }, `Orders per hour: ${data.map((hour) => `${hour.hour} ${hour.orders}`).join(", ")}.`));
  const plot = height - 40;
  chart.append(svg("line", { x1: 0, x2: width, y1: plot + 10, y2: plot + 10, class: "axis" }));
  data.forEach((hour, index) => {
    const x = index * (width / data.length) + 6;
    const barWidth = width / data.length - 12;
    const barHeight = Math.round((hour.orders / max) * (plot - 20));
    chart.append(svg("rect", { x, y: plot + 10 - barHeight, width: barWidth, height: barHeight, rx: 4, class: "hour-bar" }));
    chart.append(svg("text", { x: x + barWidth / 2, y: plot + 4 - barHeight, "text-anchor": "middle", class: "hour-count" }, hour.orders));
    chart.append(svg("text", { x: x + barWidth / 2, y: height - 8, "text-anchor": "middle", class: "hour-label" }, hour.hour.slice(0, 2)));
  });
  box.replaceChildren(chart);
}

function queues(list) {
  $("[data-queues]").replaceChildren(
    ...list.map((queue) => {
      const tr = el("tr");
      const name = el("th", queue.name);
      name.scope = "row";
      if (queue.error) {
        const cell = el("td", "unreachable", "muted");
        cell.colSpan = 2;
        tr.append(name, cell);
      } else {
        tr.append(name, el("td", String(queue.visible ?? "–"), `num${queue.name.includes("dlq") && queue.visible ? " strong danger" : ""}`), el("td", String(queue.in_flight ?? "–"), "num"));
      }
      return tr;
    }),
  );
}

async function load() {
  const result = await staffApi("/api/admin/metrics").catch(() => null);
  const error = $("[data-metrics-error]");
  if (!result || !result.ok) {
    error.textContent = problemMessage(result, "The metrics could not be loaded.");
    error.hidden = false;
    return;
  }
  error.hidden = true;
  const data = result.data;
  $('[data-kpi="orders"]').textContent = String(data.orders_today);
  $('[data-kpi="avg"]').textContent = minutes(data.preparation.average_minutes);
  $('[data-kpi="p90"]').textContent = minutes(data.preparation.p90_minutes);
  $('[data-kpi="low"]').textContent = data.low_stock_count == null ? "–" : String(data.low_stock_count);
  $('[data-kpi="failures"]').textContent = String(data.notification_failures_today);
  byStatus(data.orders_by_status);
  perHour(data.orders_per_hour);
  queues(data.queues);
  $("[data-metrics-stamp]").textContent = `${data.date}, updated ${clock(data.generated_at)}`;
  $("[data-metrics]").setAttribute("aria-busy", "false");
}

export async function init() {
  $("[data-metrics-refresh]").addEventListener("click", load);
  setInterval(() => {
    if (!document.hidden) load();
  }, 30000);
  await load();
}
