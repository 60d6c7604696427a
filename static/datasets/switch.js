// The sample browser's data switcher (a version or the working data). Choosing an entry reloads
// the page, because the header's actions, the label counts and the banner change with the data
// shown. The filters come along from the address bar, which the htmx filter form keeps current
// (the switcher's hidden copies date from the page load); without scripts, its button submits them.
document.addEventListener("change", (event) => {
  const select = event.target.closest("[data-data-switch]");
  if (!select) return;
  const params = new URLSearchParams(window.location.search);
  params.delete("page");
  params.set(select.name, select.value);
  window.location.assign(`${select.form.action}?${params}`);
});
