// The storage path picker (apps/storage/widgets.py, StoragePathWidget). "Select" next to a path
// input opens one shared dialog that browses the user's buckets and folders through the storage
// REST API, can create a bucket or a folder on the spot, and on "Select" writes
// storage://bucket/key into the input (firing input and change events). The dialog is a
// components/modal.html-style <dialog data-modal>, so static/core/modal.js gives it Esc,
// backdrop click, the focus trap and focus return.

import { openModal, closeModal } from "../core/modal.js";

const SCHEME = "storage://";
// The API's largest page; a "Load more" button fetches the rest of a bigger folder.
const PAGE_SIZE = 500;

// Icons from the sprites next to this module (core: close; storage: bucket, folder, file).
const CORE_SPRITE = new URL("../core/icons.svg", import.meta.url).href;
const STORAGE_SPRITE = new URL("./icons.svg", import.meta.url).href;
const SVG = "http://www.w3.org/2000/svg";

let ui = null; // the dialog's elements, built on first use
let state = null; // {input, kind, allowCreate, urls, bucket, key, chosenFile}

function csrfToken() {
  try {
    const token = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"];
    if (token) return token;
  } catch {
    // fall through to the cookie
  }
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

function uriOf(bucket, key) {
  if (!bucket) return "";
  return key ? `${SCHEME}${bucket}/${key}` : `${SCHEME}${bucket}`;
}

function parseUri(value) {
  const raw = (value || "").trim();
  if (!raw.startsWith(SCHEME)) return null;
  const rest = raw.slice(SCHEME.length).replace(/\/+$/, "");
  const slash = rest.indexOf("/");
  if (!rest) return null;
  return slash < 0 ? { bucket: rest, key: "" } : { bucket: rest.slice(0, slash), key: rest.slice(slash + 1) };
}

async function api(url, options = {}) {
  const response = await fetch(url, {
    credentials: "same-origin",
    ...options,
    headers: { Accept: "application/json", "X-CSRFToken": csrfToken(), ...(options.headers || {}) },
  });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const error = body?.error;
    const fieldMessage = error ? Object.values(error.fields || {}).flat()[0] : null;
    throw new Error(fieldMessage || error?.message || `The server answered ${response.status}.`);
  }
  return body;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

function icon(sprite, id) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "icon");
  svg.setAttribute("aria-hidden", "true");
  const use = document.createElementNS(SVG, "use");
  use.setAttribute("href", `${sprite}#${id}`);
  svg.append(use);
  return svg;
}

function build() {
  const title = el("h2", { class: "modal-title", id: "path-picker-title", text: "Select a path" });
  const close = el("button", { type: "button", class: "btn btn-ghost btn-icon", "data-modal-close": "", "aria-label": "Close" }, icon(CORE_SPRITE, "i-x"));
  const crumbs = el("nav", { class: "picker-crumbs", "aria-label": "Location" });
  const newBucket = el("button", { type: "button", class: "btn btn-sm", "data-picker-new": "bucket" }, "Create bucket");
  const newFolder = el("button", { type: "button", class: "btn btn-sm", "data-picker-new": "folder" }, "New folder");
  const toolbar = el("div", { class: "picker-toolbar" }, crumbs, el("div", { class: "picker-actions" }, newBucket, newFolder));
  const createInput = el("input", { type: "text", name: "picker-new-name", autocomplete: "off", spellcheck: "false", class: "mono" });
  const createLabel = el("label", { for: "path-picker-new-name" });
  createInput.id = "path-picker-new-name";
  const createError = el("p", { class: "field-error", role: "alert", hidden: "" });
  const createHelp = el("p", { class: "help" });
  const createForm = el(
    "form",
    { class: "picker-create field", hidden: "", novalidate: "" },
    createLabel,
    el("div", { class: "picker-create-row" }, createInput,
      el("button", { type: "submit", class: "btn btn-primary btn-sm", "data-picker-create-submit": "" }, "Create"),
      el("button", { type: "button", class: "btn btn-sm", "data-picker-create-cancel": "" }, "Cancel")),
    createHelp,
    createError,
  );
  const error = el("div", { class: "callout callout-danger picker-error", role: "alert", hidden: "" });
  const list = el("ul", { class: "picker-list", "aria-label": "Buckets and folders" });
  const more = el("button", { type: "button", class: "btn btn-sm picker-more", hidden: "" }, "Load more");
  const selected = el("code", { class: "mono", "data-picker-selected": "" });
  const choose = el("button", { type: "button", class: "btn btn-primary", "data-picker-choose": "" }, "Select");
  const footer = el(
    "div",
    { class: "form-actions picker-footer" },
    el("p", { class: "picker-selection muted" }, "Selected: ", selected),
    el("button", { type: "button", class: "btn", "data-modal-close": "" }, "Cancel"),
    choose,
  );
  const body = el("div", { class: "modal-body" }, toolbar, createForm, error, list, more, footer);
  const dialog = el(
    "dialog",
    { class: "modal modal-lg path-picker-dialog", id: "path-picker-dialog", "aria-labelledby": "path-picker-title", "data-modal": "" },
    el("div", { class: "modal-box" }, el("header", { class: "modal-header" }, title, close), body),
  );
  (document.getElementById("modal-root") || document.body).append(dialog);

  newBucket.addEventListener("click", () => showCreate("bucket"));
  newFolder.addEventListener("click", () => showCreate("folder"));
  createForm.querySelector("[data-picker-create-cancel]").addEventListener("click", hideCreate);
  createForm.addEventListener("submit", (event) => {
    event.preventDefault();
    create();
  });
  more.addEventListener("click", () => loadPage(more.dataset.next, true));
  choose.addEventListener("click", choosePath);
  return { dialog, title, crumbs, newBucket, newFolder, createForm, createLabel, createInput, createHelp, createError, error, list, more, selected, choose };
}

