// The training job form: shows the fields of the chosen boot mode and experiment option, edits
// input/output channels and typed hyperparameters (defined by the chosen algorithm or built-in, or
// free rows for your own code), and lists only the chosen pool's flavors, with unusable ones
// disabled and the reason shown. The editors write JSON into the hidden inputs/outputs/hyperparameters
// fields on every change; the server validates every value again.
const form = document.querySelector("[data-job-form]");
const data = JSON.parse(document.getElementById("job-editor-data")?.textContent || "{}");

function field(name) { return form.elements.namedItem(name); }
function value(name) {
  const el = field(name);
  if (!el) return "";
  if (el instanceof RadioNodeList) return el.value;
  if (el.type === "checkbox") return el.checked ? "on" : "";
  return el.value;
}
function parse(name, fallback) {
  try { return JSON.parse(field(name).value || "null") ?? fallback; } catch { return fallback; }
}
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  if (tag === "input" && !attrs.type) node.type = "text"; // styled like the form's other text inputs
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (v === true) node.setAttribute(k, ""); else if (v !== false && v != null) node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

function definitions() {
  const algorithm = value("algorithm");
  if (algorithm && data.algorithms?.[algorithm]) return data.algorithms[algorithm];
  if (value("boot_mode") === "builtin" && data.builtins?.[value("builtin")]) return data.builtins[value("builtin")];
  return null;
}

function toggle() {
  fixBootFields();  // first: it may change boot_mode, which the blocks below depend on
  for (const block of form.querySelectorAll("[data-show-when]")) {
    const [name, values] = block.dataset.showWhen.split("=");
    block.hidden = !values.split(",").includes(value(name));
  }
}

// With "My algorithm" chosen, the boot fields show the algorithm's values greyed out (inert: they
// cannot be edited; the server uses the algorithm's values anyway). Clearing it restores the user's.
const BOOT_FIELDS = ["boot_mode", "engine", "image", "code_dir", "boot_file", "boot_command"];
let ownBootValues = null;
function fixBootFields() {
  const block = form.querySelector("[data-fixed-by-algorithm]");
  const boot = data.algorithms?.[value("algorithm")]?.boot;
  if (boot && !ownBootValues) ownBootValues = Object.fromEntries(BOOT_FIELDS.map((n) => [n, value(n)]));
  const values = boot || (block.inert ? ownBootValues : null);
  if (values) {
    for (const name of BOOT_FIELDS) if (field(name) && values[name] != null) field(name).value = values[name];
  }
  if (!boot) ownBootValues = null;
  block.inert = Boolean(boot);
  block.classList.toggle("is-fixed", Boolean(boot));
  block.querySelector("[data-fixed-note]").hidden = !boot;
}

// ---- channels ----------------------------------------------------------------------------------
// The dataset-version picker beside an input channel (datasets item 48): filters by label type,
// format and split, and the published versions of this workspace matching them. The server filters
// (one answer holds at most `limit` versions and says when it was cut); filters the algorithm's input
// constraint fixes are preset and locked. Answers are shared by every row asking the same filters.
const picker = data.dataset_picker || {};
const CONSTRAINT_FORMATS = picker.constraint_formats || {};
const CONSTRAINT_SPLITS = picker.constraint_splits || {};
const LOCKED = "Set by the algorithm's input constraint";
const answers = new Map();

function versionsFor(query) {
  if (!answers.has(query)) {
    const headers = { Accept: "application/json" };
    const answer = fetch(`${picker.url}?${query}`, { headers }).then(async (response) => {
      const body = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(body.error || "The versions could not be listed; change a filter to try again.");
      return body;
    });
    answers.set(query, answer);
    answer.catch(() => answers.delete(query)); // a failed answer is asked again next time
  }
  return answers.get(query);
}

function filterSelect(label, anyText, options, locked) {
  const select = el("select", { "aria-label": label, "data-role": "dataset-filter" },
    el("option", { value: "" }, anyText), ...options.map(([value, text]) => el("option", { value }, text)));
  if (locked) {
    if (![...select.options].some((o) => o.value === locked)) select.append(el("option", { value: locked }, locked));
    select.value = locked;
    select.disabled = true;
    select.title = LOCKED;
  }
  return select;
}

