// Shared by the staff pages: authenticated API calls with the CSRF token, the live event
// stream with its "reconnecting" banner, dialogs that give focus back, and sign-out.

import { $, api, toast } from "./util.js";

const CSRF_COOKIE = "pickup_csrf";
let csrfToken = null;

function cookie(name) {
  const found = document.cookie.split("; ").find((part) => part.startsWith(`${name}=`));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : null;
}

async function freshToken() {
  const me = await api("/api/staff/me");
  if (me.ok && me.data) csrfToken = me.data.csrf_token;
  return csrfToken;
}

function toLogin() {
  const next = location.pathname + location.search;
  location.assign(`/admin/login?next=${encodeURIComponent(next)}`);
}

/**
 * A staff API call. Writes carry X-CSRF-Token (from the readable cookie, or /api/staff/me);
 * a rejected token is fetched again once; an ended session goes back to the sign-in page.
 */
export async function staffApi(path, options = {}) {
  const method = options.method || "GET";
  const write = !["GET", "HEAD"].includes(method);
  const send = async () => {
    const headers = { ...(options.headers || {}) };
    if (write) headers["X-CSRF-Token"] = csrfToken || cookie(CSRF_COOKIE) || (await freshToken()) || "";
    return api(path, { ...options, headers });
  };
  let result = await send();
  if (write && result.status === 403 && result.data && String(result.data.type).endsWith("/csrf-token-invalid")) {
    await freshToken();
    result = await send();
  }
  if (result.status === 401) toLogin();
  return result;
}

export function problemMessage(result, fallback = "That did not work. Please try again.") {
  if (!result) return "The shop's server cannot be reached. Check the connection and try again.";
  if (result.status === 503) return "The shop's systems are unavailable just now. Please try again in a moment.";
  const data = result.data || {};
  if (Array.isArray(data.errors) && data.errors.length) {
    return data.errors.map((error) => error.message || error.msg || error.detail).filter(Boolean).join(" ") || data.detail || fallback;
  }
  return data.detail || data.title || fallback;
}

export function initSignOut() {
  const button = $("[data-sign-out]");
  if (!button) return;
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await staffApi("/api/staff/logout", { method: "POST" });
    } catch {
      /* signed out locally anyway: the cookie is HttpOnly, the server ends it on expiry */
    }
    location.assign("/admin/login?signed_out=1");
  });
}

/**
 * The staff event stream (/api/admin/events). EventSource reconnects by itself with
 * Last-Event-ID; when the browser gives up (the stream answered an error) a new one is
 * opened with a growing delay. While disconnected the banner says so; once the stream is
 * back, whichever way it came back, `resync` runs so the page catches up on what it missed
 * (a replay cannot cover a stream that never got an event id, nor a fresh EventSource).
 */
export function liveStream(handlers, { onState = () => {} } = {}) {
  const banner = $("[data-live-banner]");
  const bannerText = banner && $("[data-live-banner-text]", banner);
  const message = bannerText ? bannerText.textContent : "";
  let source = null;
  let delay = 1000;
  let lostTimer = null;
  let lost = false;
  let everOpen = false;
  const showBanner = () => {
    if (!banner) return;
    banner.hidden = false;
    // Written after it is shown, so assistive technology reads the status out.
    if (bannerText) {
      bannerText.textContent = "";
      setTimeout(() => {
        bannerText.textContent = message;
      }, 50);
    }
  };
  const setLost = (isLost) => {
    if (isLost) {
      // A blip shorter than a second is not worth a banner; further errors while already
      // disconnected do not push it back.
      if (!lost) lostTimer = setTimeout(showBanner, 800);
    } else {
      clearTimeout(lostTimer);
      if (banner) banner.hidden = true;
    }
    lost = isLost;
    onState(isLost ? "reconnecting" : "live");
  };
  const open = () => {
    source = new EventSource("/api/admin/events");
    source.addEventListener("open", () => {
      delay = 1000;
      const reconnected = everOpen || lost;
      everOpen = true;
      setLost(false);
      if (reconnected && handlers.resync) handlers.resync();
    });
    source.addEventListener("error", () => {
      setLost(true);
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        setTimeout(async () => {
          // A stream refused for an ended session: back to sign-in instead of looping.
          const me = await api("/api/staff/me").catch(() => null);
          if (me && me.status === 401) return toLogin();
          open();
        }, delay);
        delay = Math.min(delay * 2, 30000);
      }
    });
    for (const [type, handler] of Object.entries(handlers)) {
      source.addEventListener(type, (event) => {
        let data = null;
        try {
          data = JSON.parse(event.data);
        } catch {
          data = null;
        }
        handler(data);
      });
    }
  };
  open();
  window.addEventListener("pagehide", () => source && source.close());
  return { close: () => source && source.close() };
}

/** Opens a <dialog> modally and gives focus back to whatever opened it when it closes. */
export function openDialog(dialog, opener = document.activeElement) {
  if (!dialog.dataset.wired) {
    dialog.dataset.wired = "true";
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog || event.target.closest("[data-close-dialog]")) dialog.close();
    });
    dialog.addEventListener("close", () => {
      const back = dialog._opener;
      if (back && back.isConnected) back.focus();
    });
  }
  dialog._opener = opener;
  dialog.showModal();
}

export { toast };