function showError(message) {
  ui.error.textContent = message || "";
  ui.error.hidden = !message;
}

function showCreate(what) {
  ui.createForm.dataset.what = what;
  ui.createLabel.textContent = what === "bucket" ? "New bucket name" : `New folder in ${uriOf(state.bucket, state.key)}`;
  ui.createHelp.textContent = what === "bucket"
    ? "3–63 lowercase letters, digits and hyphens; unique across the platform."
    : 'Each "/" starts a nested folder: a/b/c creates three levels.';
  ui.createError.hidden = true;
  ui.createInput.value = "";
  ui.createForm.hidden = false;
  ui.createInput.focus();
}

function hideCreate() {
  ui.createForm.hidden = true;
}

async function create() {
  const name = ui.createInput.value;
  const what = ui.createForm.dataset.what;
  const submit = ui.createForm.querySelector("[data-picker-create-submit]");
  submit.disabled = true;
  try {
    if (what === "bucket") {
      const bucket = await api(state.urls.buckets, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name }),
      });
      hideCreate();
      await navigate(bucket.name, "");
    } else {
      const folder = await api(state.urls.folders, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ path: uriOf(state.bucket, state.key), name }),
      });
      hideCreate();
      const target = parseUri(folder.path);
      await navigate(target.bucket, target.key);
    }
  } catch (exc) {
    ui.createError.textContent = exc.message;
    ui.createError.hidden = false;
    ui.createInput.focus();
  } finally {
    submit.disabled = false;
  }
}

function renderCrumbs() {
  const parts = [{ label: "All buckets", bucket: "", key: "" }];
  if (state.bucket) {
    parts.push({ label: state.bucket, bucket: state.bucket, key: "" });
    const segments = state.key ? state.key.split("/") : [];
    segments.forEach((segment, index) => {
      parts.push({ label: segment, bucket: state.bucket, key: segments.slice(0, index + 1).join("/") });
    });
  }
  ui.crumbs.replaceChildren();
  parts.forEach((part, index) => {
    if (index > 0) ui.crumbs.append(el("span", { class: "muted", "aria-hidden": "true" }, " / "));
    if (index === parts.length - 1) {
      ui.crumbs.append(el("strong", { "aria-current": "location", text: part.label }));
    } else {
      const link = el("button", { type: "button", class: "link-button", text: part.label });
      link.addEventListener("click", () => navigate(part.bucket, part.key));
      ui.crumbs.append(link);
    }
  });
}

function renderSelection() {
  let value = "";
  if (state.kind === "file") value = state.chosenFile || "";
  else value = uriOf(state.bucket, state.key);
  ui.selected.textContent = value || "nothing yet";
  ui.choose.disabled = !value;
  ui.choose.dataset.value = value;
}

