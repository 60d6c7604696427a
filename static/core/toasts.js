// Toasts (components/messages.html): dismiss buttons, auto-hide for success/info, and
// toasts for messages that an htmx response sent in HX-Trigger ("atelier:messages",
// see apps.core.middleware.HtmxMessagesMiddleware).

// Long enough to read two lines; errors and warnings wait for the user instead.
const AUTO_HIDE_MS = 6000;

function dismiss(toast) {
  toast.classList.add("toast-leaving");
  setTimeout(() => toast.remove(), 200);
}

function arm(toast) {
  if (toast.dataset.armed) return;
  toast.dataset.armed = "1";
  if (toast.classList.contains("toast-success") || toast.classList.contains("toast-info")) {
    setTimeout(() => toast.isConnected && dismiss(toast), AUTO_HIDE_MS);
  }
}

export function showToast(level, text) {
  const container = document.querySelector("[data-toasts]");
  const template = container?.querySelector("template[data-toast-template]");
  if (!template) return null;
  const tone = ["success", "error", "warning", "info"].includes(level) ? level : "info";
  const toast = template.content.firstElementChild.cloneNode(true);
  toast.classList.add(`toast-${tone}`);
  if (tone === "error") toast.setAttribute("role", "alert");
  for (const icon of toast.querySelectorAll("[data-toast-icon]")) {
    if (icon.dataset.toastIcon === tone) icon.hidden = false;
    else icon.remove();
  }
  toast.querySelector("[data-toast-text]").textContent = text;
  container.appendChild(toast);
  arm(toast);
  return toast;
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-toast-close]");
  if (button) dismiss(button.closest("[data-toast]"));
});

document.addEventListener("atelier:messages", (event) => {
  for (const item of event.detail?.items || []) showToast(item.level, item.message);
});

for (const toast of document.querySelectorAll("[data-toasts] > [data-toast]")) arm(toast);
