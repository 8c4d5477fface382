// Menu and home pages: add to cart without leaving the page, the product dialog, and live
// stock (the menu is fetched again every few seconds; an unchanged menu costs a 304).

import { addItem, conflictMessage, currentCart, onCart } from "./cart-store.js";
import { $, $$, api, money, problemText, readJSON, shop, toast } from "./util.js";

const REFRESH_MS = 15000;
const products = new Map();
let etag = null;
let dialogProduct = null;

function badgeFor(stock) {
  if (stock.status === "out_of_stock") return ["badge badge-out", "Out of stock"];
  if (stock.status === "low_stock") return ["badge badge-low", `Low stock: ${stock.available} left`];
  return ["badge badge-ok", "In stock"];
}

function inCart(productId) {
  const cart = currentCart();
  const line = cart && cart.lines.find((candidate) => candidate.product_id === productId);
  return line ? line.quantity : 0;
}

/** The most units of a product one more add may take, as far as the page knows. */
function limitFor(product) {
  if (product.stock.status === "out_of_stock") return 0;
  let limit = Math.min(product.max_per_order, shop.maxQuantity);
  if (product.stock.available != null) limit = Math.min(limit, product.stock.available);
  return Math.max(limit - inCart(product.id), 0);
}

function renderCard(product) {
  const card = document.querySelector(`[data-product-card="${CSS.escape(product.id)}"]`);
  if (!card) return;
  const [className, text] = badgeFor(product.stock);
  const badge = $("[data-stock-badge]", card);
  if (badge.textContent !== text) {
    badge.className = className;
    badge.textContent = text;
  }
  const out = product.stock.status === "out_of_stock";
  card.dataset.stock = product.stock.status;
  card.classList.toggle("is-out", out);
  $("[data-add-button]", card).disabled = out;
}

function applyMenu(menu) {
  for (const category of menu.categories) {
    for (const product of category.products) {
      products.set(product.id, product);
      renderCard(product);
    }
  }
  if (dialogProduct && products.has(dialogProduct)) renderDialogStock(products.get(dialogProduct));
}

async function refreshStock() {
  if (document.hidden) return;
  try {
    const headers = etag ? { "If-None-Match": etag } : {};
    const response = await fetch("/api/menu", { headers, cache: "no-store" });
    if (response.status === 304 || !response.ok) return;
    etag = response.headers.get("ETag");
    applyMenu(await response.json());
  } catch {
    /* offline for a moment: the next round tries again */
  }
}

async function add(productId, quantity, button) {
  const product = products.get(productId) || { name: "that item" };
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  const result = await addItem(productId, quantity);
  button.removeAttribute("aria-busy");
  button.disabled = products.get(productId)?.stock.status === "out_of_stock";
  if (result.ok) {
    toast(`Added ${quantity > 1 ? `${quantity} × ` : ""}${product.name} to your cart.`, {
      link: { href: "/cart", text: "View cart" },
    });
    // A moment of green with a tick; the toast (a live region) says it in words.
    button.classList.add("is-added");
    setTimeout(() => button.classList.remove("is-added"), 1600);
    return { ok: true };
  }
  const message = conflictMessage(result, product.name) || problemText(result);
  if (result.status === 409) refreshStock();
  return { ok: false, message };
}

// --- Product dialog ------------------------------------------------------------------------

function renderDialogStock(product) {
  const dialog = $("[data-product-dialog]");
  const line = $("[data-dialog-stock]", dialog);
  const [, text] = badgeFor(product.stock);
  line.dataset.level = product.stock.status;
  line.textContent = product.stock.status === "in_stock" ? "In stock" : text;
  const limit = limitFor(product);
  const quantity = $("[data-dialog-quantity]", dialog);
  quantity.max = String(Math.max(limit, 1));
  if (Number(quantity.value) > limit) quantity.value = String(Math.max(limit, 1));
  const held = inCart(product.id);
  const hint = $("[data-dialog-limit]", dialog);
  if (limit === 0 && product.stock.status !== "out_of_stock") {
    hint.textContent = `You have ${held} in your cart, the most you can order.`;
  } else {
    hint.textContent = `Up to ${product.max_per_order} per order${held ? `; ${held} already in your cart` : ""}.`;
  }
  $("[data-dialog-add]", dialog).disabled = limit === 0;
  syncDialogSteppers();
}

