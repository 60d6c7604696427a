// Sample selection: ticking samples enables "Export selected" and counts them. Re-attaches
// after htmx swaps the results.
function wire(root) {
  for (const form of root.querySelectorAll("[data-sample-select]")) {
    if (form.dataset.selectReady) continue;
    form.dataset.selectReady = "1";
    const button = form.querySelector("[data-select-submit]");
    const count = form.querySelector("[data-select-count]");
    form.addEventListener("change", () => {
      const n = form.querySelectorAll("[data-select-item]:checked").length;
      if (count) count.textContent = String(n);
      if (button) button.disabled = n === 0;
    });
  }
}

wire(document);
document.body.addEventListener("htmx:afterSwap", (event) => wire(event.target));
