// Renders the plotly figures the server built: a <script id="training-figures"> list of figures
// (or {name, figure} entries), drawn into every .chart[data-figure-index] element.
function draw() {
  const source = document.getElementById("training-figures");
  if (!source || !window.Plotly) return;
  const figures = JSON.parse(source.textContent || "[]");
  for (const el of document.querySelectorAll(".chart[data-figure-index]")) {
    const entry = figures[Number(el.dataset.figureIndex)];
    if (!entry) continue;
    const figure = entry.figure || entry;
    window.Plotly.newPlot(el, figure.data, figure.layout, { responsive: true, displaylogo: false });
  }
}

if (document.readyState === "complete") draw();
else window.addEventListener("load", draw);
