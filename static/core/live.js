// Live fragments. An element with data-live-source="<app>.<model>" data-live-pk="<pk>"
// opens /ws/live/<source>/<pk>/ (apps.core.consumers.LiveConsumer) and, for every message:
//   - data-live-refresh="<url>": re-fetches that URL (as htmx, so views can answer with a
//     partial; HX-Target is the element's id) and swaps it in as the element's content;
//   - data-live-append: appends a copy of its <template data-live-template> to its
//     [data-live-list], filling [data-field=message] and [data-field=at] from the payload
//     ({"kind": "event", "level", "message", "at"}).
// Every message is also re-dispatched as a bubbling "live:message" event on the element.
// The socket reconnects with exponential backoff; a close with code 4404 (unknown object
// or no access) stops it. data-live-state tells the state: connecting, open, retrying, denied.

const BACKOFF_START_MS = 1000;
// Cap the wait so a console left open through a server restart catches up within half a minute.
const BACKOFF_MAX_MS = 30000;
const DENIED = 4404;

const sockets = new WeakMap();

function socketUrl(el) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const source = encodeURIComponent(el.dataset.liveSource);
  const pk = encodeURIComponent(el.dataset.livePk);
  return `${scheme}://${location.host}/ws/live/${source}/${pk}/`;
}

function formatTime(iso, timeZone) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso || "";
  try {
    // sv-SE renders "YYYY-MM-DD HH:MM:SS", the format the server-side timeline uses.
    return new Intl.DateTimeFormat("sv-SE", {
      timeZone: timeZone || undefined, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
    }).format(date);
  } catch {
    return date.toISOString().replace("T", " ").slice(0, 19);
  }
}

function append(el, payload) {
  const template = el.querySelector("template[data-live-template]");
  const list = el.querySelector("[data-live-list]") || el;
  if (!template || typeof payload.message !== "string") return;
  const item = template.content.firstElementChild.cloneNode(true);
  item.classList.add(`level-${payload.level || "info"}`);
  const message = item.querySelector("[data-field=message]");
  if (message) message.textContent = payload.message;
  const at = item.querySelector("[data-field=at]");
  if (at && payload.at) {
    at.setAttribute("datetime", payload.at);
    at.textContent = formatTime(payload.at, el.dataset.liveTz);
  }
  list.appendChild(item);
  el.querySelector("[data-live-empty]")?.remove();
}

function refresh(el, state) {
  // Coalesce bursts: one request in flight, at most one more queued behind it.
  if (state.refreshing) {
    state.refreshAgain = true;
    return;
  }
  state.refreshing = true;
  const url = el.dataset.liveRefresh;
  const headers = { "HX-Request": "true", "HX-Current-URL": location.href };
  if (el.id) headers["HX-Target"] = el.id;
  fetch(url, { headers, credentials: "same-origin" })
    .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
    .then((html) => {
      el.innerHTML = html;
      if (window.htmx) window.htmx.process(el);
      el.dispatchEvent(new CustomEvent("live:refreshed", { bubbles: true }));
    })
    .catch(() => { /* the next message retries; a failed refresh leaves the old content */ })
    .finally(() => {
      state.refreshing = false;
      if (state.refreshAgain) {
        state.refreshAgain = false;
        refresh(el, state);
      }
    });
}

function connect(el, state) {
  if (!el.isConnected || state.stopped) return;
  el.dataset.liveState = state.attempt ? "retrying" : "connecting";
  const ws = new WebSocket(socketUrl(el));
  state.ws = ws;
  ws.addEventListener("open", () => {
    state.attempt = 0;
    el.dataset.liveState = "open";
  });
  ws.addEventListener("message", (event) => {
    let payload;
    try {
      payload = JSON.parse(event.data);
    } catch {
      return;
    }
    if (el.dataset.liveRefresh) refresh(el, state);
    else if ("liveAppend" in el.dataset && payload.kind === "event") append(el, payload);
    el.dispatchEvent(new CustomEvent("live:message", { detail: payload, bubbles: true }));
  });
  ws.addEventListener("close", (event) => {
    if (state.stopped) return;
    if (event.code === DENIED) {
      el.dataset.liveState = "denied";
      state.stopped = true;
      return;
    }
    el.dataset.liveState = "retrying";
    // Exponential backoff with jitter so many tabs do not reconnect in lockstep.
    const delay = Math.min(BACKOFF_START_MS * 2 ** state.attempt, BACKOFF_MAX_MS) * (0.75 + Math.random() / 2);
    state.attempt += 1;
    state.timer = setTimeout(() => connect(el, state), delay);
  });
}

export function attach(el) {
  if (sockets.has(el) || !el.dataset.liveSource || !el.dataset.livePk) return;
  const state = { attempt: 0, stopped: false, ws: null, timer: null, refreshing: false, refreshAgain: false };
  sockets.set(el, state);
  connect(el, state);
}

export function detach(el) {
  const state = sockets.get(el);
  if (!state) return;
  state.stopped = true;
  clearTimeout(state.timer);
  state.ws?.close(1000);
  sockets.delete(el);
}

function scan(root) {
  if (root.matches?.("[data-live-source]")) attach(root);
  for (const el of root.querySelectorAll?.("[data-live-source]") || []) attach(el);
}

scan(document);
// htmx:load fires for every piece of content htmx swaps in; cleanup fires before removal.
document.addEventListener("htmx:load", (event) => scan(event.target));
document.addEventListener("htmx:beforeCleanupElement", (event) => {
  if (event.target.matches?.("[data-live-source]")) detach(event.target);
});
// Sockets close when the page is hidden into the back/forward cache and reopen on return.
window.addEventListener("pagehide", () => {
  for (const el of document.querySelectorAll("[data-live-source]")) detach(el);
});
window.addEventListener("pageshow", (event) => {
  if (event.persisted) scan(document);
});
