// The algorithm form: shows the fields of the boot mode, edits input channels (with their optional
// constraint), output channels and hyperparameter definitions (type, default, range or enum
// constraint, required, description), checks each row as it is typed (the same rules the server
// applies again) and writes the rows as JSON into the hidden inputs/outputs/hyperparameters fields.
const form = document.querySelector("[data-algorithm-form]");

const HP_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const HP_DESCRIPTION = /^[A-Za-z0-9 _\-,.]*$/;
const CHANNEL_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,61}$/;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  if (tag === "input" && !attrs.type) node.type = "text"; // styled like the form's other text inputs
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (v === true) node.setAttribute(k, ""); else if (v !== false && v != null) node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}
function select(role, label, options, current) {
  const s = el("select", { "data-role": role, "aria-label": label }, ...options.map(([v, t]) => el("option", { value: v }, t)));
  if (current != null) s.value = String(current);
  return s;
}
function stored(name) {
  try { return JSON.parse(form.elements.namedItem(name).value || "[]") || []; } catch { return []; }
}
function problem(row, message) {
  let note = row.querySelector(".row-error");
  if (!note) { note = el("p", { class: "field-error row-error", role: "alert" }); row.append(note); }
  note.textContent = message || "";
  note.hidden = !message;
  row.classList.toggle("row-invalid", Boolean(message));
}
function removeButton(row) {
  const button = el("button", { type: "button", class: "btn btn-sm btn-ghost", "data-role": "remove" }, "Remove");
  button.addEventListener("click", () => { row.remove(); sync(); });
  return button;
}

// ---- channels ----------------------------------------------------------------------------------
function channelRow(kind, c = {}) {
  const row = el("div", { class: "editor-row editor-card", "data-channel-row": kind });
  const line = el("div", { class: "editor-line" },
    el("input", { "data-role": "name", "aria-label": "Parameter name", class: "mono", value: c.name || "", placeholder: kind === "inputs" ? "data_url" : "train_url" }),
    el("input", { "data-role": "description", "aria-label": "Description", class: "grow", value: c.description || "", placeholder: "Description" }),
    select("acquisition", "Acquisition", [["hyperparameter", "--argument"], ["env", "env variable"]], c.acquisition || "hyperparameter"));
  row.append(line);
  if (kind === "inputs") {
    const k = c.constraint || null;
    const toggle = el("input", { type: "checkbox", "data-role": "constrained", checked: Boolean(k) });
    const box = el("div", { class: "editor-line", "data-role": "constraint" },
      select("source", "Source", [["storage", "Storage path"], ["dataset", "Dataset"]], k?.source || "storage"),
      el("input", { "data-role": "label_type", "aria-label": "Label type", value: k?.label_type || "", placeholder: "label type (e.g. image_classification)" }),
      el("label", { class: "inline-check" }, el("input", { type: "checkbox", "data-role": "fmt-default", checked: (k?.data_format || []).includes("Default") }), " Default (Manifest)"),
      el("label", { class: "inline-check" }, el("input", { type: "checkbox", "data-role": "fmt-carbon", checked: (k?.data_format || []).includes("CarbonData") }), " CarbonData"),
      select("split", "Data split", [["any", "No limit"], ["split_only", "Only split datasets"], ["unsplit_only", "Only unsplit datasets"]], k?.split || "any"));
    box.hidden = !k;
    toggle.addEventListener("change", () => { box.hidden = !toggle.checked; sync(); });
    line.append(el("label", { class: "inline-check" }, toggle, " Input constraint"));
    row.append(box);
  }
  line.append(removeButton(row));
  return row;
}

function collectChannels(kind) {
  const out = [];
  for (const row of form.querySelectorAll(`[data-channel-row="${kind}"]`)) {
    const q = (r) => row.querySelector(`[data-role=${r}]`);
    const item = { name: q("name").value.trim(), description: q("description").value.trim(), acquisition: q("acquisition").value };
    problem(row, item.name && !CHANNEL_NAME.test(item.name) ? `"${item.name}": letters, digits and _, not starting with a digit.` : "");
    if (kind === "inputs") {
      item.constraint = q("constrained").checked ? {
        source: q("source").value, label_type: q("label_type").value.trim(), split: q("split").value,
        data_format: [q("fmt-default").checked && "Default", q("fmt-carbon").checked && "CarbonData"].filter(Boolean),
      } : null;
    }
    if (item.name || item.description) out.push(item);
  }
  return out;
}

