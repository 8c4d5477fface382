// The header's dark-theme toggle: follows the system until the shopper chooses, then
// remembers the choice in localStorage (theme-init.js applies it before paint).

const KEY = "pickup.theme";
const media = window.matchMedia("(prefers-color-scheme: dark)");

function isDark() {
  const chosen = document.documentElement.dataset.theme;
  return chosen ? chosen === "dark" : media.matches;
}

export function initTheme() {
  const button = document.querySelector("[data-theme-toggle]");
  if (!button) return;
  const sync = () => {
    const dark = isDark();
    button.setAttribute("aria-pressed", String(dark));
    button.title = dark ? "Switch to light theme" : "Switch to dark theme";
  };
  button.addEventListener("click", () => {
    const next = isDark() ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    try {
      localStorage.setItem(KEY, next);
    } catch {
      /* not remembered, still applied */
    }
    sync();
  });
  media.addEventListener("change", sync);
  window.addEventListener("storage", (event) => {
    if (event.key !== KEY) return;
    if (event.newValue) document.documentElement.dataset.theme = event.newValue;
    else delete document.documentElement.dataset.theme;
    sync();
  });
  sync();
}
