// Small helpers shared by the page modules: DOM, formatting, storage, API calls, toasts.

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

export function readJSON(id) {
  const element = document.getElementById(id);
  if (!element) return null;
  try {
    return JSON.parse(element.textContent);
  } catch {
    return null;
  }
}

const body = document.body.dataset;
export const shop = {
  currency: body.currency || "GBP",
  timezone: body.timezone || undefined,
  maxQuantity: Number(body.maxQuantity || 20),
};

const moneyFormat = new Intl.NumberFormat("en-GB", { style: "currency", currency: shop.currency });
export const money = (cents) => (cents == null ? "—" : moneyFormat.format(cents / 100));

const timeFormat = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", timeZone: shop.timezone });
const dayKeyFormat = new Intl.DateTimeFormat("en-CA", { timeZone: shop.timezone });
const dayFormat = new Intl.DateTimeFormat("en-GB", { weekday: "short", day: "numeric", month: "short", timeZone: shop.timezone });

export const clock = (iso) => timeFormat.format(new Date(iso));
export const dayKey = (iso) => dayKeyFormat.format(new Date(iso));

/** "Today", "Tomorrow" or "Tue 12 Mar", in the shop's time zone. */
export function dayName(iso) {
  const key = dayKey(iso);
  const today = dayKeyFormat.format(new Date());
  const tomorrow = dayKeyFormat.format(new Date(Date.now() + 86400000));
  if (key === today) return "Today";
  if (key === tomorrow) return "Tomorrow";
  return dayFormat.format(new Date(iso));
}
export const when = (iso) => (iso ? `${dayName(iso)}, ${clock(iso)}` : "");

export const store = {
  get(key, fallback = null, area = localStorage) {
    try {
      const raw = area.getItem(key);
      return raw == null ? fallback : JSON.parse(raw);
    } catch {
      return fallback;
    }
  },
  set(key, value, area = localStorage) {
    try {
      area.setItem(key, JSON.stringify(value));
    } catch {
      /* storage full or blocked: the feature degrades, the page still works */
    }
  },
  remove(key, area = localStorage) {
    try {
      area.removeItem(key);
    } catch {
      /* ignore */
    }
  },
};

/**
 * fetch() for the JSON API. Resolves to {ok, status, data, headers}; data is the JSON body
 * (a problem+json document on errors). Rejects only when the server could not be reached.
 */
export async function api(path, { method = "GET", json, headers = {}, signal } = {}) {
  const options = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin", signal };
  if (json !== undefined) {
    options.body = JSON.stringify(json);
    options.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, options);
  let data = null;
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  return { ok: response.ok, status: response.status, data, headers: response.headers };
}

export function problemText(result, fallback = "Something went wrong. Please try again.") {
  if (result && result.status === 503) return "We can't reach the shop's systems just now. Please try again in a moment.";
  if (result && result.status === 429) return "That was a lot of requests at once. Please wait a moment and try again.";
  return (result && result.data && result.data.detail) || fallback;
}

/** A short message at the bottom of the screen, read out by screen readers. */
export function toast(message, { error = false, link = null, timeout = 4000 } = {}) {
  const region = $("[data-toast-region]");
  if (!region) return;
  const item = document.createElement("div");
  item.className = error ? "toast toast-error" : "toast";
  const text = document.createElement("span");
  text.textContent = message;
  item.append(text);
  if (link) {
    const anchor = document.createElement("a");
    anchor.href = link.href;
    anchor.textContent = link.text;
    item.append(anchor);
  }
  region.append(item);
  while (region.children.length > 3) region.firstElementChild.remove();
  setTimeout(() => item.remove(), error ? timeout * 1.6 : timeout);
}

export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const plural = (count, word) => `${count} ${word}${count === 1 ? "" : "s"}`;

/** Orders placed in this browser: id, code and the lookup token (kept here, never in URLs). */
const ORDERS_KEY = "pickup.orders";
export const orders = {
  all: () => store.get(ORDERS_KEY, []),
  find: (id) => orders.all().find((order) => order.order_id === id) || null,
  remember(order) {
    const rest = orders.all().filter((known) => known.order_id !== order.order_id);
    store.set(ORDERS_KEY, [order, ...rest].slice(0, 10));
  },
};
