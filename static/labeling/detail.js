// The job detail page of classification jobs: select samples (one by one or the whole page),
// add a label to all of them (typing a new name creates it), remove a label from the selected
// ones only, and — for sound classification — label the selection with a label's shortcut key
// after a confirmation (spec §10.1). Job managers delete the selected samples (spec §3.7): the
// button is disabled with an empty selection, and deleting the source files too needs the typed
// word DELETE. Everything goes through the labeling JSON API.
const configNode = document.getElementById("detail-config");
if (configNode) {
  const config = JSON.parse(configNode.textContent);
  const csrf = document.body.getAttribute("hx-headers") ? JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"] : "";
  const call = (method, path, body) => fetch(config.api + path, { method, credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrf }, body: JSON.stringify(body) })
    .then(async (r) => ({ status: r.status, body: await r.json().catch(() => null) }));
  const boxes = () => [...document.querySelectorAll("[data-select]")];
  const selected = () => boxes().filter((b) => b.checked).map((b) => b.dataset.select);
  const error = document.querySelector("[data-apply-error]");
  const message = (body) => (body && body.error ? Object.values(body.error.fields || {}).flat()[0] || body.error.message : "The change was refused.");
  function refresh() {
    const ids = selected();
    document.querySelectorAll("[data-sample]").forEach((n) => n.classList.toggle("selected", ids.includes(n.dataset.sample)));
    const counter = document.querySelector("[data-selected-count]");
    if (counter) counter.textContent = `${ids.length} selected`;
    const del = document.querySelector("[data-delete-open]");
    if (del) del.disabled = ids.length === 0;
    const all = document.querySelector("[data-select-page]");
    if (all) all.checked = ids.length > 0 && ids.length === boxes().length;
    const holder = document.querySelector("[data-selected-labels]");
    if (!holder) return;
    const counts = {};
    ids.forEach((id) => document.querySelector(`[data-sample="${id}"]`).querySelectorAll(".lb-tags .badge").forEach((b) => { counts[b.textContent] = (counts[b.textContent] || 0) + 1; }));
    holder.replaceChildren();
    if (!Object.keys(counts).length) return;
    const table = document.createElement("table");
    table.className = "table";
    table.innerHTML = "<thead><tr><th>Labels of selected files</th><th>Count</th><th></th></tr></thead>";
    const body = table.createTBody();
    Object.entries(counts).forEach(([name, n]) => {
      const row = body.insertRow();
      row.insertCell().textContent = name;
      row.insertCell().textContent = n;
      const button = document.createElement("button");
      button.type = "button"; button.className = "btn btn-sm btn-ghost"; button.textContent = "Remove";
      button.title = "Remove this label from the selected files only";
      button.addEventListener("click", async () => {
        const r = await call("DELETE", "samples/labels/", { samples: ids, labels: [name] });
        if (r.status === 200) location.reload(); else error.textContent = message(r.body);
      });
      row.insertCell().append(button);
    });
    holder.append(table);
  }
  document.addEventListener("change", (e) => {
    if (e.target.matches("[data-select-page]")) boxes().forEach((b) => { b.checked = e.target.checked; });
    if (e.target.matches("[data-select], [data-select-page]")) refresh();
  });
  async function apply(name) {
    const ids = selected();
    if (!ids.length) { error.textContent = "Select at least one sample first."; return; }
    if (!config.labels.some((l) => l.name === name)) {
      const created = await call("POST", "labels/", { name, color: "" });
      if (created.status !== 201) { error.textContent = message(created.body); return; }
    }
    const r = await call("POST", "samples/labels/", { samples: ids, labels: [name] });
    if (r.status === 200) location.reload(); else error.textContent = message(r.body);
  }
  document.querySelector("[data-apply-form]")?.addEventListener("submit", (e) => {
    e.preventDefault();
    apply(e.target.elements.label.value.trim());
  });
  document.addEventListener("keydown", (e) => {
    // Typing fields keep their keys; a checkbox just ticked (the usual focus here) does not.
    if (config.type !== "audio_classification" || e.target.closest("input:not([type=checkbox]), textarea, select")) return;
    const label = config.labels.find((l) => l.shortcut && l.shortcut === e.key);
    if (!label || !selected().length) return;
    e.preventDefault();
    if (window.confirm(`Label the ${selected().length} selected file(s) as "${label.name}"?`)) apply(label.name);
  });
  const dialog = document.querySelector("[data-delete-dialog]");
  if (dialog) {
    const source = dialog.querySelector("[data-delete-source]");
    const confirmBox = dialog.querySelector("[data-delete-confirm]");
    const deleteError = dialog.querySelector("[data-delete-error]");
    source.addEventListener("change", () => { confirmBox.hidden = !source.checked; });
    document.querySelector("[data-delete-open]").addEventListener("click", () => {
      dialog.querySelector("[data-delete-count]").textContent = selected().length;
      deleteError.textContent = "";
      dialog.showModal();
    });
    dialog.querySelector("[data-delete-go]").addEventListener("click", async () => {
      const r = await call("POST", "samples/delete/", { samples: selected(), delete_source: source.checked,
        confirm: dialog.querySelector("[name=confirm]").value.trim() });
      if (r.status === 200) location.reload(); else deleteError.textContent = message(r.body);
    });
  }
  refresh();
}
