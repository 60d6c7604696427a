// Fills the mapping editor with the mapping generated from the chosen version's config.json
// (each primitive field gets a 0-based CSV column "index"), unless the user already edited it.
const mappings = JSON.parse(document.getElementById("batch-mappings")?.textContent || "{}");

for (const form of document.querySelectorAll("[data-batch-form]")) {
  const select = form.querySelector("[name=model_version]");
  const mapping = form.querySelector("[name=mapping]");
  let edited = Boolean(mapping.value.trim());
  mapping.addEventListener("input", () => { edited = true; });
  const update = () => {
    if (edited) return;
    const generated = mappings[select.value];
    mapping.value = generated ? JSON.stringify(generated, null, 2) : "";
  };
  select.addEventListener("change", update);
  update();
}
