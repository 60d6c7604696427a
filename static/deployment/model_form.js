// Shows the fields of the chosen meta-model source ([data-source="storage training"]) and hides the rest.
function update(form) {
  const chosen = form.querySelector("input[name=source_type]:checked")?.value || "storage";
  for (const block of form.querySelectorAll("[data-source]")) {
    block.hidden = !block.dataset.source.split(" ").includes(chosen);
  }
}

for (const form of document.querySelectorAll("[data-model-form]")) {
  form.addEventListener("change", (event) => {
    if (event.target.name === "source_type") update(form);
  });
  update(form);
}
