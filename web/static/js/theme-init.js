// Loaded as a classic script in <head> so a saved theme applies before the first paint.
(function () {
  try {
    var theme = localStorage.getItem("pickup.theme");
    if (theme === "dark" || theme === "light") document.documentElement.dataset.theme = theme;
  } catch (error) {
    /* storage blocked: the system preference applies */
  }
})();