// ---- hyperparameters ---------------------------------------------------------------------------
function hpRow(h = {}) {
  const row = el("div", { class: "editor-row editor-card", "data-hp-row": "" });
  const c = h.constraint || null;
  const kindSelect = select("constraint-kind", "Constraint", [["", "No constraint"], ["range", "Range"], ["enum", "Enumeration"]], c?.kind || "");
  const min = el("input", { "data-role": "min", "aria-label": "Minimum", placeholder: "min", class: "mono narrow", value: c?.min ?? "" });
  const max = el("input", { "data-role": "max", "aria-label": "Maximum", placeholder: "max", class: "mono narrow", value: c?.max ?? "" });
  const values = el("input", { "data-role": "values", "aria-label": "Allowed values", placeholder: "a, b, c", class: "mono", value: (c?.values || []).join(", ") });
  const showConstraint = () => {
    min.hidden = max.hidden = kindSelect.value !== "range";
    values.hidden = kindSelect.value !== "enum";
  };
  kindSelect.addEventListener("change", showConstraint);
  const defaultValue = h.default === undefined || h.default === null ? "" : String(h.default);
  row.append(
    el("div", { class: "editor-line" },
      el("input", { "data-role": "name", "aria-label": "Hyperparameter name", class: "mono", value: h.name || "", placeholder: "learning_rate" }),
      select("type", "Type", [["String", "String"], ["Integer", "Integer"], ["Float", "Float"], ["Boolean", "Boolean"]], h.type || "String"),
      el("input", { "data-role": "default", "aria-label": "Default value", class: "mono", value: defaultValue, placeholder: "default" }),
      el("label", { class: "inline-check" }, el("input", { type: "checkbox", "data-role": "required", checked: Boolean(h.required) }), " Required"),
      removeButton(row)),
    el("div", { class: "editor-line" }, kindSelect, min, max, values,
      el("input", { "data-role": "description", "aria-label": "Description", class: "grow", value: h.description || "", placeholder: "Description (letters, digits, spaces, - _ , .)" })));
  showConstraint();
  return row;
}

function number(text, integer) {
  if (text === "") return null;
  const n = Number(text);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) return NaN;
  return n;
}

function checkHp(item, hasConstraint) {
  if (!HP_NAME.test(item.name)) return `"${item.name}" is not a valid name (1–64 letters, digits, _ or -).`;
  if (!HP_DESCRIPTION.test(item.description)) return "The description may hold only letters, digits, spaces, - _ , .";
  const integer = item.type === "Integer";
  if (item.type === "Integer" || item.type === "Float") {
    const d = number(String(item.default), integer);
    if (d === null) return "Give a default value.";
    if (Number.isNaN(d)) return `The default must be ${integer ? "a whole number" : "a number"}.`;
    const c = item.constraint;
    if (c?.kind === "range") {
      if (Number.isNaN(c.min) || Number.isNaN(c.max)) return "The range bounds must be numbers.";
      if (c.min != null && c.max != null && c.min > c.max) return "The minimum is above the maximum.";
      if ((c.min != null && d < c.min) || (c.max != null && d > c.max)) return `The default ${d} is outside the range.`;
    }
  }
  if (item.type === "Boolean" && !["true", "false"].includes(String(item.default).toLowerCase())) return "A Boolean default is true or false.";
  if (item.constraint?.kind === "range" && !(item.type === "Integer" || item.type === "Float")) return "A range only applies to Integer and Float.";
  if (item.constraint?.kind === "enum") {
    if (!item.constraint.values.length) return "List the allowed values.";
    if (!item.constraint.values.map(String).includes(String(item.default))) return `The default must be one of ${item.constraint.values.join(", ")}.`;
  }
  return hasConstraint ? "" : "";
}

