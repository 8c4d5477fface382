// Live order status: Server-Sent Events from /api/orders/{id}/events (with the lookup token
// this browser kept), reconnecting when the connection drops; while the stream is not
// available, the status is polled every few seconds instead. A browser notification says
// when the order is ready, if the shopper allowed it.

import { $, $$, orders, readJSON, when } from "./util.js";

const POLL_MS = 4000;
const STREAM_RETRY_MS = 30000;
const STEPS = ["pending", "confirmed", "preparing", "ready", "picked_up"];
const STATE_TEXT = { done: "(done)", current: "(current step)", upcoming: "(to come)", skipped: "(skipped)" };

let data;
let view;
let source = null;
let pollTimer = null;
let streamRetry = null;
let everConnected = false;

function stepStates(status) {
  const position = STEPS.indexOf(status);
  if (position < 0) return STEPS.map((_, index) => (index === 0 ? "done" : "skipped"));
  return STEPS.map((_, index) => {
    if (index < position || (status === "picked_up" && index === position)) return "done";
    return index === position ? "current" : "upcoming";
  });
}

function setIndicator(state, text) {
  const indicator = $("[data-live-indicator]");
  indicator.dataset.state = state;
  $("[data-live-text]", indicator).textContent = text;
  $("[data-reconnecting]").hidden = state !== "reconnecting";
}

function notifyReady() {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  try {
    new Notification(`Order ${view.code} is ready`, { body: view.message, tag: `order-${view.order_id}` });
  } catch {
    /* some browsers only allow notifications from a service worker */
  }
}

function apply(update) {
  const previous = view.status;
  view = { ...view, ...update };
  if (update.status && update.status !== previous) {
    const label = $("[data-status-label]");
    label.textContent = view.label;
    label.dataset.status = view.status;
    $("[data-status-message]").textContent = view.message;
    const states = stepStates(view.status);
    $$("[data-step-key]").forEach((element, index) => {
      element.dataset.state = states[index];
      if (states[index] === "current") element.setAttribute("aria-current", "step");
      else element.removeAttribute("aria-current");
      $("[data-step-state]", element).textContent = STATE_TEXT[states[index]];
    });
    document.title = `${view.status === "ready" ? "Ready! " : ""}${view.label} · Order ${view.code}`;
    if (view.status === "ready") notifyReady();
  }
  if (view.pickup_at) $("[data-pickup-at]").textContent = when(view.pickup_at);
  $("[data-eta-row]").hidden = !view.estimated_ready_at;
  if (view.estimated_ready_at) $("[data-eta]").textContent = when(view.estimated_ready_at);
  if (view.final) finish();
}

function finish() {
  stopPolling();
  if (source) source.close();
  source = null;
  clearTimeout(streamRetry);
  setIndicator("final", "Final status");
  $("[data-notify]").hidden = true;
}

// --- Polling (the fallback) -----------------------------------------------------------------

async function pollOnce() {
  try {
    const response = await fetch(data.poll_url, { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!response.ok) throw new Error(String(response.status));
    apply(await response.json());
    if (!view.final && !isStreaming()) setIndicator("polling", "Updating every few seconds");
  } catch {
    if (!view.final) setIndicator("reconnecting", "Reconnecting…");
  }
}

function startPolling() {
  if (pollTimer || view.final) return;
  pollOnce();
  pollTimer = setInterval(pollOnce, POLL_MS);
}

function stopPolling() {
  clearInterval(pollTimer);
  pollTimer = null;
}

// --- The stream -------------------------------------------------------------------------------

const isStreaming = () => source && source.readyState === EventSource.OPEN;

function connect(token) {
  if (view.final) return;
  source = new EventSource(`${data.events_url}?token=${encodeURIComponent(token)}`);
  const onEvent = (event) => {
    try {
      apply(JSON.parse(event.data));
    } catch {
      /* a malformed event is skipped; the next one or a poll catches up */
    }
  };
  source.addEventListener("order.status", onEvent);
  source.addEventListener("message", onEvent);
  source.addEventListener("resync", () => pollOnce());
  source.addEventListener("open", () => {
    everConnected = true;
    stopPolling();
    setIndicator("live", "Live");
  });
  source.addEventListener("error", () => {
    if (view.final) return;
    if (source.readyState === EventSource.CLOSED) {
      // Refused (not there yet, or not for this token): poll, and try the stream again later.
      source = null;
      startPolling();
      clearTimeout(streamRetry);
      streamRetry = setTimeout(() => connect(token), STREAM_RETRY_MS);
    } else {
      // The browser is reconnecting by itself; keep the page current meanwhile.
      if (everConnected) setIndicator("reconnecting", "Reconnecting…");
      startPolling();
    }
  });
}

function setupNotifications() {
  const button = $("[data-notify]");
  const state = $("[data-notify-state]");
  if (!("Notification" in window) || view.final) return;
  const sync = () => {
    const permission = Notification.permission;
    button.hidden = permission !== "default";
    state.textContent =
      permission === "granted" ? "We'll send a notification when your order is ready." : permission === "denied" ? "" : "";
  };
  button.addEventListener("click", async () => {
    try {
      await Notification.requestPermission();
    } catch {
      /* old browsers take a callback; nothing to do then */
    }
    sync();
  });
  sync();
}

export async function init() {
  data = readJSON("order-data");
  if (!data) return;
  view = { ...data.status };
  setupNotifications();
  if (view.final) return finish();
  const known = orders.find(data.order_id);
  if (known && known.token && "EventSource" in window) {
    setIndicator("connecting", "Connecting…");
    connect(known.token);
    // If the stream is slow to open, the page still catches up straight away.
    setTimeout(() => {
      if (!isStreaming()) startPolling();
    }, 3000);
  } else {
    startPolling();
  }
  window.addEventListener("online", () => {
    if (!view.final) pollOnce();
  });
}
