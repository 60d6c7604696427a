// Expandable table rows: a [data-row-toggle] button shows or hides the row named by its
// aria-controls (the dataset list's input/output locations). Delegated, so rows swapped in
// by htmx (search, sort, pages) work too.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-row-toggle]");
  if (!button) return;
  const details = document.getElementById(button.getAttribute("aria-controls"));
  if (!details) return;
  const open = button.getAttribute("aria-expanded") !== "true";
  button.setAttribute("aria-expanded", String(open));
  details.hidden = !open;
});
