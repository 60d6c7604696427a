// The deploy/modify form's editors: version rows (version, weight, pool, flavor, instances, env) and
// routing rules. Options and the rows to start with come from <script id="deploy-options">; on submit
// the rows are written as JSON into the hidden versions_json / rules_json fields. The server checks
// everything again (weights adding up to 100, Normal versions, rule syntax) and shows field errors.

const options = JSON.parse(document.getElementById("deploy-options")?.textContent || "{}");

function fill(select, items, selected) {
  select.replaceChildren();
  for (const item of items) {
    const option = new Option(item.label, item.value);
    if (String(item.value) === String(selected ?? "")) option.selected = true;
    select.append(option);
  }
}

function versionItems() {
  return (options.versions || []).map((v) => ({ value: v.id, label: v.label }));
}

function poolFlavors(poolId) {
  const pool = (options.pools || []).find((p) => String(p.id) === String(poolId)) || (options.pools || [])[0];
  return pool ? pool.flavors.map((f) => ({ value: f.id, label: `${f.name} (${f.summary})` })) : [];
}

function addVersion(form, row = {}) {
  const template = form.querySelector("[data-version-template]");
  const node = template.content.firstElementChild.cloneNode(true);
  const get = (key) => node.querySelector(`[data-key=${key}]`);
  fill(get("model_version"), versionItems(), row.model_version);
  const pools = (options.pools || []).map((p) => ({ value: p.id, label: p.name }));
  fill(get("pool"), pools, row.pool);
  fill(get("flavor"), poolFlavors(get("pool").value), row.flavor);
  get("pool").addEventListener("change", () => fill(get("flavor"), poolFlavors(get("pool").value)));
  const count = form.querySelectorAll("[data-version-row]").length;
  get("weight").value = row.weight ?? (count === 0 ? 100 : 0);
  get("instance_count").value = row.instance_count ?? 1;
  get("env").value = typeof row.env === "string" ? row.env
    : Object.entries(row.env || {}).map(([k, v]) => `${k}=${v}`).join("\n");
  node.querySelector("[data-remove-version]").addEventListener("click", () => {
    node.remove();
    refreshRuleTargets(form);
    total(form);
  });
  node.addEventListener("input", () => total(form));
  node.addEventListener("change", () => refreshRuleTargets(form));
  form.querySelector("[data-version-rows]").append(node);
  total(form);
}

function total(form) {
  let sum = 0;
  for (const input of form.querySelectorAll("[data-version-row] [data-key=weight]")) sum += Number(input.value || 0);
  const out = form.querySelector("[data-weight-total]");
  out.textContent = String(sum);
  out.classList.toggle("weight-bad", sum !== 100);
}

function chosenVersions(form) {
  const labels = Object.fromEntries((options.versions || []).map((v) => [String(v.id), v.label]));
  return [...form.querySelectorAll("[data-version-row] [data-key=model_version]")]
    .map((select) => ({ value: select.value, label: labels[select.value] || select.value }));
}

function refreshRuleTargets(form) {
  for (const select of form.querySelectorAll("[data-rule-row] [data-key=version]")) {
    fill(select, chosenVersions(form), select.value);
  }
}

function addRule(form, rule = {}) {
  const node = form.querySelector("[data-rule-template]").content.firstElementChild.cloneNode(true);
  for (const key of ["condition", "header_name", "header_value"]) {
    node.querySelector(`[data-key=${key}]`).value = rule[key] || "";
  }
  fill(node.querySelector("[data-key=version]"), chosenVersions(form), rule.version);
  node.querySelector("[data-remove-rule]").addEventListener("click", () => node.remove());
  form.querySelector("[data-rule-rows]").append(node);
}

// What makes a modification restart instances (serving._needs_restart): the versions with their pool,
// flavor and environment. Weights and instance counts change in place.
function restartKey(rows) {
  const env = (text) => String(text || "").split("\n").map((l) => l.trim()).filter(Boolean)
    .map((l) => l.split("=").map((p) => p.trim()).join("=")).sort().join(";");
  return rows.map((r) => `${r.model_version}|${r.pool}|${r.flavor}|${env(r.env)}`).sort().join("\n");
}

function currentRows(form) {
  return [...form.querySelectorAll("[data-version-row]")].map((node) => {
    const value = (key) => node.querySelector(`[data-key=${key}]`).value;
    return { model_version: value("model_version"), pool: value("pool"), flavor: value("flavor"), env: value("env") };
  });
}

function serialise(form) {
  const rows = [...form.querySelectorAll("[data-version-row]")].map((node) => {
    const value = (key) => node.querySelector(`[data-key=${key}]`).value;
    return { model_version: Number(value("model_version")), weight: Number(value("weight")),
             pool: Number(value("pool")), flavor: Number(value("flavor")),
             instance_count: Number(value("instance_count")), env: value("env") };
  });
  form.querySelector("[name=versions_json]").value = JSON.stringify(rows);
  const rules = [...form.querySelectorAll("[data-rule-row]")].map((node) => {
    const value = (key) => node.querySelector(`[data-key=${key}]`).value;
    return { condition: value("condition"), version: Number(value("version")), header_name: value("header_name"),
             header_value: value("header_value") };
  });
  form.querySelector("[name=rules_json]").value = JSON.stringify(rules);
}

for (const form of document.querySelectorAll("[data-deploy-form]")) {
  const rows = options.rows && options.rows.length ? options.rows : [{}];
  for (const row of rows) addVersion(form, row);
  for (const rule of options.rules || []) addRule(form, rule);
  form.querySelector("[data-add-version]").addEventListener("click", () => {
    addVersion(form);
    refreshRuleTargets(form);
  });
  form.querySelector("[data-add-rule]").addEventListener("click", () => addRule(form));
  form.addEventListener("submit", () => serialise(form));
  const websocket = form.querySelector("[name=websocket]");
  const limit = form.querySelector("[name=traffic_limit]");
  const autoStop = form.querySelector("[name=auto_stop]");
  const custom = form.querySelector("[name=auto_stop_custom]")?.closest(".field");
  const sync = () => {
    if (limit && websocket) limit.disabled = websocket.checked;
    if (custom && autoStop) custom.hidden = autoStop.value !== "custom";
  };
  form.addEventListener("change", sync);
  sync();
  // Modifying a running service: warn as soon as the change means new instances (a rolling restart).
  const warning = form.querySelector("[data-restart-warning]");
  if (warning && options.serving_rows) {
    const before = restartKey(options.serving_rows);
    const check = () => { warning.hidden = restartKey(currentRows(form)) === before; };
    form.addEventListener("input", check);
    form.addEventListener("change", check);
    form.addEventListener("click", () => setTimeout(check));  // rows added or removed
    check();
  }
}
