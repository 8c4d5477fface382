// The cart as every page sees it: the server's cart (cookie pickup_cart), mirrored to
// localStorage so it can be rebuilt if the server copy expired, and kept in step across
// tabs with a BroadcastChannel (storage events where that is missing).

import { $, api, plural, store, toast } from "./util.js";

const COPY_KEY = "pickup.cart.copy";
// A copy older than this is stale: do not resurrect a cart from last month.
const COPY_MAX_AGE_MS = 14 * 24 * 3600 * 1000;
const channel = "BroadcastChannel" in window ? new BroadcastChannel("pickup-cart") : null;
const listeners = new Set();
let current = null;

export const currentCart = () => current;

export function onCart(listener) {
  listeners.add(listener);
  if (current) listener(current, { source: "initial" });
  return () => listeners.delete(listener);
}

function saveCopy(view) {
  const lines = view.lines.map((line) => ({ product_id: line.product_id, quantity: line.quantity }));
  store.set(COPY_KEY, { lines, saved_at: Date.now() });
}

export function forgetCopy() {
  store.remove(COPY_KEY);
}

function updateBadge(view) {
  const count = view.totals.item_count;
  const badge = $("[data-cart-count]");
  const label = $("[data-cart-count-label]");
  if (!badge) return;
  const changed = badge.textContent !== String(count);
  badge.textContent = String(count);
  badge.toggleAttribute("data-empty", count === 0);
  if (label) label.textContent = `, ${plural(count, "item")}`;
  if (changed) {
    badge.classList.remove("bump");
    void badge.offsetWidth; // restart the animation
    badge.classList.add("bump");
  }
}

function publish(view, { source = "local", broadcast = true } = {}) {
  current = view;
  updateBadge(view);
  if (source !== "remote") saveCopy(view);
  for (const listener of listeners) listener(view, { source });
  if (broadcast && channel) channel.postMessage({ type: "cart", view });
}

if (channel) {
  channel.addEventListener("message", (event) => {
    if (event.data && event.data.type === "cart") publish(event.data.view, { source: "remote", broadcast: false });
  });
} else {
  window.addEventListener("storage", (event) => {
    if (event.key === COPY_KEY) refreshCart({ broadcast: false });
  });
}

export async function refreshCart({ broadcast = false } = {}) {
  const result = await api("/api/cart");
  if (result.ok) publish(result.data, { source: broadcast ? "local" : "refresh", broadcast });
  return result;
}

/** Re-adds the lines of the browser's copy when the server's cart has expired. */
async function recover(copy) {
  let view = null;
  const shortened = [];
  for (const line of copy.lines) {
    let result = await api("/api/cart/add", { method: "POST", json: line });
    if (result.status === 409 && result.data && result.data.available > 0) {
      shortened.push(line.product_id);
      result = await api("/api/cart/add", {
        method: "POST",
        json: { product_id: line.product_id, quantity: result.data.available },
      });
    } else if (!result.ok) {
      shortened.push(line.product_id);
    }
    if (result.ok) view = result.data;
  }
  return { view, shortened };
}

export async function loadCart() {
  let result;
  try {
    result = await api("/api/cart");
  } catch {
    return null;
  }
  if (!result.ok) return null;
  let view = result.data;
  const copy = store.get(COPY_KEY);
  const fresh = copy && Date.now() - (copy.saved_at || 0) < COPY_MAX_AGE_MS;
  if (view.lines.length === 0 && fresh && copy.lines && copy.lines.length) {
    const { view: restored, shortened } = await recover(copy);
    if (restored) {
      view = restored;
      const message = shortened.length
        ? "We restored your cart; some items have less stock now."
        : "Welcome back: we restored your cart.";
      const notice = $("[data-cart-restored]");
      if (notice) {
        notice.textContent = message;
        notice.hidden = false;
      } else {
        toast(message, { link: { href: "/cart", text: "View cart" } });
      }
    }
  }
  publish(view, { source: "load", broadcast: view !== result.data });
  return view;
}

async function write(path, method, json) {
  let result;
  try {
    result = await api(path, { method, json });
  } catch {
    return { ok: false, status: 0, data: { detail: "You seem to be offline. Check your connection and try again." } };
  }
  if (result.ok) publish(result.data);
  return result;
}

export const addItem = (productId, quantity) => write("/api/cart/add", "POST", { product_id: productId, quantity });
export const setQuantity = (productId, quantity) =>
  write("/api/cart/update", "PUT", { product_id: productId, quantity });
export const removeItem = (productId) => write("/api/cart/remove", "DELETE", { product_id: productId });

/** After an order is placed the server has emptied the cart: say so everywhere. */
export function markCheckedOut() {
  forgetCopy();
  const empty = current
    ? { ...current, lines: [], checkout_ready: false, totals: { ...current.totals, item_count: 0, line_count: 0, subtotal_cents: 0 } }
    : null;
  if (empty) {
    current = empty;
    updateBadge(empty);
    if (channel) channel.postMessage({ type: "cart", view: empty });
  }
  forgetCopy();
}

/** What a 409 from a cart write means for the shopper, using its `available`. */
export function conflictMessage(result, name) {
  const data = (result && result.data) || {};
  if (result.status !== 409) return null;
  const inCart = data.in_cart || 0;
  if (data.available === 0) return `Sorry, ${name} just sold out.`;
  if (typeof data.available === "number") {
    const more = Math.max(data.available - inCart, 0);
    if (inCart && more === 0) return `You already have all ${data.available} ${name} we can sell you in your cart.`;
    return `Only ${data.available} ${name} can be ordered${inCart ? ` (you have ${inCart} in your cart)` : ""}.`;
  }
  return data.detail || `We could not add ${name}.`;
}