function datasetPicker(channel, uri) {
  const constraint = channel.constraint?.source === "dataset" ? channel.constraint : null;
  const name = channel.name || "channel";
  // Formats the algorithm accepts: one is a locked filter, several leave the others disabled.
  const allowed = (constraint?.data_format || []).map((f) => CONSTRAINT_FORMATS[f]).filter(Boolean);
  const labelType = filterSelect(`${name} label type filter`, "Any label type", picker.label_types || [],
    constraint?.label_type || "");
  const format = filterSelect(`${name} format filter`, "Any format", picker.formats || [],
    allowed.length === 1 ? allowed[0] : "");
  if (allowed.length > 1) {
    for (const option of format.options) {
      if (option.value && !allowed.includes(option.value)) Object.assign(option, { disabled: true, title: LOCKED });
    }
  }
  const split = filterSelect(`${name} split filter`, "Any split", picker.splits || [],
    CONSTRAINT_SPLITS[constraint?.split] || "");
  const locked = [labelType, format, split].some((filter) => filter.disabled) || allowed.length > 1;
  const select = el("select", { "aria-label": `${name} dataset version`, "data-role": "dataset", class: "grow" },
    el("option", { value: "" }, "Loading dataset versions…"));
  const note = el("span", { class: "help", "data-role": "dataset-note", role: "status" });
  let asked = 0;
  async function refresh() {
    const params = new URLSearchParams();
    if (labelType.value) params.set("label_type", labelType.value);
    for (const f of format.value ? [format.value] : allowed) params.append("format", f);
    if (split.value) params.set("split", split.value);
    const mine = ++asked;
    select.disabled = true;
    try {
      const body = await versionsFor(params.toString());
      if (mine !== asked) return; // a later filter change answers instead
      const count = body.versions.length;
      select.replaceChildren(el("option", { value: "" }, count ? "— or a dataset version —" : "no matching published version"),
        ...body.versions.map((v) => el("option", { value: v.uri }, v.text)));
      select.value = body.versions.some((v) => v.uri === uri.value) ? uri.value : "";
      note.textContent = (body.truncated ? `Showing the first ${body.limit} versions; narrow the filters to find the others.`
        : `${count} version${count === 1 ? " matches" : "s match"}.`)
        + (locked ? " Greyed filters are set by the algorithm's input constraint." : "");
      note.className = "help";
    } catch (error) {
      if (mine !== asked) return;
      select.replaceChildren(el("option", { value: "" }, "no version listed"));
      note.textContent = error instanceof TypeError ? "The server could not be reached; change a filter to try again."
        : error.message;
      note.className = "field-error";
    } finally {
      if (mine === asked) select.disabled = false;
    }
  }
  for (const filter of [labelType, format, split]) filter.addEventListener("change", refresh);
  // Picking a version fills the storage path with that published version's folder.
  select.addEventListener("change", () => {
    select.title = select.selectedOptions[0]?.textContent || ""; // the whole text when the select is narrower
    if (select.value) { uri.value = select.value; sync(); }
  });
  refresh();
  return el("div", { class: "dataset-picker", "data-role": "dataset-picker" },
    el("span", { class: "muted" }, "Dataset version"), labelType, format, split, select, note);
}

function channelRow(kind, channel, fixed) {
  const row = el("div", { class: "editor-row", "data-channel": channel.name || "" });
  const name = el("input", { "aria-label": "Parameter name", placeholder: kind === "inputs" ? "data_url" : "train_url",
    value: channel.name || "", readonly: fixed, class: "mono", "data-role": "name" });
  const uri = el("input", { "aria-label": `${channel.name || "channel"} storage path`, placeholder: "storage://bucket/folder",
    value: channel.uri || "", class: "mono grow", "data-role": "uri" });
  const acq = el("select", { "aria-label": "Acquisition", disabled: fixed, "data-role": "acquisition" },
    el("option", { value: "hyperparameter" }, "--argument"), el("option", { value: "env" }, "env variable"));
  acq.value = channel.acquisition || "hyperparameter";
  row.append(name, uri, acq);
  if (kind === "outputs") {
    const pre = el("input", { type: "checkbox", "data-role": "predownload", checked: Boolean(channel.predownload) });
    row.append(el("label", { class: "inline-check" }, pre, " pre-download"));
  }
  if (!fixed) {
    const remove = el("button", { type: "button", class: "btn btn-sm btn-ghost" }, "Remove");
    remove.addEventListener("click", () => { row.remove(); sync(); });
    row.append(remove);
  }
  // Offered to every input while the workspace has published versions, and always to an input that
  // requires a dataset (it then says none matches).
  if (kind === "inputs" && ((picker.label_types || []).length || channel.constraint?.source === "dataset")) {
    row.append(datasetPicker(channel, uri));
  }
  return row;
}

function renderChannels(kind, keep) {
  const box = form.querySelector(`[data-channel-editor="${kind}"]`);
  const current = keep ? collectChannels(kind) : parse(kind, []);
  const byName = Object.fromEntries(current.map((c) => [c.name, c]));
  const defs = definitions();
  box.textContent = "";
  if (defs) {
    for (const d of defs[kind] || []) box.append(channelRow(kind, { ...d, ...(byName[d.name] || {}), acquisition: d.acquisition }, true));
    if (!(defs[kind] || []).length) box.append(el("p", { class: "muted" }, "None defined."));
  } else {
    for (const c of current) box.append(channelRow(kind, c, false));
    const add = el("button", { type: "button", class: "btn btn-sm", "data-add": kind }, kind === "inputs" ? "Add input" : "Add output");
    add.addEventListener("click", () => { add.before(channelRow(kind, {}, false)); sync(); });
    box.append(add);
  }
}

