// Small pieces of workbench UI shared by every editor: the label picker popup, the help
// overlay, the context menu and toasts. Plain DOM, no framework.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "style") node.setAttribute("style", value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function swatch(color) {
  return el("span", { class: "wb-swatch", style: `background:${color || "#98a2b3"}`, "aria-hidden": "true" });
}

let openPicker = null;

// Ask for a label near (x, y). Number keys pick the n-th label, typing filters, Enter picks
// the highlighted one, Esc cancels. With `create`, an unknown name can be added with a colour.
// Resolves to a label name, or null when cancelled.
// Twenty distinct colours (Trubetskoy's list); a new label takes the first one no label uses yet,
// so labels added one after another from the picker stay apart on the canvas.
const PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c", "#ffe119", "#008080",
  "#e6beff", "#9a6324", "#800000", "#aaffc3", "#808000", "#000075", "#fabebe", "#ffd8b1", "#808080", "#fffac8"];

export function nextColor(labels) {
  const used = new Set(labels.map((l) => (l.color || "").toLowerCase()));
  return PALETTE.find((c) => !used.has(c)) || PALETTE[labels.length % PALETTE.length];
}

export function pickLabel({ x, y, labels, last = "", title = "Label", create = null, disabled = () => "" }) {
  if (openPicker) openPicker.close(null);
  return new Promise((resolve) => {
    let highlighted = Math.max(0, labels.findIndex((l) => l.name === last));
    const input = el("input", { type: "text", class: "wb-picker-input", placeholder: create ? "Search or type a new label" : "Search labels", "aria-label": "Label name", autocomplete: "off" });
    const colorInput = create ? el("input", { type: "color", class: "wb-picker-color", value: nextColor(labels), "aria-label": "Colour of a new label" }) : null;
    const list = el("ul", { class: "wb-picker-list", role: "listbox" });
    const error = el("p", { class: "wb-picker-error", role: "alert" });
    const box = el("div", { class: "wb-picker", role: "dialog", "aria-label": title, "data-testid": "label-picker" },
      el("p", { class: "wb-picker-title" }, title), el("div", { class: "wb-picker-row" }, colorInput, input), list, error);
    const visible = () => labels.filter((l) => l.name.toLowerCase().includes(input.value.trim().toLowerCase()));
    const render = () => {
      list.replaceChildren();
      visible().forEach((label, i) => {
        const why = disabled(label);
        const item = el("li", { role: "option", class: `wb-picker-item${i === highlighted ? " active" : ""}${why ? " disabled" : ""}`,
          "aria-selected": i === highlighted ? "true" : "false", "aria-disabled": why ? "true" : null, title: why || null,
          onmousedown: (e) => { e.preventDefault(); if (!why) close(label.name); } },
        i < 9 ? el("kbd", {}, String(i + 1)) : el("span", { class: "wb-kbd-gap" }), swatch(label.color),
        el("span", { class: "wb-picker-name" }, label.name), why ? el("span", { class: "wb-picker-no", "aria-label": "not allowed" }, "✕") : null);
        list.append(item);
      });
      if (create && input.value.trim() && !labels.some((l) => l.name === input.value.trim())) {
        list.append(el("li", { class: "wb-picker-item wb-picker-new", onmousedown: (e) => { e.preventDefault(); addNew(); } },
          el("span", { class: "wb-kbd-gap" }), "+ Add label ", el("strong", {}, input.value.trim())));
      }
    };
    const addNew = async () => {
      const name = input.value.trim();
      const result = await create(name, colorInput.value);
      if (result.error) { error.textContent = result.error; return; }
      close(name);
    };
    const close = (value) => {
      box.remove();
      document.removeEventListener("mousedown", outside, true);
      openPicker = null;
      resolve(value);
    };
    const outside = (e) => { if (!box.contains(e.target)) close(null); };
    input.addEventListener("input", () => { highlighted = 0; render(); });
    input.addEventListener("keydown", (e) => {
      const items = visible();
      if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); close(null); }
      else if (e.key === "ArrowDown") { e.preventDefault(); highlighted = Math.min(items.length - 1, highlighted + 1); render(); }
      else if (e.key === "ArrowUp") { e.preventDefault(); highlighted = Math.max(0, highlighted - 1); render(); }
      else if (e.key === "Enter") {
        e.preventDefault();
        const exact = labels.find((l) => l.name === input.value.trim());
        if (create && input.value.trim() && !exact) { addNew(); return; }
        const pick = exact || items[highlighted];
        if (pick && !disabled(pick)) close(pick.name);
      } else if (/^[1-9]$/.test(e.key) && !input.value) {
        e.preventDefault();
        const pick = items[Number(e.key) - 1];
        if (pick && !disabled(pick)) close(pick.name);
      }
      e.stopPropagation();
    });
    document.body.append(box);
    const rect = box.getBoundingClientRect();
    box.style.left = `${Math.min(Math.max(8, x), window.innerWidth - rect.width - 8)}px`;
    box.style.top = `${Math.min(Math.max(8, y), window.innerHeight - rect.height - 8)}px`;
    render();
    input.focus();
    setTimeout(() => document.addEventListener("mousedown", outside, true), 0);
    openPicker = { close };
  });
}

