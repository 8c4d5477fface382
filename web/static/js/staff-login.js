// The staff sign-in form: client checks, then POST /api/staff/login; wrong details, a locked
// account and the rate limit each get their own message. On success: the page asked for.

import { $, api } from "./util.js";

function minutes(seconds) {
  const value = Number(seconds);
  if (!Number.isFinite(value) || value <= 0) return "a moment";
  if (value < 60) return `${Math.ceil(value)} seconds`;
  const whole = Math.ceil(value / 60);
  return `${whole} minute${whole === 1 ? "" : "s"}`;
}

export function init() {
  const form = $("[data-login-form]");
  const alert = $("[data-login-alert]");
  const submit = $("[data-login-submit]");
  const email = form.elements.email;
  const password = form.elements.password;

  const fieldError = (input, message) => {
    const slot = $(`[data-error-for="${input.name}"]`);
    slot.textContent = message || "";
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  };
  const showAlert = (message) => {
    alert.textContent = message;
    alert.hidden = !message;
    if (message) alert.focus();
  };
  const busy = (on) => {
    submit.disabled = on;
    submit.setAttribute("aria-busy", String(on));
  };
  for (const input of [email, password]) input.addEventListener("input", () => fieldError(input, ""));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showAlert("");
    let firstBad = null;
    const emailValue = email.value.trim();
    if (!emailValue) fieldError(email, "Enter your email address.");
    else if (!email.checkValidity()) fieldError(email, "Enter an email address like sam@shop.example.");
    else fieldError(email, "");
    if (email.getAttribute("aria-invalid")) firstBad = email;
    if (!password.value) {
      fieldError(password, "Enter your password.");
      firstBad = firstBad || password;
    }
    if (firstBad) return firstBad.focus();

    busy(true);
    let result = null;
    try {
      result = await api("/api/staff/login", { method: "POST", json: { email: emailValue, password: password.value } });
    } catch {
      result = null;
    }
    if (result && result.ok) {
      location.assign(form.dataset.next || "/admin");
      return;
    }
    busy(false);
    password.value = "";
    const retry = result && (result.headers.get("Retry-After") || (result.data && result.data.retry_after));
    if (!result) showAlert("The shop's server cannot be reached. Check the connection and try again.");
    else if (result.status === 401) showAlert("That email and password do not match a staff account. Check them and try again.");
    else if (result.status === 423) showAlert(`This account is locked after too many failed sign-ins. Try again in ${minutes(retry)}, or ask an admin to set a new password.`);
    else if (result.status === 429) showAlert(`Too many sign-in attempts from this device. Wait ${minutes(retry)} and try again.`);
    else if (result.status === 422) showAlert("Check the email address and password, then try again.");
    else if (result.status === 503) showAlert("Sign-in is unavailable just now. Please try again in a moment.");
    else showAlert((result.data && result.data.detail) || "Sign-in did not work. Please try again.");
  });
}
