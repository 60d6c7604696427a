// Modal dialogs (components/modal.html). A click on [data-modal-open="<id>"] opens
// <dialog id="<id>"> with showModal(); Esc, a click on the backdrop, [data-modal-close]
// and the "atelier:modal-close" event (HX-Trigger) close it. Tab and Shift+Tab cycle
// inside the dialog, and focus returns to the element that opened it.

const FOCUSABLE = [
  "a[href]", "button:not([disabled])", "input:not([disabled]):not([type=hidden])",
  "select:not([disabled])", "textarea:not([disabled])", "[tabindex]:not([tabindex='-1'])",
].join(",");

// The same list scoped to the dialog's body, to prefer its first field over the close button.
const BODY_FOCUSABLE = FOCUSABLE.split(",").map((selector) => `.modal-body ${selector}`).join(",");

const openers = new WeakMap();

function focusables(dialog) {
  return [...dialog.querySelectorAll(FOCUSABLE)].filter((el) => el.offsetParent !== null || el === document.activeElement);
}

export function openModal(dialog, opener = null) {
  if (dialog.open) return;
  openers.set(dialog, opener || document.activeElement);
  const url = opener?.dataset.modalUrl || dialog.dataset.modalUrl;
  if (url && window.htmx) {
    // Fresh content on every open (a form must not keep the last attempt's values).
    window.htmx.ajax("GET", url, { target: dialog.querySelector(".modal-body"), swap: "innerHTML" });
  }
  dialog.showModal();
  // First field if there is one, else the first control (usually the close button).
  const first = dialog.querySelector(BODY_FOCUSABLE) || focusables(dialog)[0];
  first?.focus();
}

export function closeModal(dialog) {
  if (!dialog.open) return;
  dialog.close();
}

document.addEventListener("click", (event) => {
  const opener = event.target.closest("[data-modal-open]");
  if (opener) {
    const dialog = document.getElementById(opener.dataset.modalOpen);
    if (dialog) {
      event.preventDefault();
      openModal(dialog, opener);
    }
    return;
  }
  const closer = event.target.closest("[data-modal-close]");
  if (closer) {
    const dialog = closer.closest("dialog");
    if (dialog) closeModal(dialog);
    return;
  }
  // The <dialog> has no padding and its .modal-box fills it, so a click whose target is
  // the dialog element itself landed on the backdrop.
  if (event.target instanceof HTMLDialogElement && event.target.matches("[data-modal]")) {
    closeModal(event.target);
  }
});

document.addEventListener("keydown", (event) => {
  const dialog = document.querySelector("dialog[data-modal][open]");
  if (!dialog) return;
  if (event.key === "Escape") {
    event.preventDefault();
    closeModal(dialog);
  } else if (event.key === "Tab") {
    const items = focusables(dialog);
    if (items.length === 0) {
      event.preventDefault();
      return;
    }
    const first = items[0];
    const last = items[items.length - 1];
    if (event.shiftKey && (document.activeElement === first || !dialog.contains(document.activeElement))) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (document.activeElement === last || !dialog.contains(document.activeElement))) {
      event.preventDefault();
      first.focus();
    }
  }
});

// Restore focus however the dialog was closed (button, Esc, backdrop, form method=dialog).
document.addEventListener("close", (event) => {
  const dialog = event.target;
  if (!(dialog instanceof HTMLDialogElement)) return;
  const opener = openers.get(dialog);
  if (opener && opener.isConnected) opener.focus();
}, true);

document.addEventListener("atelier:modal-close", () => {
  for (const dialog of document.querySelectorAll("dialog[data-modal][open]")) closeModal(dialog);
});
