// The order board: one column per active status, new orders arriving live over SSE (with a
// highlight, an optional beep and an announcement), one click per step to the next status
// (sent with the version the board saw, as If-Match), cancel with a confirm step, a details
// dialog, status filters and search.

import { $, $$, clock, money, when } from "./util.js";
import { liveStream, openDialog, problemMessage, staffApi, toast } from "./staff-common.js";

const COLUMNS = ["pending", "confirmed", "preparing", "ready"];
const LABELS = {
  pending: "Pending",
  confirmed: "Confirmed",
  preparing: "Preparing",
  ready: "Ready",
  picked_up: "Picked up",
  cancelled: "Cancelled",
  expired: "Expired",
};
const NEXT = {
  pending: ["confirmed", "Confirm"],
  confirmed: ["preparing", "Start preparing"],
  preparing: ["ready", "Mark ready"],
  ready: ["picked_up", "Picked up"],
};
const SOUND_KEY = "pickup.staff.sound";
const NEW_FOR_MS = 12000;

const state = { orders: new Map(), fresh: new Map(), q: "", shown: new Set(COLUMNS), loading: null, again: false };
let announcer;
let audio = null;

function announce(message) {
  // Cleared first so the same words twice are read twice.
  announcer.textContent = "";
  setTimeout(() => {
    announcer.textContent = message;
  }, 50);
}

// --- Sound: a short two-tone beep from Web Audio, only once someone has switched it on ---

function soundOn() {
  try {
    return localStorage.getItem(SOUND_KEY) === "on";
  } catch {
    return false;
  }
}

function beep() {
  if (!soundOn()) return;
  try {
    audio = audio || new AudioContext();
    if (audio.state === "suspended") audio.resume();
    const start = audio.currentTime;
    for (const [offset, frequency] of [[0, 880], [0.18, 1175]]) {
      const oscillator = audio.createOscillator();
      const gain = audio.createGain();
      oscillator.type = "sine";
      oscillator.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.25, start + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.16);
      oscillator.connect(gain).connect(audio.destination);
      oscillator.start(start + offset);
      oscillator.stop(start + offset + 0.17);
    }
  } catch {
    /* no audio on this device: the visual cue and the announcement remain */
  }
}

function initSound() {
  const button = $("[data-sound-toggle]");
  const label = $("[data-sound-label]");
  const sync = () => {
    const on = soundOn();
    button.setAttribute("aria-pressed", String(on));
    label.textContent = on ? "Sound on" : "Sound off";
  };
  button.addEventListener("click", () => {
    try {
      localStorage.setItem(SOUND_KEY, soundOn() ? "off" : "on");
    } catch {
      /* not remembered */
    }
    sync();
    if (soundOn()) beep(); // a sample, and it unlocks audio inside the click
  });
  sync();
}

// --- Loading and rendering -----------------------------------------------------------------

async function load() {
  // One load at a time; events arriving meanwhile ask for one more afterwards.
  if (state.loading) {
    state.again = true;
    return state.loading;
  }
  state.loading = (async () => {
    do {
      state.again = false;
      const params = new URLSearchParams();
      for (const status of COLUMNS) params.append("status", status);
      params.set("sort", "pickup_at");
      params.set("limit", "200");
      if (state.q) params.set("q", state.q);
      let result = null;
      try {
        result = await staffApi(`/api/admin/orders?${params}`);
      } catch {
        result = null;
      }
      const error = $("[data-board-error]");
      if (result && result.ok) {
        error.hidden = true;
        state.orders = new Map(result.data.items.map((order) => [order.order_id, order]));
        render();
      } else if (!result || result.status !== 401) {
        error.textContent = problemMessage(result, "The orders could not be loaded.");
        error.hidden = false;
      }
    } while (state.again);
    $("[data-board]").setAttribute("aria-busy", "false");
  })();
  try {
    await state.loading;
  } finally {
    state.loading = null;
  }
}

