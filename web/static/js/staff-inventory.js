// Inventory (admins): levels with status badges, restock and adjust with a reason, thresholds
// (read-only where a managing resource owns them), availability, low-stock alerts and reorder
// suggestions; stock changes made anywhere arrive live.

import { $, $$ } from "./util.js";
import { liveStream, openDialog, problemMessage, staffApi, toast } from "./staff-common.js";

const STATUS = { ok: ["In stock", "badge-ok"], low: ["Low", "badge-low"], critical: ["Critical", "badge-critical"], out: ["Out", "badge-out"] };
const items = new Map();
let dialogState = null;

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text != null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function badge(level) {
  const [text, className] = STATUS[level] || [level, "badge-low"];
  return el("span", text, `badge ${className}`);
}

function row(item) {
  const tr = el("tr");
  tr.dataset.productId = item.product_id;
  tr.dataset.level = item.status;
  const name = el("th", null, "product-cell");
  name.scope = "row";
  name.append(el("span", item.name, "product-cell-name"), el("span", item.category, "muted product-cell-category"));
  const onHand = el("td", String(item.on_hand), "num");
  onHand.dataset.onHand = "";
  const available = el("td", String(item.available), "num strong");
  available.dataset.available = "";
  const status = el("td");
  status.append(badge(item.status));
  if (!item.is_available) status.append(" ", el("span", "Off sale", "badge badge-out"));

  const sale = el("td");
  const toggle = el("button", item.is_available ? "On sale" : "Off sale", "switch");
  toggle.type = "button";
  toggle.setAttribute("role", "switch");
  toggle.setAttribute("aria-checked", String(item.is_available));
  toggle.setAttribute("aria-label", `${item.name} on sale`);
  toggle.dataset.toggle = "";
  sale.append(toggle);

  const actions = el("td", null, "row-actions");
  for (const [mode, text] of [["restock", "Restock"], ["adjust", "Adjust"], ["thresholds", "Thresholds"]]) {
    const button = el("button", text, mode === "restock" ? "button button-primary button-small" : "button button-secondary button-small");
    button.type = "button";
    button.dataset.open = mode;
    button.setAttribute("aria-haspopup", "dialog");
    button.setAttribute("aria-label", `${text} ${item.name}`);
    actions.append(button);
  }
  tr.append(name, onHand, el("td", String(item.reserved), "num"), available, status, sale, actions);
  return tr;
}

function renderTable() {
  const sorted = [...items.values()].sort((a, b) => a.category.localeCompare(b.category) || a.name.localeCompare(b.name));
  $("[data-inventory]").replaceChildren(...sorted.map(row));
}

async function loadAll() {
  const [list, low, reorder] = await Promise.all([
    staffApi("/api/admin/inventory"),
    staffApi("/api/admin/inventory/low-stock"),
    staffApi("/api/admin/inventory/reorder-suggestions"),
  ]).catch(() => [null, null, null]);
  const error = $("[data-inventory-error]");
  if (!list || !list.ok) {
    error.textContent = problemMessage(list, "The stock levels could not be loaded.");
    error.hidden = false;
    return;
  }
  error.hidden = true;
  items.clear();
  for (const item of list.data.items) items.set(item.product_id, item);
  renderTable();
  $("[data-inventory-table]").setAttribute("aria-busy", "false");
  if (low && low.ok) renderAlerts(low.data.items);
  if (reorder && reorder.ok) renderReorder(reorder.data);
}

function renderAlerts(list) {
  const ul = $("[data-alerts]");
  ul.replaceChildren(
    ...list.map((item) => {
      const li = el("li", null, `alert-item alert-${item.status}`);
      li.append(badge(item.status), el("span", item.name, "alert-name"), el("span", `${item.available} available`, "muted"));
      return li;
    }),
  );
  $("[data-alert-count]").textContent = String(list.length);
  $("[data-alerts-empty]").hidden = list.length > 0;
}

function renderReorder(data) {
  $("[data-reorder-basis]").textContent = `Enough for ${data.cover_days} days of sales (from the last ${data.velocity_days} days) plus the low-stock threshold.`;
  $("[data-reorder]").replaceChildren(
    ...data.items.map((item) => {
      const tr = el("tr");
      const name = el("th", item.name);
      name.scope = "row";
      tr.append(
        name,
        el("td", String(item.available), "num"),
        el("td", item.daily_velocity.toFixed(1), "num"),
        el("td", item.days_of_cover == null ? "no sales" : item.days_of_cover.toFixed(1), "num"),
        el("td", String(item.suggested_quantity), "num strong"),
      );
      return tr;
    }),
  );
  $("[data-reorder-empty]").hidden = data.items.length > 0;
  $("[data-reorder-table]").hidden = data.items.length === 0;
}

// --- The restock / adjust / thresholds dialog -------------------------------------------------

const TITLES = { restock: "Restock", adjust: "Adjust stock", thresholds: "Thresholds" };

