// The cart page: quantity steppers, remove, totals and per-line stock problems, redrawn
// from every cart view (this tab's changes, other tabs' changes, the recovery on load).

import { conflictMessage, onCart, removeItem, setQuantity } from "./cart-store.js";
import { $, $$, money, problemText, readJSON, toast } from "./util.js";

let images = {};

function lineElement(line) {
  const existing = document.querySelector(`[data-line="${CSS.escape(line.product_id)}"]`);
  if (existing) return existing;
  const template = $("#cart-line-template");
  const element = template.content.firstElementChild.cloneNode(true);
  element.dataset.line = line.product_id;
  const input = $("[data-quantity]", element);
  input.id = `qty-${line.product_id}`;
  $("label", element).htmlFor = input.id;
  $("input[name=product_id]", element).value = line.product_id;
  $(".line-image", element).src = images[line.product_id] || "/static/img/menu/pastry.svg";
  return element;
}

function fillLine(element, line) {
  $("[data-line-name]", element).textContent = line.name;
  $("[data-line-unit]", element).textContent =
    line.unit_price_cents == null ? "No longer on the menu" : `${money(line.unit_price_cents)} each`;
  $("[data-line-total]", element).textContent = money(line.line_total_cents);
  const input = $("[data-quantity]", element);
  if (document.activeElement !== input) input.value = String(line.quantity);
  $("label", element).textContent = `Quantity of ${line.name}`;
  const [minus, plus] = $$("[data-step]", element);
  minus.value = String(line.quantity - 1);
  plus.value = String(line.quantity + 1);
  minus.setAttribute("aria-label", `One fewer ${line.name}`);
  plus.setAttribute("aria-label", `One more ${line.name}`);
  const limit = line.issue ? line.issue.max_quantity : null;
  plus.disabled = limit != null && line.quantity >= limit;
  $("[data-remove]", element).setAttribute("aria-label", `Remove ${line.name}`);
  element.classList.toggle("has-issue", !line.fulfillable);
  const issue = $("[data-line-issue]", element);
  issue.hidden = line.fulfillable && !element.dataset.error;
  $("[data-line-issue-text]", issue).textContent = line.issue ? line.issue.message : element.dataset.error || "";
}

function render(view) {
  const list = $("[data-cart-lines]");
  if (!list) return;
  const keep = new Set(view.lines.map((line) => line.product_id));
  for (const element of $$("[data-line]", list)) {
    if (!keep.has(element.dataset.line)) element.remove();
  }
  view.lines.forEach((line, index) => {
    const element = lineElement(line);
    fillLine(element, line);
    if (list.children[index] !== element) list.insertBefore(element, list.children[index] || null);
  });
  const empty = view.lines.length === 0;
  $("[data-cart-filled]").hidden = empty;
  $("[data-cart-empty]").hidden = !empty;
  $("[data-cart-items]").textContent = String(view.totals.item_count);
  $("[data-cart-subtotal]").textContent = money(view.totals.subtotal_cents);
  $("[data-checkout-link]").hidden = !view.checkout_ready;
  $("[data-cart-blocked]").hidden = view.checkout_ready || empty;
}

async function change(element, quantity) {
  const productId = element.dataset.line;
  const name = $("[data-line-name]", element).textContent;
  const next = $$("[data-line]").filter((candidate) => candidate !== element)[0];
  element.classList.add("is-busy");
  const result = quantity <= 0 ? await removeItem(productId) : await setQuantity(productId, quantity);
  element.classList.remove("is-busy");
  if (result.ok) {
    delete element.dataset.error;
    if (quantity <= 0) {
      toast(`Removed ${name} from your cart.`);
      // The line is gone: put focus somewhere sensible rather than on <body>.
      const target = next ? $("[data-quantity]", next) : $("[data-cart-empty] a");
      if (target) target.focus();
    }
    return;
  }
  const message = result.status === 409 ? conflictMessage(result, name) : problemText(result);
  element.dataset.error = message;
  element.classList.add("has-issue");
  const issue = $("[data-line-issue]", element);
  $("[data-line-issue-text]", issue).textContent = message;
  issue.hidden = false;
  const input = $("[data-quantity]", element);
  toast(message, { error: true });
  input.focus();
}

export async function init({ cartReady }) {
  const data = readJSON("cart-data");
  images = (data && data.images) || {};
  const list = $("[data-cart-lines]");
  if (!list) return;
  list.addEventListener("submit", (event) => {
    const form = event.target.closest("[data-line-form]");
    if (!form) return;
    event.preventDefault();
    const element = form.closest("[data-line]");
    const submitter = event.submitter;
    const input = $("[data-quantity]", element);
    let quantity = Number(input.value);
    if (submitter && submitter.hasAttribute("data-remove")) quantity = 0;
    else if (submitter && submitter.dataset.step) quantity = Number(input.value) + Number(submitter.dataset.step);
    change(element, quantity);
  });
  list.addEventListener("keydown", (event) => {
    // Enter in a quantity box would "click" the form's first button (the minus): set it instead.
    if (event.key !== "Enter" || !event.target.matches("[data-quantity]")) return;
    event.preventDefault();
    event.target.dispatchEvent(new Event("change", { bubbles: true }));
  });
  list.addEventListener("change", (event) => {
    const input = event.target.closest("[data-quantity]");
    if (!input) return;
    const quantity = Math.floor(Number(input.value));
    if (!Number.isFinite(quantity) || quantity < 0) {
      input.value = "1";
      return;
    }
    change(input.closest("[data-line]"), quantity);
  });
  await cartReady;
  onCart((view) => render(view));
}
