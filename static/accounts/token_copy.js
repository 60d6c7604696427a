// Copy button for a value shown once (a new API token key).
// Markup: <div data-copy><input data-copy-source readonly …><button data-copy-button>Copy</button></div>
// The clipboard API needs a secure context (HTTPS or localhost); elsewhere the key is selected
// so Ctrl+C works, and the button says so.

function select(source) {
  source.focus();
  source.select();
}

async function copy(block) {
  const source = block.querySelector("[data-copy-source]");
  const button = block.querySelector("[data-copy-button]");
  select(source);
  try {
    await navigator.clipboard.writeText(source.value);
    button.textContent = "Copied";
  } catch {
    button.textContent = "Press Ctrl+C";
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy-button]");
  if (button) {
    copy(button.closest("[data-copy]"));
    return;
  }
  const source = event.target.closest("[data-copy-source]");
  if (source) select(source);
});
