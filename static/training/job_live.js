// Live log and metric curves of one node of a training job.
// [data-node-log] opens /ws/training/jobs/<job>/nodes/<rank>/log/, which sends the latest part of the
// log first ({kind: "log", first, lines, backlog: true}) and then every new batch, metric points
// ({kind: "metric", points: [{name, step, value}]}) and status changes. Lines carry sequence numbers
// (first + offset): a line already shown is never shown twice. Metric points extend one plotly chart
// per metric name in [data-live-charts]. The toolbar follows the selected node: its "Full log",
// download and "Share link" buttons ([data-node-links]); a share link is made by POST and shown to copy.
const DENIED = 4404;
const MAX_LINES = 20000; // lines kept in the page; the download link has the full log

function setup(panel) {
  const view = panel.querySelector("[data-log-view]");
  const state = panel.querySelector("[data-log-state]");
  const select = panel.querySelector("[data-node-select]");
  const system = panel.querySelector("[data-system-lines]");
  const search = panel.querySelector("[data-log-search]");
  const count = panel.querySelector("[data-search-count]");
  const charts = document.querySelector("[data-live-charts]");
  let ws = null;
  let last = 0;
  let hits = [];
  let hit = -1;
  let retry = 0;
  const series = new Map();

  function addLine(seq, text) {
    if (seq <= last) return;
    last = seq;
    const row = document.createElement("span");
    row.className = text.startsWith("[atelier]") ? "log-line system" : "log-line";
    row.dataset.seq = String(seq);
    row.textContent = text + "\n";
    view.appendChild(row);
    while (view.childElementCount > MAX_LINES) view.firstElementChild.remove();
  }

  function addPoints(points) {
    if (!charts || !window.Plotly) return;
    for (const p of points) {
      let entry = series.get(p.name);
      if (!entry) {
        const el = document.createElement("div");
        el.className = "chart";
        el.dataset.metric = p.name;
        charts.appendChild(el);
        window.Plotly.newPlot(el, [{ x: [], y: [], mode: "lines+markers", name: p.name }],
          { title: { text: p.name, font: { size: 14 } }, height: 280, margin: { l: 50, r: 20, t: 40, b: 40 },
            xaxis: { title: { text: "step" } } }, { responsive: true, displaylogo: false });
        entry = { el, steps: new Set() };
        series.set(p.name, entry);
      }
      if (entry.steps.has(p.step)) continue;
      entry.steps.add(p.step);
      window.Plotly.extendTraces(entry.el, { x: [[p.step]], y: [[p.value]] }, [0]);
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const rank = select ? select.value : "0";
    ws = new WebSocket(`${scheme}://${location.host}/ws/training/jobs/${panel.dataset.job}/nodes/${rank}/log/`);
    ws.addEventListener("open", () => { retry = 0; state.textContent = "Live"; panel.dataset.liveState = "open"; });
    ws.addEventListener("message", (event) => {
      const payload = JSON.parse(event.data);
      if (payload.kind === "log") {
        const stick = view.scrollTop + view.clientHeight >= view.scrollHeight - 20;
        payload.lines.forEach((text, i) => addLine(payload.first + i, text));
        if (payload.backlog && payload.first > 1) {
          state.textContent = `Live · showing the latest ${payload.lines.length} of ${payload.total} lines; open "Full log" or download for the rest`;
          panel.dataset.tail = "partial";
        }
        if (stick) view.scrollTop = view.scrollHeight;
      } else if (payload.kind === "metric") {
        addPoints(payload.points);
      } else if (payload.kind === "status") {
        state.textContent = `Live · ${payload.label}${payload.exit_text ? " · " + payload.exit_text : ""}`;
      }
    });
    ws.addEventListener("close", (event) => {
      if (event.code === DENIED) { state.textContent = "Not available."; return; }
      if (ws.replaced) return;
      state.textContent = "Reconnecting…";
      retry += 1;
      setTimeout(connect, Math.min(1000 * 2 ** retry, 30000));
    });
  }

  function showNodeLinks() {
    const rank = select ? select.value : "0";
    for (const links of panel.querySelectorAll("[data-node-links]")) links.hidden = links.dataset.nodeLinks !== rank;
  }

  select?.addEventListener("change", () => {
    if (ws) { ws.replaced = true; ws.close(1000); }
    view.textContent = "";
    last = 0;
    hits = [];
    hit = -1;
    count.textContent = "";
    showNodeLinks();
    connect();
  });

  const shareResult = panel.querySelector("[data-share-result]");
  for (const button of panel.querySelectorAll("[data-share-url]")) {
    button.addEventListener("click", async () => {
      const token = document.querySelector("[name=csrfmiddlewaretoken]")?.value
        || document.cookie.match(/csrftoken=([^;]+)/)?.[1] || "";
      const response = await fetch(button.dataset.shareUrl, { method: "POST", headers: { "X-CSRFToken": token } });
      if (!response.ok) { state.textContent = "Could not make a share link."; return; }
      const data = await response.json();
      shareResult.hidden = false;
      const input = shareResult.querySelector("[data-share-link]");
      input.value = data.url;
      input.select();
      const minutes = Math.round(data.expires_in_seconds / 60);
      shareResult.querySelector("[data-share-note]").textContent =
        `${data.node}: opens without signing in for ${minutes} min (until ${new Date(data.expires_at).toLocaleTimeString()}).`;
    });
  }
  system?.addEventListener("change", () => view.classList.toggle("hide-system", !system.checked));

  function runSearch() {
    for (const row of view.querySelectorAll(".hit")) {
      row.textContent = row.textContent; // drops the <mark> pieces of the previous search
      row.classList.remove("hit", "current");
    }
    hits = [];
    hit = -1;
    const term = search.value.trim().toLowerCase();
    if (term) {
      for (const row of view.children) {
        if (row.textContent.toLowerCase().includes(term)) hits.push(row);
      }
    }
    hits.forEach((row) => { row.classList.add("hit"); highlight(row, term); });
    count.textContent = term ? `${hits.length} match${hits.length === 1 ? "" : "es"}` : "";
    step(1);
  }

  function highlight(row, term) {
    const text = row.textContent;
    const lower = text.toLowerCase();
    const parts = [];
    let at = 0;
    for (let i = lower.indexOf(term); i !== -1; i = lower.indexOf(term, i + term.length)) {
      parts.push(document.createTextNode(text.slice(at, i)));
      const mark = document.createElement("mark");
      mark.textContent = text.slice(i, i + term.length);
      parts.push(mark);
      at = i + term.length;
    }
    parts.push(document.createTextNode(text.slice(at)));
    row.replaceChildren(...parts);
  }

  function step(delta) {
    if (!hits.length) return;
    hits[hit]?.classList.remove("current");
    hit = (hit + delta + hits.length) % hits.length;
    hits[hit].classList.add("current");
    hits[hit].scrollIntoView({ block: "center" });
  }

  search?.addEventListener("input", runSearch);
  search?.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); step(event.shiftKey ? -1 : 1); }
  });
  panel.querySelector("[data-search-next]")?.addEventListener("click", () => step(1));
  panel.querySelector("[data-search-prev]")?.addEventListener("click", () => step(-1));
  connect();
}

function start() {
  for (const panel of document.querySelectorAll("[data-node-log]")) setup(panel);
}
if (document.readyState === "complete") start();
else window.addEventListener("load", start);