function cardFor(order) {
  const node = $("#order-card-template").content.firstElementChild.cloneNode(true);
  const article = $("article", node);
  const headingId = `order-${order.order_id}`;
  node.dataset.orderId = order.order_id;
  node.dataset.status = order.status;
  $("[data-code]", node).id = headingId;
  article.setAttribute("aria-labelledby", headingId);
  $("[data-code]", node).textContent = order.code;
  const pickup = $("[data-pickup]", node);
  pickup.dateTime = order.pickup_at;
  pickup.textContent = clock(order.pickup_at);
  pickup.title = when(order.pickup_at);
  const due = new Date(order.pickup_at).getTime() - Date.now();
  if (due < 0) node.classList.add("is-late");
  else if (due < 10 * 60000) node.classList.add("is-due");
  $("[data-name]", node).textContent = order.customer_name;
  const items = $("[data-items]", node);
  for (const line of order.items) {
    const li = document.createElement("li");
    const qty = document.createElement("span");
    qty.className = "order-qty";
    qty.textContent = `${line.quantity}×`;
    li.append(qty, ` ${line.name}`);
    items.append(li);
  }
  if (order.special_instructions) {
    const note = $("[data-note]", node);
    note.textContent = order.special_instructions;
    note.hidden = false;
  }
  $("[data-total]", node).textContent = money(order.total_cents);
  $("[data-placed]", node).textContent = `placed ${clock(order.created_at)}`;
  const [next, verb] = NEXT[order.status];
  const advance = $("[data-advance]", node);
  advance.textContent = verb;
  advance.dataset.next = next;
  advance.setAttribute("aria-label", `${verb}: ${order.code}`);
  $("[data-details]", node).setAttribute("aria-label", `Details of ${order.code}`);
  $("[data-cancel]", node).setAttribute("aria-label", `Cancel ${order.code}`);
  $("[data-confirm-text]", node).textContent = `Cancel ${order.code} for ${order.customer_name}? The customer is told and the stock goes back on sale.`;
  if (state.fresh.has(order.order_id)) {
    node.classList.add("is-new");
    const badge = document.createElement("span");
    badge.className = "new-badge";
    badge.textContent = "New";
    $(".order-card-head", node).prepend(badge);
  }
  return node;
}

function render() {
  const active = document.activeElement;
  const focusCard = active && active.closest && active.closest("[data-order-card]");
  const focusKey = focusCard && [focusCard.dataset.orderId, Object.keys(active.dataset)[0]];
  const now = Date.now();
  for (const [id, until] of state.fresh) if (until < now) state.fresh.delete(id);
  for (const status of COLUMNS) {
    const column = $(`[data-column="${status}"]`);
    const orders = [...state.orders.values()].filter((order) => order.status === status);
    const list = $("[data-list]", column);
    list.replaceChildren(...orders.map(cardFor));
    $("[data-count]", column).textContent = String(orders.length);
    $("[data-empty]", column).hidden = orders.length > 0;
    $("[data-empty]", column).textContent = state.q ? `No ${LABELS[status].toLowerCase()} orders match.` : `No ${LABELS[status].toLowerCase()} orders.`;
    column.hidden = !state.shown.has(status);
  }
  if (focusKey) {
    const card = $(`[data-order-card][data-order-id="${focusKey[0]}"]`);
    const attribute = focusKey[1] ? `[data-${focusKey[1].replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}]` : null;
    const target = card && ((attribute && $(attribute, card)) || $("[data-advance]", card));
    if (target) target.focus();
  }
}

// --- Actions ---------------------------------------------------------------------------------

async function changeStatus(order, status, button) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  let result = null;
  try {
    result = await staffApi(`/api/admin/orders/${order.order_id}/status`, {
      method: "PUT",
      json: { status },
      headers: { "If-Match": `"${order.version}"` },
    });
  } catch {
    result = null;
  }
  button.disabled = false;
  button.removeAttribute("aria-busy");
  if (result && result.ok) {
    const updated = result.data;
    if (COLUMNS.includes(updated.status)) state.orders.set(updated.order_id, updated);
    else state.orders.delete(updated.order_id);
    render();
    if (!COLUMNS.includes(updated.status)) {
      const heading = $(`#column-${order.status}`);
      heading.tabIndex = -1;
      heading.focus();
    }
    announce(`${updated.code} is now ${LABELS[updated.status].toLowerCase()}.`);
    return;
  }
  if (result && result.status === 412) {
    toast(`${order.code} was changed by someone else meanwhile; the board is up to date now.`, { error: true });
  } else if (result && result.status === 409) {
    toast(`${order.code} cannot move to ${LABELS[status].toLowerCase()} any more; the board is up to date now.`, { error: true });
  } else if (!result || result.status !== 401) {
    toast(problemMessage(result, `${order.code} could not be changed.`), { error: true });
  }
  await load();
}

