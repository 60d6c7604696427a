// Reopen a dialog whose form came back with errors: <div data-reopen-modal="<dialog id>" hidden>.
// It clicks the dialog's own opener, so focus handling stays in core/modal.js.
for (const marker of document.querySelectorAll("[data-reopen-modal]")) {
  document.querySelector(`[data-modal-open="${marker.dataset.reopenModal}"]`)?.click();
}
