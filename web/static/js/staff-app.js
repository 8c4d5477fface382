// Entry point of every staff page: theme toggle, sign-out, then the page's own module.

import { initTheme } from "./theme.js";
import { initSignOut } from "./staff-common.js";

const PAGES = {
  "staff-login": "./staff-login.js",
  "staff-board": "./staff-board.js",
  "staff-inventory": "./staff-inventory.js",
  "staff-metrics": "./staff-metrics.js",
};

initTheme();
initSignOut();
const module = PAGES[document.body.dataset.page];

(async () => {
  try {
    if (module) {
      const page = await import(module);
      await page.init();
    }
  } finally {
    // Tests (and anyone curious) can wait for this before interacting.
    document.documentElement.dataset.ready = "true";
  }
})();
