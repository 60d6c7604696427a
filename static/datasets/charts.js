// Draws every [data-plotly="<id>"] element from the figure in <script id="<id>" type="application/json">.
// plotly.min.js (served from the plotly package) is loaded with defer before this module runs.
function draw() {
  if (!window.Plotly) return;
  for (const el of document.querySelectorAll("[data-plotly]")) {
    if (el.dataset.drawn) continue;
    const source = document.getElementById(el.dataset.plotly);
    if (!source) continue;
    const figure = JSON.parse(source.textContent);
    window.Plotly.newPlot(el, figure.data, figure.layout, { responsive: true, displaylogo: false });
    el.dataset.drawn = "1";
  }
}

if (document.readyState === "complete") draw();
else window.addEventListener("load", draw);
