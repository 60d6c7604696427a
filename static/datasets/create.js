// Create-dataset form: the label types and accepted extensions follow the data type; the
// annotation format is offered (and required) only when "already labeled" is ticked for a
// label type that supports a labeled import; the schema fields show for tables only.
const form = document.querySelector("[data-dataset-create]");

function read(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : null;
}

if (form) {
  const config = read("dataset-create-config");
  const labeledTypes = new Set(read("dataset-labeled-types"));
  const formats = read("dataset-formats");
  const dataType = form.querySelector("[name=data_type]");
  const labelType = form.querySelector("[name=label_type]");
  const labeled = form.querySelector("[name=labeled]");
  const format = form.querySelector("[name=import_format]");
  const extensions = form.querySelector("[data-extensions]");
  const labeledSection = form.querySelector("[data-labeled-section]");
  const tableSection = form.querySelector("[data-table-section]");
  const formatField = format.closest(".field");
  const allFormats = [...format.options].map((o) => [o.value, o.textContent]);

  function syncLabelTypes() {
    const wanted = config.labelTypes[dataType.value] || [];
    const current = labelType.value;
    labelType.replaceChildren(...wanted.map(([value, text]) => new Option(text, value)));
    if (wanted.some(([value]) => value === current)) labelType.value = current;
    extensions.textContent = `Supported formats: ${config.extensions[dataType.value]}`;
    tableSection.hidden = dataType.value !== "table";
  }

  function syncLabeled() {
    const offered = labeledTypes.has(labelType.value);
    labeledSection.hidden = !offered;
    if (!offered) labeled.checked = false;
    const on = offered && labeled.checked;
    formatField.hidden = !on;
    format.required = on;
    const allowed = new Set(formats[labelType.value] || []);
    const keep = format.value;
    format.replaceChildren(new Option("—", ""),
      ...allFormats.filter(([value]) => allowed.has(value)).map(([value, text]) => new Option(text, value)));
    if (allowed.has(keep)) format.value = keep;
  }

  dataType.addEventListener("change", () => { syncLabelTypes(); syncLabeled(); });
  labelType.addEventListener("change", syncLabeled);
  labeled.addEventListener("change", syncLabeled);
  syncLabelTypes();
  syncLabeled();
}
