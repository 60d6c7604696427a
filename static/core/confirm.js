// Typed-name confirmation (components/confirm_delete.html): the form's [data-confirm-submit]
// buttons stay disabled until the [data-confirm-name] input holds exactly that name.
// The server checks the same thing (apps.core.forms.ConfirmNameForm); this only guides.

function sync(input) {
  const matches = input.value === input.dataset.confirmName;
  const form = input.form || input.closest("form");
  for (const button of form?.querySelectorAll("[data-confirm-submit]") || []) button.disabled = !matches;
}

document.addEventListener("input", (event) => {
  if (event.target.matches?.("[data-confirm-name]")) sync(event.target);
});

// Content can arrive already filled (browser back/forward cache, a re-rendered form).
function syncAll(root) {
  for (const input of root.querySelectorAll("[data-confirm-name]")) sync(input);
}
syncAll(document);
document.addEventListener("htmx:load", (event) => syncAll(event.target));
document.addEventListener("pageshow", () => syncAll(document));
