// Logs tab: show the From/To fields only for a custom time window.
const form = document.querySelector("[data-log-form]");
if (form) {
  const windowSelect = form.querySelector("[data-log-window]");
  const custom = form.querySelector("[data-log-custom]");
  const sync = () => {
    const on = windowSelect.value === "custom";
    custom.hidden = !on;
    custom.querySelectorAll("input").forEach((input) => { input.required = on; });
  };
  windowSelect.addEventListener("change", sync);
  sync();
}