// --- Details dialog ----------------------------------------------------------------------------

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text != null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function section(title, ...children) {
  const wrap = el("section", null, "detail-section");
  wrap.append(el("h3", title), ...children);
  return wrap;
}

function definitionList(rows) {
  const dl = el("dl", null, "details-list");
  for (const [term, value] of rows) {
    if (value == null || value === "") continue;
    const row = el("div");
    row.append(el("dt", term), el("dd", value));
    dl.append(row);
  }
  return dl;
}

const EFFECTS = { held: "Held for the order", deducted: "Taken out of stock", released: "Back on sale" };

function signed(value) {
  return value > 0 ? `+${value}` : String(value);
}

function renderDetail(order) {
  const body = $("[data-order-dialog-body]");
  $("[data-order-dialog-title]").textContent = `${order.code} · ${LABELS[order.status]}`;
  const customer = definitionList([
    ["Name", order.customer_name],
    ["Email", order.customer_email],
    ["Phone", order.customer_phone ? `${order.customer_phone}${order.sms_opt_in ? " (texts on)" : ""}` : null],
    ["Pickup", when(order.pickup_at)],
    ["Estimated ready", order.estimated_ready_at ? when(order.estimated_ready_at) : null],
    ["Instructions", order.special_instructions],
    ["Total", money(order.total_cents)],
  ]);

  const impact = el("table", null, "staff-table");
  impact.innerHTML = '<caption class="visually-hidden">What each line did to stock</caption><thead><tr><th scope="col">Item</th><th scope="col" class="num">Qty</th><th scope="col">Stock</th><th scope="col" class="num">Available</th></tr></thead>';
  const impactBody = el("tbody");
  for (const line of order.lines) {
    const row = el("tr");
    row.append(el("td", line.name), el("td", String(line.quantity), "num"), el("td", EFFECTS[line.effect] || line.effect), el("td", signed(line.available_delta), "num"));
    impactBody.append(row);
  }
  impact.append(impactBody);
  const reservation = el("p", `Reservation: ${order.reservation_state}${order.reservation_expires_at && order.reservation_state === "held" ? `, held until ${clock(order.reservation_expires_at)}` : ""}.`, "hint");

  const history = el("ol", null, "history-list");
  for (const entry of order.history) {
    const item = el("li");
    const who = entry.staff ? entry.staff.display_name : entry.actor;
    const time = el("time", clock(entry.at));
    time.dateTime = entry.at;
    item.append(time, ` ${entry.from_status ? `${LABELS[entry.from_status]} → ` : ""}${LABELS[entry.to_status]}`, el("span", ` by ${who}`, "muted"));
    if (entry.note) item.append(el("span", ` — ${entry.note}`, "muted"));
    history.append(item);
  }

  const notices = el("ul", null, "notification-list");
  for (const sent of order.notifications) {
    const item = el("li");
    const badge = el("span", sent.status, `badge ${sent.status === "sent" || sent.status === "delivered" ? "badge-ok" : sent.status === "failed" ? "badge-out" : "badge-low"}`);
    item.append(badge, ` ${sent.template} by ${sent.channel} to ${sent.recipient}, ${clock(sent.at)}`);
    if (sent.error) item.append(el("span", ` (${sent.error})`, "muted"));
    notices.append(item);
  }
  if (!order.notifications.length) notices.append(el("li", "None sent yet.", "muted"));

  const ledger = el("ul", null, "notification-list");
  for (const entry of order.ledger) {
    ledger.append(el("li", `${clock(entry.at)} ${entry.kind}: ${entry.product_id} on hand ${signed(entry.delta_on_hand)}, reserved ${signed(entry.delta_reserved)}${entry.reason ? ` (${entry.reason})` : ""}`));
  }

  body.replaceChildren(
    section("Customer and pickup", customer),
    section("Inventory impact", impact, reservation, ...(order.ledger.length ? [ledger] : [])),
    section("History", history),
    section("Notifications", notices),
  );
}