function collectChannels(kind) {
  const box = form.querySelector(`[data-channel-editor="${kind}"]`);
  return [...box.querySelectorAll(".editor-row")].map((row) => {
    const item = { name: row.querySelector("[data-role=name]").value.trim(), uri: row.querySelector("[data-role=uri]").value.trim(),
      acquisition: row.querySelector("[data-role=acquisition]").value };
    const pre = row.querySelector("[data-role=predownload]");
    if (pre) item.predownload = pre.checked;
    return item;
  }).filter((c) => c.name || c.uri);
}

// ---- hyperparameters ---------------------------------------------------------------------------
function describe(def) {
  const c = def.constraint;
  if (!c) return def.type;
  if (c.kind === "range") return `${def.type}, ${c.min ?? "-∞"} to ${c.max ?? "∞"}`;
  return `${def.type}, one of ${c.values.join(", ")}`;
}

function hpRow(def, current, removable) {
  const row = el("div", { class: "editor-row", "data-hp": def.name || "" });
  const name = el("input", { "aria-label": "Hyperparameter name", value: def.name || "", readonly: Boolean(def.type),
    class: "mono", "data-role": "name", placeholder: "name" });
  let input;
  if (def.type === "Boolean") {
    input = el("select", { "data-role": "value", "aria-label": `${def.name} value` }, el("option", { value: "true" }, "true"), el("option", { value: "false" }, "false"));
    input.value = String(current ?? def.default);
  } else if (def.constraint?.kind === "enum") {
    input = el("select", { "data-role": "value", "aria-label": `${def.name} value` }, ...def.constraint.values.map((v) => el("option", { value: String(v) }, String(v))));
    input.value = String(current ?? def.default);
  } else {
    input = el("input", { "data-role": "value", "aria-label": `${def.name || "hyperparameter"} value`, class: "mono",
      value: current ?? def.default ?? "", inputmode: def.type === "Integer" || def.type === "Float" ? "decimal" : null });
  }
  row.append(name, input, el("span", { class: "muted hp-type" }, def.type ? describe(def) + (def.required ? " · required" : "") : "String"));
  const remove = el("button", { type: "button", class: "btn btn-sm btn-ghost", disabled: !removable,
    title: removable ? "Remove" : "Required: cannot be removed" }, "Remove");
  remove.addEventListener("click", () => {
    if (def.type) row.dataset.removed = "true", row.hidden = true; else row.remove();
    sync();
  });
  row.append(remove);
  return row;
}

function renderHyperparameters(keep) {
  const box = form.querySelector("[data-hp-editor]");
  const current = keep ? collectHyperparameters() : parse("hyperparameters", {});
  const defs = definitions()?.hyperparameters || [];
  box.textContent = "";
  const defined = new Set();
  for (const def of defs) {
    defined.add(def.name);
    const row = hpRow(def, current[def.name] ?? undefined, !def.required);
    if (def.name in current && current[def.name] === null) { row.dataset.removed = "true"; row.hidden = true; }
    box.append(row);
  }
  for (const [name, v] of Object.entries(current)) {
    if (!defined.has(name) && v !== null) box.append(hpRow({ name }, v, true));
  }
  const add = el("button", { type: "button", class: "btn btn-sm", "data-add": "hyperparameter" }, "Add hyperparameter");
  add.addEventListener("click", () => { add.before(hpRow({}, "", true)); sync(); });
  box.append(add);
}

function collectHyperparameters() {
  const out = {};
  for (const row of form.querySelectorAll("[data-hp-editor] .editor-row")) {
    const name = row.querySelector("[data-role=name]").value.trim();
    if (!name) continue;
    out[name] = row.dataset.removed ? null : row.querySelector("[data-role=value]").value;
  }
  return out;
}

// ---- pool --------------------------------------------------------------------------------------
// Under the pool picker: status, node flavor, idle/fragment nodes, available/total nodes and GPUs.
function renderPool() {
  const box = form.querySelector("[data-pool-info]");
  const info = data.pools?.[value("pool")];
  if (!box) return;
  if (!info) { box.textContent = ""; return; }
  const parts = [
    `${info.status} · ${info.dedicated ? "dedicated" : "shared"}`,
    info.node_flavor ? `node flavor ${info.node_flavor}` : "no online node",
    `${info.nodes_available}/${info.nodes_online} nodes available (${info.nodes_total} registered)`,
    `${info.nodes_idle} idle, ${info.nodes_fragment} fragment`,
    `GPUs ${info.gpus_free}/${info.gpus_total} free`,
  ];
  box.textContent = parts.join(" · ");
}