export function contextMenu({ x, y, items }) {
  const menu = el("div", { class: "wb-menu", role: "menu", "data-testid": "shape-menu" },
    items.map((item) => el("button", { type: "button", role: "menuitem", class: "wb-menu-item",
      onclick: () => { menu.remove(); item.action(); } }, item.label)));
  const outside = (e) => { if (!menu.contains(e.target)) { menu.remove(); document.removeEventListener("mousedown", outside, true); } };
  document.body.append(menu);
  menu.style.left = `${Math.min(x, window.innerWidth - menu.offsetWidth - 8)}px`;
  menu.style.top = `${Math.min(y, window.innerHeight - menu.offsetHeight - 8)}px`;
  setTimeout(() => document.addEventListener("mousedown", outside, true), 0);
  menu.querySelector("button")?.focus();
}

export function toast(message, tone = "info") {
  let host = document.querySelector(".wb-toasts");
  if (!host) { host = el("div", { class: "wb-toasts", "aria-live": "polite" }); document.body.append(host); }
  const item = el("div", { class: `wb-toast wb-toast-${tone}`, role: tone === "error" ? "alert" : "status" }, message);
  host.append(item);
  setTimeout(() => item.remove(), tone === "error" ? 8000 : 3500);
}

// The help overlay lists every shortcut the current editor registered.
export function helpOverlay(shortcuts) {
  const rows = shortcuts.map(([keys, what]) => el("tr", {}, el("td", {}, keys.split(" / ").map((k, i) =>
    // "+" joins keys only between two of them: the "+" key on its own stays a key.
    [i ? " / " : "", ...k.split(/(?<=.)\+(?=.)/).map((p, j) => [j ? "+" : "", el("kbd", {}, p)])])), el("td", {}, what)));
  const dialog = el("div", { class: "wb-help", role: "dialog", "aria-modal": "true", "aria-label": "Keyboard shortcuts", "data-testid": "help-overlay" },
    el("div", { class: "wb-help-box" },
      el("div", { class: "wb-help-head" }, el("h2", {}, "Keyboard shortcuts"),
        el("button", { type: "button", class: "btn btn-ghost btn-sm", onclick: () => dialog.remove() }, "Close (Esc)")),
      el("table", { class: "wb-help-table" }, el("tbody", {}, rows))));
  dialog.addEventListener("keydown", (e) => { if (e.key === "Escape" || e.key === "?") { e.preventDefault(); e.stopPropagation(); dialog.remove(); } });
  dialog.addEventListener("mousedown", (e) => { if (e.target === dialog) dialog.remove(); });
  document.body.append(dialog);
  dialog.tabIndex = -1;
  dialog.focus();
  return dialog;
}

// replaceChildren that skips absent parts (null, false), so optional panels can be written inline.
export function fill(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}