async function showDetails(order, opener) {
  const dialog = $("[data-order-dialog]");
  $("[data-order-dialog-title]").textContent = order.code;
  $("[data-order-dialog-body]").replaceChildren(el("p", "Loading…", "muted"));
  openDialog(dialog, opener);
  const result = await staffApi(`/api/admin/orders/${order.order_id}`).catch(() => null);
  if (result && result.ok) renderDetail(result.data);
  else $("[data-order-dialog-body]").replaceChildren(el("p", problemMessage(result, "The order could not be loaded."), "notice notice-error"));
}

// --- Wiring ------------------------------------------------------------------------------------

function initBoard() {
  $("[data-board]").addEventListener("click", (event) => {
    const card = event.target.closest("[data-order-card]");
    if (!card) return;
    const order = state.orders.get(card.dataset.orderId);
    if (!order) return;
    const button = event.target.closest("button");
    if (!button) return;
    if (button.matches("[data-advance]")) changeStatus(order, button.dataset.next, button);
    else if (button.matches("[data-details]")) showDetails(order, button);
    else if (button.matches("[data-cancel]")) {
      $("[data-actions]", card).hidden = true;
      $("[data-confirm]", card).hidden = false;
      $("[data-confirm-cancel]", card).focus();
    } else if (button.matches("[data-keep]")) {
      $("[data-confirm]", card).hidden = true;
      $("[data-actions]", card).hidden = false;
      $("[data-cancel]", card).focus();
    } else if (button.matches("[data-confirm-cancel]")) changeStatus(order, "cancelled", button);
  });
  $("[data-board]").addEventListener("keydown", (event) => {
    const confirm = event.target.closest("[data-confirm]");
    if (event.key === "Escape" && confirm && !confirm.hidden) $("[data-keep]", confirm).click();
  });
}

function initFilters() {
  const form = $("[data-board-filters]");
  const clear = $("[data-clear-search]");
  form.addEventListener("change", (event) => {
    if (event.target.name !== "status") return;
    state.shown = new Set($$('input[name="status"]:checked', form).map((box) => box.value));
    render();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    state.q = form.elements.q.value.trim();
    clear.hidden = !state.q;
    load().then(() => announce(state.q ? `${state.orders.size} order${state.orders.size === 1 ? "" : "s"} match “${state.q}”.` : `Showing all ${state.orders.size} active orders.`));
  });
  clear.addEventListener("click", () => {
    form.elements.q.value = "";
    form.requestSubmit();
    form.elements.q.focus();
  });
}

function initLive() {
  const indicator = $("[data-board-live]");
  const text = $("[data-board-live-text]");
  let timer = null;
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(load, 150);
  };
  liveStream(
    {
      "order.placed": (data) => {
        if (!data) return soon();
        state.fresh.set(data.order_id, Date.now() + NEW_FOR_MS);
        setTimeout(() => render(), NEW_FOR_MS + 100);
        beep();
        const items = data.item_count ? `, ${data.item_count} item${data.item_count === 1 ? "" : "s"}` : "";
        announce(`New order ${data.code} for ${data.customer_name}${items}, pickup ${clock(data.pickup_at)}.`);
        soon();
      },
      "order.status": soon,
      resync: soon,
    },
    {
      onState: (live) => {
        indicator.dataset.state = live;
        text.textContent = live === "live" ? "Live" : "Reconnecting…";
      },
    },
  );
}

export async function init() {
  announcer = $("[data-board-announce]");
  initSound();
  initBoard();
  initFilters();
  initLive();
  await load();
}
