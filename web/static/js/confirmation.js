// Confirmation: the order's items and contact details (read with the lookup token this
// browser kept from checkout), add-to-calendar as a generated .ics file, and a share link.

import { $, api, money, orders, readJSON, toast, when } from "./util.js";

function icsDate(date) {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

function icsText(value) {
  return value.replace(/\\/g, "\\\\").replace(/;/g, "\\;").replace(/,/g, "\\,").replace(/\n/g, "\\n");
}

export function calendarFile(data) {
  const status = data.status;
  const start = new Date(status.estimated_ready_at || status.pickup_at);
  const end = new Date(start.getTime() + 15 * 60000);
  const url = new URL(data.status_url, window.location.origin).href;
  const lines = [
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//pickup//order//EN",
    "CALSCALE:GREGORIAN",
    "METHOD:PUBLISH",
    "BEGIN:VEVENT",
    `UID:${data.order_id}@pickup`,
    `DTSTAMP:${icsDate(new Date())}`,
    `DTSTART:${icsDate(start)}`,
    `DTEND:${icsDate(end)}`,
    `SUMMARY:${icsText(`Pick up order ${status.code} at ${data.shop_name}`)}`,
    `DESCRIPTION:${icsText(`Give the code ${status.code} at the counter. Live status: ${url}`)}`,
    `LOCATION:${icsText(data.shop_name)}`,
    `URL:${url}`,
    "BEGIN:VALARM",
    "TRIGGER:-PT10M",
    "ACTION:DISPLAY",
    `DESCRIPTION:${icsText(`Order ${status.code} is almost ready`)}`,
    "END:VALARM",
    "END:VEVENT",
    "END:VCALENDAR",
  ];
  return lines.join("\r\n") + "\r\n";
}

function download(data) {
  const blob = new Blob([calendarFile(data)], { type: "text/calendar;charset=utf-8" });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `pickup-order-${data.status.code}.ics`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

async function copyShare() {
  const input = $("[data-share-input]");
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    input.select();
    document.execCommand("copy");
  }
  toast("Link copied. Anyone with it can follow the order's status.");
}

function fillDetails(details) {
  const list = $("[data-details-items]");
  for (const item of details.items) {
    const row = document.createElement("li");
    row.className = "summary-line summary-line-plain";
    const spacer = document.createElement("span");
    spacer.className = "summary-qty";
    spacer.textContent = `${item.quantity} ×`;
    const name = document.createElement("p");
    name.className = "summary-name";
    name.textContent = item.name;
    const price = document.createElement("span");
    price.className = "summary-price";
    price.textContent = money(item.line_total_cents);
    row.append(spacer, name, price);
    list.append(row);
  }
  $("[data-details-total]").textContent = money(details.total_cents);
  const set = (key, value) => {
    $(`[data-detail="${key}"]`).textContent = value || "";
    const row = document.querySelector(`[data-detail-row="${key}"]`);
    if (row) row.hidden = !value;
  };
  set("name", details.customer.name);
  set("email", details.customer.email);
  set("phone", details.customer.phone ? `${details.customer.phone}${details.customer.sms_opt_in ? " (text when ready)" : ""}` : "");
  set("pickup", when(details.pickup_at));
  set("instructions", details.special_instructions);
  const first = details.customer.name.split(/\s+/)[0];
  $("[data-customer-greeting]").textContent = first ? `, ${first}` : "";
  $("[data-details-body]").hidden = false;
}

export async function init() {
  const data = readJSON("order-data");
  if (!data) return;
  $("[data-ics]").addEventListener("click", () => download(data));
  $("[data-share-copy]").addEventListener("click", copyShare);
  const known = orders.find(data.order_id);
  const loading = $("[data-details-loading]");
  const missing = () => {
    loading.hidden = true;
    $("[data-details-missing]").hidden = false;
  };
  if (!known || !known.token) return missing();
  let result;
  try {
    result = await api(data.details_url, { headers: { "X-Order-Token": known.token } });
  } catch {
    result = { ok: false };
  }
  loading.hidden = true;
  if (result.ok) fillDetails(result.data);
  else missing();
}
