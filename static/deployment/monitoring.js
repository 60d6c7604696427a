// The Monitoring tab: draws the plotly figures the page carries, then refreshes them (and the call
// totals) every data-refresh-seconds from the JSON endpoint, for the chosen range (1 h / 3 h / 12 h).
const holder = document.querySelector("[data-monitoring-charts]");

function render(charts) {
  for (const chart of charts) {
    let node = holder.querySelector(`[data-chart="${chart.key}"]`);
    if (!node) {
      node = document.createElement("div");
      node.className = "monitoring-chart";
      node.dataset.chart = chart.key;
      holder.append(node);
    }
    window.Plotly.react(node, chart.figure.data, chart.figure.layout, { responsive: true, displaylogo: false });
  }
}

function totals(values) {
  for (const [key, value] of Object.entries(values || {})) {
    const node = document.querySelector(`[data-total="${key}"]`);
    if (node) node.textContent = value === null ? "—" : (key === "latency_ms" ? `${value} ms` : String(value));
  }
}

async function refresh() {
  const range = document.querySelector("[data-monitoring-range]")?.value || "1h";
  try {
    const response = await fetch(`${holder.dataset.url}?range=${encodeURIComponent(range)}`, { credentials: "same-origin" });
    if (!response.ok) return;
    const data = await response.json();
    render(data.charts);
    totals(data.totals);
  } catch {
    // A failed refresh keeps the last charts; the next one tries again.
  }
}

function start() {
  if (!holder || !window.Plotly) return;
  render(JSON.parse(document.getElementById("monitoring-figures").textContent));
  holder.dataset.drawn = "1";
  document.querySelector("[data-monitoring-range]")?.addEventListener("change", refresh);
  setInterval(refresh, Number(holder.dataset.refreshSeconds || 30) * 1000);
}

if (document.readyState === "complete") start();
else window.addEventListener("load", start);
