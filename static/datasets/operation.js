// The operation page listens on its live channel (static/core/live.js). A run that finished
// between the page render and the socket opening would send nothing more, so once the socket
// is open the status is fetched one extra time.
for (const el of document.querySelectorAll("[data-operation-live]")) {
  let fetched = false;
  new MutationObserver(() => {
    if (fetched || el.dataset.liveState !== "open") return;
    fetched = true;
    fetch(el.dataset.liveRefresh, { headers: { "HX-Request": "true", "HX-Target": el.id }, credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
      .then((html) => { el.innerHTML = html; })
      .catch(() => {});
  }).observe(el, { attributes: true, attributeFilter: ["data-live-state"] });
}
