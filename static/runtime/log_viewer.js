// Run log viewer: [data-log-viewer] on the run page, configured by #run-viewer-config.
//
// One WebSocket (/ws/runtime/runs/<pk>/) brings the log backlog, then live lines, status,
// events and metric points. Lines carry sequence numbers, so a reconnect asks for what
// follows the last line shown (?after=<seq>) and nothing is shown twice or skipped.
// Lines go into the DOM as text (never HTML). The newest MAX_LINES stay rendered; the
// download link has everything. Metric points (with ids: a reconnect asks for those after
// the last one seen) and events are re-dispatched on document as "runtime:message" for the
// charts module, which is started first so no message can arrive before it listens.

import { startMetricCharts } from "./metric_charts.js";

const MAX_LINES = 20000;
const DENIED = 4404;
const TONES = { queued: "pending", starting: "pending", running: "running", stopping: "running",
  succeeded: "success", failed: "danger", lost: "danger", stopped: "muted" };
const TERMINAL = new Set(["succeeded", "failed", "stopped", "lost"]);

class LogViewer {
  constructor(root, config) {
    this.root = root;
    this.config = config;
    this.box = root.querySelector("[data-log-lines]");
    this.note = root.querySelector("[data-log-note]");
    this.count = root.querySelector("[data-log-count]");
    this.state = root.querySelector("[data-log-state]");
    this.follow = root.querySelector("[data-log-follow]");
    this.search = root.querySelector("[data-log-search]");
    this.matchesLabel = root.querySelector("[data-log-matches]");
    this.lastSeq = 0;
    this.metricAfter = config.metric_after ?? 0;
    this.firstShown = null;
    this.pending = [];
    this.frame = null;
    this.attempt = 0;
    this.matches = [];
    this.current = -1;
    this.box.addEventListener("scroll", () => this.onScroll());
    this.search.addEventListener("input", () => this.runSearch());
    this.search.addEventListener("keydown", (event) => {
      if (event.key === "Enter") { event.preventDefault(); this.step(event.shiftKey ? -1 : 1); }
    });
    root.querySelector("[data-log-next]").addEventListener("click", () => this.step(1));
    root.querySelector("[data-log-prev]").addEventListener("click", () => this.step(-1));
    this.follow.addEventListener("change", () => { if (this.follow.checked) this.scrollToEnd(); });
    this.showStatus(config.status);
    this.connect();
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const params = new URLSearchParams({ metric_after: this.metricAfter });
    if (this.lastSeq) params.set("after", this.lastSeq);
    const ws = new WebSocket(`${scheme}://${location.host}${this.config.socket}?${params}`);
    this.ws = ws;
    this.setState("Connecting", "connecting");
    ws.addEventListener("open", () => { this.attempt = 0; this.setState("Live", "open"); });
    ws.addEventListener("message", (event) => this.onMessage(JSON.parse(event.data)));
    ws.addEventListener("close", (event) => {
      if (event.code === DENIED) { this.setState("No access", "denied"); return; }
      this.setState("Reconnecting", "retrying");
      const delay = Math.min(500 * 2 ** this.attempt, 15000) * (0.75 + Math.random() / 2);
      this.attempt += 1;
      setTimeout(() => this.connect(), delay);
    });
  }

  setState(text, state) {
    this.state.textContent = text;
    this.root.dataset.logState = state;
  }

  onMessage(message) {
    if (message.kind === "log") this.addLines(message.first, message.lines);
    else if (message.kind === "backlog") this.onBacklog(message);
    else if (message.kind === "status") this.showStatus(message);
    else {
      if (message.kind === "metric") {
        for (const point of message.points) this.metricAfter = Math.max(this.metricAfter, point.id ?? 0);
      }
      document.dispatchEvent(new CustomEvent("runtime:message", { detail: message }));
    }
  }

  onBacklog(message) {
    if (this.firstShown === null && message.first > 1) {
      this.showNote(`Showing the latest lines, from line ${message.first} of ${message.total}. Download the log for all of it.`);
    }
    this.updateCount();
  }

  addLines(first, lines) {
    const skip = Math.max(0, this.lastSeq + 1 - first);
    if (skip >= lines.length) return;
    for (let i = skip; i < lines.length; i += 1) this.pending.push([first + i, lines[i]]);
    this.lastSeq = first + lines.length - 1;
    if (this.firstShown === null) this.firstShown = first + skip;
    if (!this.frame) this.frame = requestAnimationFrame(() => this.render());
  }

