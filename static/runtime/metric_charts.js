// Metric charts of a run: one plotly chart per metric name, drawn from #run-metric-figures
// (figures built in apps/runtime/charts.py) and extended live with the points the log
// viewer's socket receives ({"kind": "metric", "points": [{id, name, step, value}]}).

const charts = new Map();
const container = document.querySelector("[data-metric-charts]");
const CONFIG = { responsive: true, displaylogo: false };
const COLORS = ["#4f46e5", "#0891b2", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#db2777", "#475569"];

function chartFor(name, figure) {
  if (charts.has(name)) return charts.get(name);
  const div = document.createElement("div");
  div.className = "metric-chart";
  div.dataset.metric = name;
  container.appendChild(div);
  container.querySelector("[data-metric-empty]")?.setAttribute("hidden", "");
  const fig = figure || {
    data: [{ x: [], y: [], mode: "lines+markers", name, type: "scatter",
             line: { color: COLORS[charts.size % COLORS.length], width: 2 }, marker: { size: 4 } }],
    layout: { title: { text: name, x: 0, font: { size: 14 } }, xaxis: { title: { text: "step" } }, height: 260,
              margin: { l: 48, r: 16, t: 36, b: 36 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)" },
  };
  window.Plotly.newPlot(div, fig.data, fig.layout, CONFIG);
  charts.set(name, div);
  return div;
}

function addPoints(points) {
  const byName = new Map();
  for (const p of points) {
    if (!byName.has(p.name)) byName.set(p.name, { x: [], y: [] });
    byName.get(p.name).x.push(p.step);
    byName.get(p.name).y.push(p.value);
  }
  for (const [name, series] of byName) {
    window.Plotly.extendTraces(chartFor(name), { x: [series.x], y: [series.y] }, [0]);
  }
}

let started = false;

export function startMetricCharts() {
  if (started || !container || !window.Plotly) return;
  started = true;
  const initial = JSON.parse(document.getElementById("run-metric-figures")?.textContent || "[]");
  for (const { name, figure } of initial) chartFor(name, figure);
  document.addEventListener("runtime:message", (event) => {
    if (event.detail.kind === "metric") addPoints(event.detail.points);
  });
}

// Started by log_viewer.js before its socket opens (plotly.min.js, a deferred classic script
// placed before the modules, has run by then).
