// The edge deploy form: for an asynchronous AI application version it shows the number of streams
// and lists the start parameters the application defines, pre-filling NAME=default lines (a
// required one is left as "NAME=" to fill in); it warns when the instance count passes the
// recommended 10. Facts per version come from <script id="edge-version-facts">; the server checks
// everything again and puts its errors on the fields.

const facts = JSON.parse(document.getElementById("edge-version-facts")?.textContent || "{}");
const form = document.querySelector("[data-testid=edge-service-form]");

function text(tag, value, className) {
  const node = document.createElement(tag);
  node.textContent = value;
  if (className) node.className = className;
  return node;
}

function showVersion(prefill) {
  const version = facts[form.elements.model_version.value] || { async: false, params: [] };
  for (const node of form.querySelectorAll("[data-async-only]")) node.hidden = !version.async;
  const list = form.querySelector("[data-start-param-list]");
  list.replaceChildren();
  list.hidden = !version.async;
  if (!version.async) return;
  if (!version.params.length) {
    list.append(text("p", "This application defines no start parameters."));
    return;
  }
  list.append(text("p", "Start parameters this application defines:"));
  const items = document.createElement("ul");
  for (const p of version.params) {
    const item = document.createElement("li");
    item.append(text("span", p.name, "mono"));
    item.append(p.required ? " (required)" : ` = ${p.default === "" ? '""' : p.default}`);
    if (p.description) item.append(` · ${p.description}`);
    items.append(item);
  }
  list.append(items);
  const area = form.elements.start_params;
  // Fill the lines only when the user has not written any (a re-shown form keeps what was sent).
  if (prefill && !area.value.trim()) {
    area.value = version.params.map((p) => `${p.name}=${p.required ? "" : p.default}`).join("\n");
  }
}

function checkInstances() {
  const warning = form.querySelector("[data-instance-warning]");
  const count = Number(form.elements.instance_count.value);
  warning.hidden = !(count > Number(warning.dataset.recommended));
}

if (form) {
  form.elements.model_version.addEventListener("change", () => showVersion(true));
  form.elements.instance_count.addEventListener("input", checkInstances);
  showVersion(!form.querySelector(".field-error"));
  checkInstances();
}
