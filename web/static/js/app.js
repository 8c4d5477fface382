// Entry point of every page: theme toggle, the header's cart count, then the page's module.

import { loadCart } from "./cart-store.js";
import { initTheme } from "./theme.js";

const PAGES = {
  home: "./menu.js",
  menu: "./menu.js",
  cart: "./cart.js",
  checkout: "./checkout.js",
  confirmation: "./confirmation.js",
  status: "./status.js",
  "order-status": "./lookup.js",
};

initTheme();
const cartReady = loadCart();
const module = PAGES[document.body.dataset.page];

(async () => {
  try {
    if (module) {
      const page = await import(module);
      await page.init({ cartReady });
    }
  } finally {
    await cartReady;
    // Tests (and anyone curious) can wait for this before interacting.
    document.documentElement.dataset.ready = "true";
  }
})();