function entryButton(label, kindLabel, onClick, { disabled = false, selected = false } = {}) {
  const button = el("button", { type: "button", class: `picker-entry picker-${kindLabel}` },
    icon(STORAGE_SPRITE, `s-${kindLabel}`),
    el("span", { class: "picker-name", text: label }));
  button.dataset.name = label;
  if (disabled) button.disabled = true;
  if (selected) button.setAttribute("aria-pressed", "true");
  button.addEventListener("click", onClick);
  return el("li", {}, button);
}

function appendEntries(rows) {
  for (const row of rows) {
    if (!state.bucket) {
      const item = entryButton(row.name, "bucket", () => navigate(row.name, ""));
      item.firstChild.append(el("span", { class: "picker-meta muted", text: row.workspace.name }));
      ui.list.append(item);
    } else if (row.type === "folder") {
      const target = parseUri(row.path);
      ui.list.append(entryButton(row.name, "folder", () => navigate(target.bucket, target.key)));
    } else {
      const pickable = state.kind === "file";
      const item = entryButton(row.name, "file", () => {
        state.chosenFile = row.path;
        for (const other of ui.list.querySelectorAll("[aria-pressed]")) other.removeAttribute("aria-pressed");
        item.firstChild.setAttribute("aria-pressed", "true");
        renderSelection();
      }, { disabled: !pickable, selected: row.path === state.chosenFile });
      ui.list.append(item);
    }
  }
}

async function loadPage(url, append) {
  showError("");
  ui.more.hidden = true;
  const body = await api(url);
  if (!append) ui.list.replaceChildren();
  appendEntries(body.results);
  if (!append && body.results.length === 0) {
    ui.list.append(el("li", { class: "picker-empty muted", text: state.bucket ? "This folder is empty." : "No buckets yet: create one." }));
  }
  if (body.next) {
    ui.more.dataset.next = body.next;
    ui.more.hidden = false;
  }
}

async function navigate(bucket, key) {
  const previous = { bucket: state.bucket, key: state.key };
  state.bucket = bucket;
  state.key = key;
  const url = bucket
    ? `${state.urls.objects}?${new URLSearchParams({ path: uriOf(bucket, key), page_size: PAGE_SIZE })}`
    : `${state.urls.buckets}?${new URLSearchParams({ page_size: PAGE_SIZE })}`;
  try {
    await loadPage(url, false);
  } catch (exc) {
    state.bucket = previous.bucket;
    state.key = previous.key;
    showError(exc.message);
    return false;
  } finally {
    hideCreate();
  }
  ui.dialog.dataset.location = uriOf(bucket, key);
  ui.newBucket.hidden = !state.allowCreate || Boolean(bucket);
  ui.newFolder.hidden = !state.allowCreate || !bucket;
  renderCrumbs();
  renderSelection();
  return true;
}

function choosePath() {
  const value = ui.choose.dataset.value;
  if (!value) return;
  state.input.value = value;
  state.input.dispatchEvent(new Event("input", { bubbles: true }));
  state.input.dispatchEvent(new Event("change", { bubbles: true }));
  closeModal(ui.dialog);
}

async function open(picker, opener) {
  ui ||= build();
  const input = picker.querySelector("input");
  state = {
    input,
    kind: picker.dataset.kind || "folder",
    allowCreate: picker.dataset.allowCreate === "true",
    urls: { buckets: picker.dataset.bucketsUrl, objects: picker.dataset.objectsUrl, folders: picker.dataset.foldersUrl },
    bucket: "",
    key: "",
    chosenFile: null,
  };
  ui.title.textContent = state.kind === "file" ? "Select a file" : "Select a folder";
  openModal(ui.dialog, opener);
  // Start where the input points: the folder itself, or a chosen file's folder.
  const typed = parseUri(input.value);
  if (typed) {
    if (state.kind === "file" && typed.key) {
      state.chosenFile = uriOf(typed.bucket, typed.key);
      const cut = typed.key.lastIndexOf("/");
      if (await navigate(typed.bucket, cut < 0 ? "" : typed.key.slice(0, cut))) return;
    } else if (await navigate(typed.bucket, typed.key)) {
      return;
    }
    const message = ui.error.textContent;
    state.chosenFile = null;
    await navigate("", "");
    showError(`${input.value.trim()}: ${message}`);
    return;
  }
  await navigate("", "");
}

document.addEventListener("click", (event) => {
  const opener = event.target.closest("[data-path-picker-open]");
  if (!opener) return;
  const picker = opener.closest("[data-path-picker]");
  if (!picker) return;
  event.preventDefault();
  open(picker, opener);
});
