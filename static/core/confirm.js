// Typed-name confirmation (components/confirm_delete.html): the form's [data-confirm-submit]
// buttons stay disabled until the [data-confirm-name] input holds exactly that name.
// The server checks the same thing (apps.core.forms.ConfirmNameForm); this only guides.
import { openModal } from "./modal.js";

function sync(input) {
  const matches = input.value === input.dataset.confirmName;
  const form = input.form || input.closest("form");
  for (const button of form?.querySelectorAll("[data-confirm-submit]") || []) button.disabled = !matches;
}

document.addEventListener("input", (event) => {
  if (event.target.matches?.("[data-confirm-name]")) sync(event.target);
});

// Content can arrive already filled (browser back/forward cache, a re-rendered form).
function syncAll(root) {
  for (const input of root.querySelectorAll("[data-confirm-name]")) sync(input);
}
syncAll(document);
document.addEventListener("htmx:load", (event) => syncAll(event.target));
document.addEventListener("pageshow", () => syncAll(document));

// Plain confirmation: a <form data-confirm="Question?"> asks in a modal dialog before it submits
// (optional data-confirm-label names the confirm button, e.g. "Terminate"; data-confirm-kind="primary"
// makes it a primary rather than a danger button). Cancel, Esc or the
// backdrop leave the page as it was. The server enforces the rule itself; this only guards clicks.
// A page can add a summary under the question: the form receives an "atelier:confirm-details" event
// whose detail.add(label, value) appends one row (e.g. the job form lists what will be submitted).

let confirmDialog = null;
let pendingForm = null;
let pendingSubmitter = null;
const confirmed = new WeakSet();

function dialogElement() {
  if (confirmDialog) return confirmDialog;
  confirmDialog = document.createElement("dialog");
  confirmDialog.className = "modal modal-sm";
  confirmDialog.id = "confirm-dialog";
  confirmDialog.setAttribute("data-modal", "");
  confirmDialog.setAttribute("aria-labelledby", "confirm-dialog-title");
  confirmDialog.setAttribute("data-testid", "confirm-dialog");
  confirmDialog.innerHTML = `
    <div class="modal-box">
      <header class="modal-header"><h2 class="modal-title" id="confirm-dialog-title">Please confirm</h2></header>
      <div class="modal-body">
        <p data-confirm-message></p>
        <dl class="kv confirm-details" data-confirm-details data-testid="confirm-details" hidden></dl>
        <div class="form-actions">
          <button type="button" class="btn btn-danger" data-confirm-accept>Confirm</button>
          <button type="button" class="btn" data-modal-close>Cancel</button>
        </div>
      </div>
    </div>`;
  confirmDialog.querySelector("[data-confirm-accept]").addEventListener("click", () => {
    const form = pendingForm;
    const submitter = pendingSubmitter;
    pendingForm = pendingSubmitter = null;
    confirmDialog.close();
    if (!form || !form.isConnected) return;
    confirmed.add(form);
    // requestSubmit keeps the submitter's name/value and lets htmx-boosted forms handle it.
    if (submitter && submitter.form === form) form.requestSubmit(submitter);
    else form.requestSubmit();
  });
  confirmDialog.addEventListener("close", () => { pendingForm = pendingSubmitter = null; });
  document.body.append(confirmDialog);
  return confirmDialog;
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-confirm")) return;
  if (confirmed.has(form)) {
    confirmed.delete(form);  // this submit was approved; the next one asks again
    return;
  }
  event.preventDefault();
  event.stopImmediatePropagation();
  const dialog = dialogElement();
  dialog.querySelector("[data-confirm-message]").textContent = form.dataset.confirm;
  const accept = dialog.querySelector("[data-confirm-accept]");
  const details = dialog.querySelector("[data-confirm-details]");
  details.replaceChildren();
  const add = (label, value) => {
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = label;
    dd.textContent = value;
    details.append(dt, dd);
  };
  form.dispatchEvent(new CustomEvent("atelier:confirm-details", { detail: { add } }));
  details.hidden = !details.childElementCount;
  dialog.classList.toggle("modal-sm", details.hidden);  // a summary needs the room
  accept.className = `btn ${form.dataset.confirmKind === "primary" ? "btn-primary" : "btn-danger"}`;
  accept.textContent = form.dataset.confirmLabel || event.submitter?.textContent.trim() || "Confirm";
  pendingForm = form;
  pendingSubmitter = event.submitter || null;
  openModal(dialog, event.submitter || null);
  accept.focus();
}, true);