function syncDialogSteppers() {
  const dialog = $("[data-product-dialog]");
  const input = $("[data-dialog-quantity]", dialog);
  const value = Number(input.value) || 1;
  $('[data-dialog-step="-1"]', dialog).disabled = value <= 1;
  $('[data-dialog-step="1"]', dialog).disabled = value >= Number(input.max);
  const product = products.get(dialogProduct);
  if (product) $("[data-dialog-add]", dialog).textContent = `Add to cart · ${money(product.price_cents * value)}`;
}

function openDialog(productId, opener) {
  const dialog = $("[data-product-dialog]");
  const product = products.get(productId);
  if (!dialog || !product) return;
  dialogProduct = productId;
  $("[data-dialog-name]", dialog).textContent = product.name;
  $("[data-dialog-price]", dialog).textContent = money(product.price_cents);
  $("[data-dialog-description]", dialog).textContent = product.description;
  $("[data-dialog-image]", dialog).src = product.image || "/static/img/menu/pastry.svg";
  $("[data-dialog-product]", dialog).value = product.id;
  $("[data-dialog-error]", dialog).textContent = "";
  const allergens = $("[data-dialog-allergens]", dialog);
  allergens.replaceChildren();
  const label = document.createElement("span");
  label.className = "allergens-label";
  label.textContent = product.allergens.length ? "Contains" : "No listed allergens";
  allergens.append(label);
  for (const name of product.allergens) {
    const chip = document.createElement("span");
    chip.className = "allergen";
    chip.textContent = name.charAt(0).toUpperCase() + name.slice(1);
    allergens.append(chip);
  }
  $("[data-dialog-quantity]", dialog).value = "1";
  renderDialogStock(product);
  dialog.returnFocusTo = opener;
  dialog.showModal();
  $("[data-dialog-quantity]", dialog).focus();
  // The menu may be a few seconds old: ask for this product's stock now.
  api(`/api/menu/${encodeURIComponent(productId)}`)
    .then((result) => {
      if (!result.ok) return;
      products.set(productId, result.data);
      renderCard(result.data);
      if (dialogProduct === productId) renderDialogStock(result.data);
    })
    .catch(() => {});
}

function setupDialog() {
  const dialog = $("[data-product-dialog]");
  if (!dialog) return;
  const input = $("[data-dialog-quantity]", dialog);
  $("[data-dialog-close]", dialog).addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close(); // a click on the backdrop
  });
  dialog.addEventListener("close", () => {
    dialogProduct = null;
    if (dialog.returnFocusTo) dialog.returnFocusTo.focus();
  });
  for (const button of $$("[data-dialog-step]", dialog)) {
    button.addEventListener("click", () => {
      const next = (Number(input.value) || 1) + Number(button.dataset.dialogStep);
      input.value = String(Math.min(Math.max(next, 1), Number(input.max) || 1));
      syncDialogSteppers();
    });
  }
  input.addEventListener("input", syncDialogSteppers);
  $("[data-dialog-form]", dialog).addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("[data-dialog-error]", dialog);
    const quantity = Number(input.value);
    const max = Number(input.max);
    if (!Number.isInteger(quantity) || quantity < 1 || quantity > max) {
      error.textContent = `Choose a quantity from 1 to ${max}.`;
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    input.removeAttribute("aria-invalid");
    error.textContent = "";
    const outcome = await add(dialogProduct, quantity, $("[data-dialog-add]", dialog));
    if (outcome.ok) dialog.close();
    else error.textContent = outcome.message;
  });
}

export async function init() {
  const data = readJSON("menu-data");
  for (const product of (data && data.products) || []) products.set(product.id, product);

  document.addEventListener("submit", async (event) => {
    const form = event.target.closest("[data-add-form]");
    if (!form) return;
    event.preventDefault();
    const productId = form.elements.product_id.value;
    const outcome = await add(productId, 1, $("[data-add-button]", form));
    if (!outcome.ok) toast(outcome.message, { error: true });
  });
  document.addEventListener("click", (event) => {
    const opener = event.target.closest("[data-open-product]");
    if (opener) openDialog(opener.dataset.openProduct, opener);
  });
  setupDialog();
  onCart(() => {
    if (dialogProduct && products.has(dialogProduct)) renderDialogStock(products.get(dialogProduct));
  });

  const interval = Number(document.body.dataset.stockRefreshMs || REFRESH_MS);
  await refreshStock();
  setInterval(refreshStock, interval);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refreshStock();
  });
}