function collectHyperparameters() {
  const out = [];
  for (const row of form.querySelectorAll("[data-hp-row]")) {
    const q = (r) => row.querySelector(`[data-role=${r}]`);
    const type = q("type").value;
    const kind = q("constraint-kind").value;
    const integer = type === "Integer";
    let constraint = null;
    if (kind === "range") constraint = { kind, min: number(q("min").value.trim(), integer), max: number(q("max").value.trim(), integer) };
    if (kind === "enum") constraint = { kind, values: q("values").value.split(",").map((v) => v.trim()).filter(Boolean) };
    const raw = q("default").value.trim();
    const item = { name: q("name").value.trim(), type, default: raw, constraint, required: q("required").checked, description: q("description").value.trim() };
    if (!item.name && !raw) { problem(row, ""); continue; }
    problem(row, checkHp(item, Boolean(constraint)));
    if (type === "Integer" || type === "Float") item.default = number(raw, integer) ?? raw;
    if (type === "Boolean") item.default = raw.toLowerCase() === "true";
    if (constraint?.kind === "enum" && (type === "Integer" || type === "Float")) constraint.values = constraint.values.map((v) => number(v, integer) ?? v);
    out.push(item);
  }
  return out;
}

// ---- runtime environment preview ---------------------------------------------------------------
// Where the code, boot file and channels will sit in the run (the same layout the launcher makes).
function renderPreview(inputs, outputs) {
  const box = form.querySelector("[data-runtime-preview]");
  if (!box) return;
  const rows = [["Run directory", "$MA_MOUNT_PATH"], ["Local code folder", "$MA_JOB_DIR = $MA_MOUNT_PATH/user-job-dir"]];
  const code = (form.elements.namedItem("code_dir").value || "").trim().replace(/\/+$/, "");
  const folder = code.split("/").pop();
  if (code && folder && !folder.endsWith(":")) {
    rows.push(["Code folder", `$MA_MOUNT_PATH/user-job-dir/${folder}`]);
    const boot = (form.elements.namedItem("boot_file").value || "").trim();
    if (boot && ["preset", "preset_image"].includes(form.elements.namedItem("boot_mode").value)) rows.push(["Boot file", `$MA_MOUNT_PATH/user-job-dir/${folder}/${boot}`]);
  }
  for (const c of inputs) if (c.name) rows.push([`Input ${c.name}`, `$MA_MOUNT_PATH/inputs/${c.name}_0/`]);
  for (const c of outputs) if (c.name) rows.push([`Output ${c.name}`, `$MA_MOUNT_PATH/outputs/${c.name}_0/`]);
  box.replaceChildren(...rows.flatMap(([label, where]) => [el("dt", {}, label), el("dd", { class: "mono" }, where)]));
}

// ---- wiring ------------------------------------------------------------------------------------
function sync() {
  const inputs = collectChannels("inputs");
  const outputs = collectChannels("outputs");
  form.elements.namedItem("inputs").value = JSON.stringify(inputs);
  form.elements.namedItem("outputs").value = JSON.stringify(outputs);
  form.elements.namedItem("hyperparameters").value = JSON.stringify(collectHyperparameters());
  renderPreview(inputs, outputs);
}

function toggle() {
  const mode = form.elements.namedItem("boot_mode").value;
  for (const block of form.querySelectorAll("[data-show-when]")) {
    const [, values] = block.dataset.showWhen.split("=");
    block.hidden = !values.split(",").includes(mode);
  }
}

function mount(kind, boxSelector, rowFactory, rows, addLabel) {
  const box = form.querySelector(boxSelector);
  for (const r of rows) box.append(rowFactory(r));
  const add = el("button", { type: "button", class: "btn btn-sm", "data-add": kind }, addLabel);
  add.addEventListener("click", () => { box.insertBefore(rowFactory({}), add); sync(); });
  box.append(add);
}

if (form) {
  mount("inputs", "[data-editor=inputs]", (c) => channelRow("inputs", c), stored("inputs"), "Add input");
  mount("outputs", "[data-editor=outputs]", (c) => channelRow("outputs", c), stored("outputs"), "Add output");
  mount("hyperparameter", "[data-editor=hyperparameters]", hpRow, stored("hyperparameters"), "Add hyperparameter");
  toggle();
  sync();
  form.addEventListener("change", (event) => { if (event.target.name === "boot_mode") toggle(); sync(); });
  form.addEventListener("input", sync);
  form.addEventListener("submit", (event) => {
    sync();
    const bad = form.querySelector(".editor-row.row-invalid");
    if (bad) { event.preventDefault(); bad.scrollIntoView({ block: "center" }); bad.querySelector("input")?.focus(); }
  });
}