function openStockDialog(item, mode, opener) {
  const dialog = $("[data-stock-dialog]");
  const form = $("[data-stock-form]");
  dialogState = { item, mode };
  form.reset();
  $("[data-stock-dialog-title]").textContent = `${TITLES[mode]}: ${item.name}`;
  $("[data-stock-levels]").textContent = `On hand ${item.on_hand} · reserved ${item.reserved} · available ${item.available}`;
  for (const part of $$("[data-mode]", form)) part.hidden = !part.dataset.mode.split(" ").includes(mode);
  const alert = $("[data-stock-alert]");
  alert.hidden = true;
  const managed = $("[data-managed]");
  const readOnly = mode === "thresholds" && !item.thresholds_editable;
  for (const name of ["low_stock_threshold", "critical_threshold", "reorder_quantity"]) {
    form.elements[name].readOnly = readOnly;
  }
  managed.hidden = !readOnly;
  if (readOnly) managed.textContent = `These thresholds are managed by ${item.managed_by} (an InventoryThreshold resource). Change them there; they are read-only here.`;
  form.elements.low_stock_threshold.value = item.low_stock_threshold;
  form.elements.critical_threshold.value = item.critical_threshold;
  form.elements.reorder_quantity.value = item.reorder_quantity ?? "";
  $("[data-stock-submit]").hidden = readOnly;
  $("[data-stock-submit-label]").textContent = mode === "restock" ? "Add stock" : mode === "adjust" ? "Apply change" : "Save thresholds";
  openDialog(dialog, opener);
  const first = { restock: "quantity", adjust: "delta", thresholds: "low_stock_threshold" }[mode];
  form.elements[first].focus();
}

function whole(value) {
  return /^-?\d+$/.test(String(value).trim()) ? Number(value) : null;
}

async function submitStock(event) {
  event.preventDefault();
  const { item, mode } = dialogState;
  const form = event.target;
  const alert = $("[data-stock-alert]");
  const fail = (message, field) => {
    alert.textContent = message;
    alert.hidden = false;
    if (field) {
      form.elements[field].setAttribute("aria-invalid", "true");
      form.elements[field].focus();
    } else alert.focus();
  };
  for (const input of form.elements) input.removeAttribute && input.removeAttribute("aria-invalid");
  const reason = form.elements.reason.value.trim();
  let path;
  let body;
  let method = "POST";
  if (mode === "restock") {
    const quantity = whole(form.elements.quantity.value);
    if (quantity == null || quantity < 1) return fail("Enter the number of units delivered (1 or more).", "quantity");
    if (!reason) return fail("Give a reason, such as the delivery it came with.", "reason");
    path = "restock";
    body = { quantity, reason };
  } else if (mode === "adjust") {
    const delta = whole(form.elements.delta.value);
    if (delta == null || delta === 0) return fail("Enter a whole number of units other than 0 (negative to write off).", "delta");
    if (!reason) return fail("Give a reason for the adjustment.", "reason");
    path = "adjust";
    body = { delta, reason };
  } else {
    const low = whole(form.elements.low_stock_threshold.value);
    const critical = whole(form.elements.critical_threshold.value);
    const caseText = form.elements.reorder_quantity.value.trim();
    const caseSize = caseText === "" ? null : whole(caseText);
    if (low == null || low < 0) return fail("Enter the low-stock level as 0 or more units.", "low_stock_threshold");
    if (critical == null || critical < 0) return fail("Enter the critical level as 0 or more units.", "critical_threshold");
    if (critical > low) return fail("The critical level cannot be above the low-stock level.", "critical_threshold");
    if (caseText !== "" && (caseSize == null || caseSize < 0)) return fail("Enter the case size as whole units, or leave it empty.", "reorder_quantity");
    path = "thresholds";
    method = "PUT";
    body = { low_stock_threshold: low, critical_threshold: critical, reorder_quantity: caseSize };
  }
  const submit = $("[data-stock-submit]");
  submit.disabled = true;
  submit.setAttribute("aria-busy", "true");
  const result = await staffApi(`/api/admin/inventory/${encodeURIComponent(item.product_id)}/${path}`, { method, json: body }).catch(() => null);
  submit.disabled = false;
  submit.removeAttribute("aria-busy");
  if (!result || !result.ok) return fail(problemMessage(result, "The change was not saved."));
  if (result.data && result.data.product_id) items.set(result.data.product_id, result.data);
  $("[data-stock-dialog]").close();
  toast(mode === "thresholds" ? `Thresholds of ${item.name} saved.` : `${item.name}: ${items.get(item.product_id).available} available now.`);
  await loadAll();
}

async function toggleAvailability(item, button) {
  button.disabled = true;
  const result = await staffApi(`/api/admin/inventory/${encodeURIComponent(item.product_id)}/availability`, {
    method: "PUT",
    json: { is_available: !item.is_available },
  }).catch(() => null);
  button.disabled = false;
  if (!result || !result.ok) return toast(problemMessage(result, "Availability was not changed."), { error: true });
  toast(`${item.name} is ${item.is_available ? "off sale" : "on sale"} now.`);
  await loadAll();
  const again = $(`tr[data-product-id="${CSS.escape(item.product_id)}"] [data-toggle]`);
  if (again) again.focus();
}

export async function init() {
  if (!$("[data-inventory]")) return; // the staff role sees the "admins only" message
  $("[data-inventory]").addEventListener("click", (event) => {
    const button = event.target.closest("button");
    const tr = event.target.closest("tr[data-product-id]");
    if (!button || !tr) return;
    const item = items.get(tr.dataset.productId);
    if (button.dataset.open) openStockDialog(item, button.dataset.open, button);
    else if (button.matches("[data-toggle]")) toggleAvailability(item, button);
  });
  $("[data-stock-form]").addEventListener("submit", submitStock);
  let timer = null;
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(loadAll, 200);
  };
  liveStream({ "stock.changed": soon, "stock.alert": soon, resync: soon });
  await loadAll();
}
