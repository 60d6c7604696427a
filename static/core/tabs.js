// In-page tabs: <div data-tabs> holding role="tab" buttons whose aria-controls name the
// panels. Click or arrow keys select a tab; the other panels are hidden. Tabs that are
// links (components/tabs.html) need none of this.

function select(tab) {
  const list = tab.closest("[data-tabs]");
  for (const other of list.querySelectorAll("[role=tab]")) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.classList.toggle("active", selected);
    other.tabIndex = selected ? 0 : -1;
    const panel = document.getElementById(other.getAttribute("aria-controls"));
    if (panel) panel.hidden = !selected;
  }
}

document.addEventListener("click", (event) => {
  const tab = event.target.closest("[data-tabs] [role=tab]");
  if (tab) select(tab);
});

document.addEventListener("keydown", (event) => {
  const tab = event.target.closest?.("[data-tabs] [role=tab]");
  if (!tab || !["ArrowLeft", "ArrowRight", "Home", "End"].includes(event.key)) return;
  const tabs = [...tab.closest("[data-tabs]").querySelectorAll("[role=tab]")];
  const index = tabs.indexOf(tab);
  const next = {
    ArrowLeft: tabs[(index - 1 + tabs.length) % tabs.length],
    ArrowRight: tabs[(index + 1) % tabs.length],
    Home: tabs[0],
    End: tabs[tabs.length - 1],
  }[event.key];
  event.preventDefault();
  select(next);
  next.focus();
});
