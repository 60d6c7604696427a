// Dropdown menus (<details data-menu>) and the collapsible sidebar on narrow screens.
// Native <details> opens and closes on click; this adds: only one menu open at a time,
// close on a click outside or on Esc (focus returns to the menu button).

function openMenus() {
  return document.querySelectorAll("details[data-menu][open]");
}

document.addEventListener("click", (event) => {
  for (const menu of openMenus()) {
    if (!menu.contains(event.target)) menu.open = false;
  }
});

document.addEventListener("toggle", (event) => {
  const menu = event.target;
  if (!(menu instanceof HTMLDetailsElement) || !menu.matches("[data-menu]") || !menu.open) return;
  for (const other of openMenus()) if (other !== menu) other.open = false;
}, true);

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  for (const menu of openMenus()) {
    menu.open = false;
    menu.querySelector("summary")?.focus();
  }
});

function setSidebar(open) {
  document.body.classList.toggle("sidebar-open", open);
  document.querySelector("[data-sidebar-toggle]")?.setAttribute("aria-expanded", String(open));
  const scrim = document.querySelector("[data-sidebar-close]");
  if (scrim) scrim.hidden = !open;
}

document.addEventListener("click", (event) => {
  if (event.target.closest("[data-sidebar-toggle]")) {
    setSidebar(!document.body.classList.contains("sidebar-open"));
  } else if (event.target.closest("[data-sidebar-close]")) {
    setSidebar(false);
  }
});
