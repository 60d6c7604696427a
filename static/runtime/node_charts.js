// Monitoring charts: CPU, memory and GPU use per worker node. Figures come from
// #node-chart-figures (apps/runtime/charts.py) and are refreshed from the data URL.

const root = document.querySelector("[data-node-charts]");
const CONFIG = { responsive: true, displaylogo: false };

function draw(charts) {
  for (const chart of charts) {
    let div = root.querySelector(`[data-chart="${chart.key}"]`);
    if (!div) {
      div = document.createElement("div");
      div.className = "node-chart panel";
      div.dataset.chart = chart.key;
      root.appendChild(div);
    }
    window.Plotly.react(div, chart.figure.data, chart.figure.layout, CONFIG);
  }
}

async function refresh() {
  try {
    const response = await fetch(root.dataset.refreshUrl, { credentials: "same-origin" });
    if (response.ok) draw((await response.json()).charts);
  } catch {
    // The next round retries; the charts keep their last data meanwhile.
  }
}

if (root && window.Plotly) {
  draw(JSON.parse(document.getElementById("node-chart-figures").textContent));
  setInterval(refresh, Number(root.dataset.refreshSeconds || 15) * 1000);
}
