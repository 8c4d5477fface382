// Order lookup: checks the field before sending, and lists the orders placed in this browser.

import { $, orders, when } from "./util.js";

export async function init() {
  const form = $("[data-lookup-form]");
  if (form) {
    form.addEventListener("submit", (event) => {
      const input = form.elements.order;
      const error = $('[data-error-for="order"]', form);
      if (!input.value.trim()) {
        event.preventDefault();
        error.textContent = "Enter your order number or paste the link from your confirmation.";
        input.setAttribute("aria-invalid", "true");
        input.focus();
      }
    });
  }
  const known = orders.all();
  const section = $("[data-recent-orders]");
  if (!section || known.length === 0) return;
  const list = $("[data-recent-list]", section);
  for (const order of known.slice(0, 5)) {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = `/orders/${order.order_id}/status`;
    const code = document.createElement("span");
    code.textContent = `Order ${order.code}`;
    const time = document.createElement("span");
    time.className = "muted";
    time.textContent = order.placed_at ? `placed ${when(order.placed_at)}` : "";
    link.append(code, time);
    item.append(link);
    list.append(item);
  }
  section.hidden = false;
}