  render() {
    this.frame = null;
    const batch = this.pending.splice(0, this.pending.length).slice(-MAX_LINES);
    const fragment = document.createDocumentFragment();
    const needle = this.search.value.trim().toLowerCase();
    for (const [seq, text] of batch) {
      const row = document.createElement("div");
      row.className = "log-line";
      row.dataset.seq = seq;
      const number = document.createElement("span");
      number.className = "log-number";
      number.textContent = seq;
      const body = document.createElement("span");
      body.className = "log-text";
      body.textContent = text;
      row.append(number, body);
      if (text.startsWith("[atelier]")) row.classList.add("log-platform");
      if (needle && text.toLowerCase().includes(needle)) { row.classList.add("match"); this.matches.push(row); }
      fragment.appendChild(row);
    }
    this.box.appendChild(fragment);
    let removed = 0;
    while (this.box.childElementCount > MAX_LINES) { this.box.firstElementChild.remove(); removed += 1; }
    if (removed) {
      this.matches = this.matches.filter((row) => row.isConnected);
      this.showNote(`Older lines are hidden to keep the page fast (the newest ${MAX_LINES} are shown). Download the log for all of it.`);
    }
    if (needle) this.labelMatches();
    this.updateCount();
    if (this.follow.checked) this.scrollToEnd();
  }

  updateCount() {
    const shown = this.box.childElementCount;
    if (!shown) { this.count.textContent = "No output yet."; return; }
    const first = this.box.firstElementChild.dataset.seq;
    this.count.textContent = `Lines ${first}–${this.lastSeq}`;
  }

  showNote(text) {
    this.note.textContent = text;
    this.note.hidden = false;
  }

  scrollToEnd() {
    this.box.scrollTop = this.box.scrollHeight;
  }

  onScroll() {
    const atEnd = this.box.scrollTop + this.box.clientHeight >= this.box.scrollHeight - 24;
    if (this.follow.checked !== atEnd) this.follow.checked = atEnd;
  }

  runSearch() {
    for (const row of this.matches) row.classList.remove("match", "current");
    this.matches = [];
    this.current = -1;
    const needle = this.search.value.trim().toLowerCase();
    if (needle) {
      for (const row of this.box.children) {
        if (row.lastElementChild.textContent.toLowerCase().includes(needle)) {
          row.classList.add("match");
          this.matches.push(row);
        }
      }
      if (this.matches.length) this.step(1);
    }
    this.labelMatches();
  }

  step(direction) {
    if (!this.matches.length) return;
    this.matches[this.current]?.classList.remove("current");
    this.current = (this.current + direction + this.matches.length) % this.matches.length;
    const row = this.matches[this.current];
    row.classList.add("current");
    this.follow.checked = false;
    row.scrollIntoView({ block: "center" });
    this.labelMatches();
  }

  labelMatches() {
    const needle = this.search.value.trim();
    if (!needle) { this.matchesLabel.textContent = ""; return; }
    const total = this.matches.length;
    this.matchesLabel.textContent = total ? `${this.current + 1} of ${total}` : "No matches";
  }

  showStatus(status) {
    const holder = document.querySelector("[data-run-status]");
    const badge = holder?.querySelector(".badge");
    if (badge) {
      badge.className = `badge badge-${TONES[status.status] || "neutral"}`;
      badge.dataset.status = status.status;
      badge.lastChild.textContent = status.label;
    }
    const reason = document.querySelector("[data-run-reason]");
    if (reason) reason.textContent = status.reason || "";
    const exit = document.querySelector("[data-run-exit]");
    if (exit && status.exit_text) exit.textContent = status.exit_text;
    const stop = document.querySelector("[data-run-stop]");
    if (stop) stop.hidden = TERMINAL.has(status.status);
    document.dispatchEvent(new CustomEvent("runtime:status", { detail: status }));
  }
}

function start() {
  const root = document.querySelector("[data-log-viewer]");
  const config = document.getElementById("run-viewer-config");
  if (!root || !config || root.logViewer) return;
  startMetricCharts();
  root.logViewer = new LogViewer(root, JSON.parse(config.textContent));
}

start();
