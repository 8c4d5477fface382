// Checkout: inline validation (ours and the server's, at the field), pickup slots, the
// instructions counter, and a submit that is safe to repeat: one Idempotency-Key per attempt,
// kept while the same attempt is retried (after a timeout, a 503, or a reload).

import { currentCart, markCheckedOut, onCart, refreshCart } from "./cart-store.js";
import { $, $$, api, clock, dayKey, dayName, money, orders, store, uuid } from "./util.js";

const ATTEMPT_KEY = "pickup.checkout.attempt";
const MAX_INSTRUCTIONS = 500;
const E164 = /^\+[1-9]\d{6,14}$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
// Where the server's field paths are shown.
const SERVER_FIELDS = {
  "body.customer.name": "name",
  "body.customer.email": "email",
  "body.customer.phone": "phone",
  "body.customer.sms_opt_in": "sms_opt_in",
  "body.customer": "phone",
  "body.pickup_time": "pickup_time",
  "body.special_instructions": "special_instructions",
};

let form;
let busy = false;
const touched = new Set();

const control = (name) => (name === "pickup_time" ? $("[data-slot-select]", form) : form.elements[name]);

function compactPhone(value) {
  return value.replace(/[\s().-]/g, "");
}

function validate(name) {
  const value = (control(name).value || "").trim();
  switch (name) {
    case "name":
      if (!value) return "Enter the name we should call out.";
      if (value.length > 100) return "Keep the name to 100 characters.";
      return "";
    case "email":
      if (!value) return "Enter your email address for the confirmation.";
      if (!EMAIL.test(value)) return "Enter an email address like name@example.com.";
      return "";
    case "phone":
      if (value && !E164.test(compactPhone(value))) return "Enter the number with the country code, e.g. +44 7700 900123.";
      if (!value && form.elements.sms_opt_in.checked) return "Add a mobile number so we can text you.";
      return "";
    case "pickup_time":
      if (form.elements.pickup_mode.value === "slot" && !value) return "Choose a pickup time.";
      return "";
    case "special_instructions":
      if (value.length > MAX_INSTRUCTIONS) return `Keep instructions to ${MAX_INSTRUCTIONS} characters.`;
      return "";
    default:
      return "";
  }
}

