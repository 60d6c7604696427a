// Resource-usage tab: redraws each node's plotly chart from [data-resources] (a JSON URL) every
// data-refresh-seconds while the tab is open and the page visible (0 = the job ended: no refresh).
// Plotly.react with the figure's uirevision keeps the user's legend toggles and zoom.
function start() {
  const panel = document.querySelector("[data-resources]");
  if (!panel || !window.Plotly) return;
  const every = Number(panel.dataset.refreshSeconds || "0");
  if (!every) return;
  async function refresh() {
    if (document.visibilityState !== "visible") return;
    try {
      const response = await fetch(panel.dataset.resources, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const data = await response.json();
      for (const node of data.nodes) {
        const el = panel.querySelector(`.chart[data-node-rank="${node.rank}"]`);
        if (!el) continue;
        window.Plotly.react(el, node.figure.data, node.figure.layout, { responsive: true, displaylogo: false });
        const count = panel.querySelector(`[data-sample-count="${node.rank}"]`);
        if (count) count.textContent = `(${node.count} samples)`;
      }
      panel.dataset.refreshed = String(Date.now());
      if (!["creating", "pending", "running"].includes(data.status)) clearInterval(timer);
    } catch (error) {
      // A network blip: the next tick tries again.
    }
  }
  const timer = setInterval(refresh, every * 1000);
}

if (document.readyState === "complete") start();
else window.addEventListener("load", start);