// ---- flavors -----------------------------------------------------------------------------------
function renderFlavors() {
  const pool = Number(value("pool"));
  const select = field("flavor");
  const reason = form.querySelector("[data-flavor-reason]");
  for (const option of select.options) {
    const info = (data.flavors || []).find((f) => String(f.id) === option.value);
    if (!info) continue;
    const offered = !pool || info.pools.includes(pool);
    option.hidden = !offered;
    option.disabled = !offered || !info.available;
    option.textContent = info.label + (info.available ? "" : ` — ${info.reason}`);
  }
  if (select.selectedOptions[0]?.disabled) select.value = "";
  const chosen = (data.flavors || []).find((f) => String(f.id) === select.value);
  reason.textContent = chosen && !chosen.available ? chosen.reason : "";
}

function sync() {
  field("inputs").value = JSON.stringify(collectChannels("inputs"));
  field("outputs").value = JSON.stringify(collectChannels("outputs"));
  field("hyperparameters").value = JSON.stringify(collectHyperparameters());
}

if (form) {
  toggle();
  renderChannels("inputs", false);
  renderChannels("outputs", false);
  renderHyperparameters(false);
  renderFlavors();
  renderPool();
  sync();
  form.addEventListener("change", (event) => {
    const name = event.target.name;
    if (["algorithm", "boot_mode", "builtin"].includes(name)) {
      toggle();
      renderChannels("inputs", true);
      renderChannels("outputs", true);
      renderHyperparameters(false);
    } else if (["experiment", "custom_flavor_on", "persist_logs", "notify_channel"].includes(name)) toggle();
    if (name === "pool" || name === "flavor") renderFlavors();
    if (name === "pool") renderPool();
    sync();
  });
  form.addEventListener("input", sync);
  form.addEventListener("submit", sync);
  // The confirmation dialog before submitting (seed-05 §17 item 16) lists what will be created.
  form.addEventListener("atelier:confirm-details", ({ detail: { add } }) => {
    sync();
    const chosen = (name) => {
      const el = field(name);
      return el?.selectedOptions?.[0]?.textContent.trim() || value(name);
    };
    add("Name", value("name"));
    const experiment = value("experiment");
    add("Experiment", experiment === "new" ? `new: ${value("experiment_name")}` : experiment === "existing" ? chosen("experiment_id") : "none");
    if (value("algorithm")) add("Algorithm", chosen("algorithm"));
    else {
      const mode = value("boot_mode");
      add("Boot mode", chosen("boot_mode"));
      if (mode === "builtin") add("Built-in", chosen("builtin"));
      if (["preset", "preset_image"].includes(mode)) add("Engine", chosen("engine"));
      if (["preset_image", "custom"].includes(mode) && value("image")) add("Image", value("image"));
      if (value("code_dir")) add("Code folder", value("code_dir"));
      if (["preset", "preset_image"].includes(mode)) add("Boot file", value("boot_file"));
      if (mode === "custom") add("Boot command", value("boot_command"));
    }
    const channels = (kind) => collectChannels(kind).filter((c) => c.name).map((c) => `${c.name} ${kind === "inputs" ? "←" : "→"} ${c.uri || "—"}`).join("; ");
    add("Inputs", channels("inputs") || "none");
    add("Outputs", channels("outputs") || "none");
    const hps = Object.entries(collectHyperparameters()).filter(([, v]) => v !== null).map(([k, v]) => `--${k}=${v}`).join(" ");
    add("Hyperparameters", hps || "none");
    add("Resources", `${chosen("pool")} · ${value("custom_flavor_on") ? "custom flavor" : chosen("flavor")} · ${value("node_count") || 1} node(s) · priority ${value("priority") || 1}`);
  });
  // "Get input data size": the inputs' total against a node's scratch disk.
  const sizeButton = form.querySelector("[data-input-size]");
  sizeButton?.addEventListener("click", async () => {
    const result = form.querySelector("[data-input-size-result]");
    const params = new URLSearchParams();
    for (const c of collectChannels("inputs")) if (c.uri) params.append("uri", c.uri);
    if (![...params.keys()].length) { result.textContent = "Give an input storage path first."; return; }
    result.textContent = "Measuring…";
    try {
      const response = await fetch(`${sizeButton.dataset.url}?${params}`, { headers: { Accept: "application/json" } });
      const body = await response.json();
      result.textContent = [body.message, ...(body.errors || [])].join(" ");
      result.className = body.fits && !(body.errors || []).length ? "" : "field-error";
    } catch { result.textContent = "Could not measure the inputs; try again."; }
  });
}