function showError(name, message) {
  const slot = $(`[data-error-for="${name}"]`, form);
  if (slot) slot.textContent = message;
  const input = control(name);
  if (!input) return;
  if (message) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

function validateAll() {
  const names = ["name", "email", "phone", "pickup_time", "special_instructions"];
  let first = null;
  for (const name of names) {
    const message = validate(name);
    showError(name, message);
    if (message && !first) first = name;
  }
  return first;
}

function alertBox(html) {
  const box = $("[data-form-alert]", form);
  if (!html) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  box.replaceChildren(...html);
  box.hidden = false;
  box.focus();
}

function para(text, link) {
  const p = document.createElement("p");
  p.textContent = text;
  if (link) {
    p.append(" ");
    const a = document.createElement("a");
    a.href = link.href;
    a.textContent = link.text;
    p.append(a);
  }
  return p;
}

// --- Pickup slots --------------------------------------------------------------------------

async function loadSlots() {
  const select = $("[data-slot-select]", form);
  const hint = $("[data-asap-hint]", form);
  let result;
  try {
    result = await api("/api/pickup-slots");
  } catch {
    result = { ok: false };
  }
  select.replaceChildren();
  if (!result.ok) {
    select.append(new Option("Times could not be loaded", ""));
    hint.textContent = "";
    return;
  }
  const { asap, slots } = result.data;
  const asapRadio = $("#pickup-asap", form);
  if (asap) {
    hint.textContent = `(about ${clock(asap)}${dayName(asap) === "Today" ? "" : `, ${dayName(asap).toLowerCase()}`})`;
    asapRadio.disabled = false;
  } else {
    hint.textContent = "(not possible right now)";
    asapRadio.disabled = true;
    $("#pickup-later", form).checked = true;
  }
  select.append(new Option("Choose a time…", ""));
  const groups = new Map();
  for (const slot of slots) {
    const key = dayKey(slot.start);
    if (!groups.has(key)) {
      const group = document.createElement("optgroup");
      group.label = dayName(slot.start);
      groups.set(key, group);
      select.append(group);
    }
    const label = `${clock(slot.start)}–${clock(slot.end)}${slot.available ? "" : " — Full"}`;
    const option = new Option(label, slot.start);
    option.disabled = !slot.available;
    groups.get(key).append(option);
  }
  syncMode();
}

function syncMode() {
  const select = $("[data-slot-select]", form);
  const later = form.elements.pickup_mode.value === "slot";
  select.disabled = !later;
  if (!later) showError("pickup_time", "");
}

// --- Summary -------------------------------------------------------------------------------

function renderSummary(view) {
  const list = $("[data-summary-lines]");
  if (!list) return;
  if (view.lines.length === 0 && !busy) {
    alertBox([para("Your cart is now empty.", { href: "/menu", text: "Back to the menu" })]);
    $("[data-submit]", form).disabled = true;
  }
  for (const line of view.lines) {
    const element = list.querySelector(`[data-summary-line="${CSS.escape(line.product_id)}"]`);
    if (!element) continue;
    $(".summary-qty", element).textContent = `${line.quantity} ×`;
    $(".summary-price", element).textContent = money(line.line_total_cents);
  }
  for (const element of $$("[data-summary-line]", list)) {
    if (!view.lines.some((line) => line.product_id === element.dataset.summaryLine)) element.remove();
  }
  $("[data-checkout-total]").textContent = money(view.totals.subtotal_cents);
  $("[data-submit-label]", form).textContent = `Place order · ${money(view.totals.subtotal_cents)}`;
}

function flagShortfalls(shortfalls) {
  for (const element of $$("[data-summary-line]")) {
    element.classList.remove("has-issue");
    $("[data-line-issue]", element).hidden = true;
  }
  for (const shortfall of shortfalls) {
    const element = document.querySelector(`[data-summary-line="${CSS.escape(shortfall.product_id)}"]`);
    if (!element) continue;
    let text;
    if (shortfall.reason === "unavailable") text = "Not available at the moment.";
    else if (shortfall.available === 0) text = "Sold out while you were ordering.";
    else text = `Only ${shortfall.available} left; you asked for ${shortfall.requested}.`;
    element.classList.add("has-issue");
    const issue = $("[data-line-issue]", element);
    $("[data-line-issue-text]", issue).textContent = text;
    issue.hidden = false;
  }
}

// --- Submit --------------------------------------------------------------------------------

function requestBody() {
  const value = (name) => form.elements[name].value.trim();
  const customer = { name: value("name"), email: value("email") };
  if (value("phone")) customer.phone = compactPhone(value("phone"));
  if (form.elements.sms_opt_in.checked) customer.sms_opt_in = true;
  const body = { customer };
  if (form.elements.pickup_mode.value === "slot") body.pickup_time = $("[data-slot-select]", form).value;
  if (value("special_instructions")) body.special_instructions = value("special_instructions");
  return body;
}

/** The key of this attempt: the same while the same order is retried, new when it changes. */
function attemptKey(body) {
  const fingerprint = JSON.stringify(body);
  const attempt = store.get(ATTEMPT_KEY, null, sessionStorage);
  if (attempt && attempt.fingerprint === fingerprint) return attempt.key;
  const key = uuid();
  store.set(ATTEMPT_KEY, { key, fingerprint }, sessionStorage);
  return key;
}

function setBusy(on) {
  busy = on;
  const button = $("[data-submit]", form);
  button.disabled = on;
  button.setAttribute("aria-busy", String(on));
  form.setAttribute("aria-busy", String(on));
  const cart = currentCart();
  $("[data-submit-label]", form).textContent = on
    ? "Placing your order…"
    : `Place order · ${money(cart ? cart.totals.subtotal_cents : 0)}`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function send(body, key) {
  for (let tries = 0; ; tries += 1) {
    const result = await api("/api/orders", { method: "POST", json: body, headers: { "Idempotency-Key": key } });
    // 409 with Retry-After: our own earlier request with this key is still being handled.
    const inFlight = result.status === 409 && result.headers.get("Retry-After") && !(result.data && result.data.shortfalls);
    if (!inFlight || tries >= 4) return result;
    await sleep(1000 * Number(result.headers.get("Retry-After") || 1));
  }
}

function showServerErrors(errors) {
  let first = null;
  const general = [];
  for (const error of errors) {
    const name = SERVER_FIELDS[error.field];
    const message = error.message.replace(/^Value error, /, "");
    if (name) {
      showError(name, message.charAt(0).toUpperCase() + message.slice(1));
      first = first || name;
    } else {
      general.push(message);
    }
  }
  return { first, general };
}

async function submit(event) {
  event.preventDefault();
  if (busy) return;
  for (const name of ["name", "email", "phone", "pickup_time", "special_instructions"]) touched.add(name);
  const invalid = validateAll();
  if (invalid) {
    alertBox([para("Please check the highlighted fields.")]);
    control(invalid).focus();
    return;
  }
  alertBox(null);
  const body = requestBody();
  const key = attemptKey(body);
  setBusy(true);
  let result;
  try {
    result = await send(body, key);
  } catch {
    setBusy(false);
    alertBox([
      para("We couldn't reach the shop, so we don't know yet whether your order went through."),
      para("Check your connection and press “Place order” again: you won't be charged or ordered twice."),
    ]);
    return;
  }
  if (result.status === 202) {
    const order = result.data;
    orders.remember({
      order_id: order.order_id,
      code: order.code,
      token: order.lookup_token,
      placed_at: new Date().toISOString(),
      estimated_pickup_at: order.estimated_pickup_at,
    });
    store.remove(ATTEMPT_KEY, sessionStorage);
    markCheckedOut();
    window.location.assign(`/orders/${order.order_id}/confirmation`);
    return;
  }
  setBusy(false);
  const data = result.data || {};
  const type = (data.type || "").split("/").pop();
  if (result.status === 422 && data.errors) {
    const { first, general } = showServerErrors(data.errors);
    alertBox([para(general.length ? general.join(" ") : "Please check the highlighted fields.", general.length ? { href: "/cart", text: "Go to your cart" } : null)]);
    if (first) control(first).focus();
  } else if (type === "insufficient-stock") {
    store.remove(ATTEMPT_KEY, sessionStorage);
    flagShortfalls(data.shortfalls || []);
    alertBox([para("Some items ran out while you were ordering. Nothing has been ordered yet.", { href: "/cart", text: "Update your cart" })]);
    refreshCart({ broadcast: true }).catch(() => {});
  } else if (type === "slot-full") {
    const next = data.next_available ? ` The next free time is ${clock(data.next_available)}.` : "";
    showError("pickup_time", `${data.detail || "That time is fully booked."}${next}`);
    alertBox([para("Your pickup time just filled up. Please choose another.")]);
    await loadSlots();
    control("pickup_time").focus();
  } else if (result.status === 503) {
    const wait = Number(result.headers.get("Retry-After") || 0);
    alertBox([
      para("We can't take orders right now: our systems are having a moment. Your order has not been placed."),
      para(`Please try again${wait ? ` in ${wait} seconds` : " shortly"}; it is safe to press “Place order” again.`),
    ]);
  } else if (result.status === 429) {
    alertBox([para("Too many attempts in a short time. Please wait a minute and try again.")]);
  } else {
    alertBox([para(data.detail || "Something went wrong placing your order. Please try again.")]);
  }
}

function setupCounter() {
  const area = form.elements.special_instructions;
  const counter = $("[data-counter]", form);
  const update = () => {
    const length = area.value.length;
    counter.textContent = `${length} / ${MAX_INSTRUCTIONS} characters`;
    const near = MAX_INSTRUCTIONS - length <= 50;
    counter.classList.toggle("is-near", near);
    // Announced only near the limit, so screen readers are not told every keystroke.
    counter.setAttribute("aria-live", near ? "polite" : "off");
  };
  area.addEventListener("input", update);
  update();
}

export async function init({ cartReady }) {
  form = $("[data-checkout-form]");
  if (!form) return;
  form.addEventListener("submit", submit);
  for (const name of ["name", "email", "phone", "special_instructions"]) {
    const input = control(name);
    input.addEventListener("blur", () => {
      if (input.value.trim()) touched.add(name);
      if (touched.has(name)) showError(name, validate(name));
    });
    input.addEventListener("input", () => {
      if (touched.has(name)) showError(name, validate(name));
    });
  }
  form.elements.sms_opt_in.addEventListener("change", () => {
    if (touched.has("phone") || form.elements.sms_opt_in.checked) showError("phone", validate("phone"));
  });
  for (const radio of $$("[name=pickup_mode]", form)) radio.addEventListener("change", syncMode);
  $("[data-slot-select]", form).addEventListener("change", () => showError("pickup_time", validate("pickup_time")));
  setupCounter();
  await Promise.all([loadSlots(), cartReady]);
  onCart((view, { source }) => {
    if (source !== "initial") renderSummary(view);
  });
}
