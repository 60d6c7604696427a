// Column chooser of list tables (templates/components/table.html with Table.column_chooser):
// each checkbox shows or hides one column (th/td with data-col). The choice is remembered per
// user and table in localStorage ("atelier:columns:<user>:<table id>" → the hidden keys) and
// applied again after htmx swaps the table's results (search, filters, sort, pages).
function storageKey(chooser) { return `atelier:columns:${chooser.dataset.user}:${chooser.dataset.columnChooser}`; }

function hiddenKeys(chooser) {
  try {
    const saved = JSON.parse(localStorage.getItem(storageKey(chooser)) || "null");
    if (Array.isArray(saved)) return new Set(saved);
  } catch { /* unreadable: fall back to the defaults */ }
  return new Set([...chooser.querySelectorAll("input[data-col]")].filter((b) => b.dataset.default === "hidden").map((b) => b.dataset.col));
}

function apply(chooser) {
  const hidden = hiddenKeys(chooser);
  const block = document.getElementById(chooser.dataset.columnChooser);
  for (const box of chooser.querySelectorAll("input[data-col]")) box.checked = !hidden.has(box.dataset.col);
  for (const cell of block?.querySelectorAll("th[data-col], td[data-col]") || []) cell.hidden = hidden.has(cell.dataset.col);
}

function init(chooser) {
  if (chooser.dataset.ready) return;
  chooser.dataset.ready = "1";
  chooser.addEventListener("change", (event) => {
    const box = event.target.closest("input[data-col]");
    if (!box) return;
    event.stopPropagation(); // not a filter: the toolbar form must not refetch the rows
    const hidden = [...chooser.querySelectorAll("input[data-col]")].filter((b) => !b.checked).map((b) => b.dataset.col);
    localStorage.setItem(storageKey(chooser), JSON.stringify(hidden));
    apply(chooser);
  });
  chooser.querySelector("[data-columns-reset]")?.addEventListener("click", () => {
    localStorage.removeItem(storageKey(chooser));
    apply(chooser);
  });
  apply(chooser);
}

function initAll() { document.querySelectorAll("[data-column-chooser]").forEach(init); }

initAll();
document.addEventListener("htmx:afterSwap", () => document.querySelectorAll("[data-column-chooser]").forEach(apply));
document.addEventListener("htmx:load", initAll);
