// Audio editors: sound classification (play, then toggle labels), speech content (play, then
// type the transcript) and speech segmentation (drag a time range on the waveform, label it).
//
// The waveform is drawn from peaks the server computes (…/peaks/), so an hour-long recording
// never has to be decoded in the tab; playback streams with HTTP ranges.
import { el, fill, pickLabel, swatch } from "./ui.js";

const clock = (s) => {
  const ms = Math.round((s || 0) * 1000);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(Math.floor(ms / 3600000))}:${pad(Math.floor(ms / 60000) % 60)}:${pad(Math.floor(ms / 1000) % 60)}.${pad(ms % 1000, 3)}`;
};

export class Editor {
  constructor(shell) {
    this.shell = shell;
    this.type = shell.job.type;
    this.segmentation = this.type === "audio_segmentation";
    this.content = this.type === "audio_content";
    this.multi = shell.job.speech_label_mode === "multi";
    this.stage = el("div", { class: "wb-media-stage" });
    fill(shell.parts.stage, this.stage);
    this.audio = el("audio", { preload: "metadata", "data-testid": "audio" });
    this.audio.addEventListener("timeupdate", () => this.drawWave());
    this.audio.addEventListener("play", () => this.tick());
    this.selected = -1;
  }

  sessions() { return this.session ? [this.session] : []; }

  async load(sample) {
    this.sample = sample;
    this.duration = sample.duration || 0;
    this.session = this.shell.makeSession({ key: sample.id, version: sample.version, annotations: sample.annotations,
      saver: this.shell.saverFor(sample.id) });
    this.session.addEventListener("change", () => this.render());
    this.audio.src = sample.media_url;
    this.peaks = [];
    if (this.segmentation) {
      const result = await this.shell.api.peaks(sample.id, 1600);
      if (result.status === 200) { this.peaks = result.body.peaks; this.duration = result.body.duration || this.duration; }
    }
    this.build();
    this.render();
  }

  build() {
    const play = el("button", { type: "button", class: "btn btn-sm", "data-testid": "play", onclick: () => this.togglePlay() }, "▶ Play / pause (Space)");
    this.time = el("span", {}, `${clock(0)} / ${clock(this.duration)}`);
    const parts = [el("div", { class: "wb-transport" }, play, this.time)];
    if (this.segmentation) {
      this.waveCanvas = el("canvas", { "aria-label": "Waveform: drag to select a time range" });
      this.wave = el("div", { class: "wb-wave", "data-testid": "waveform" }, this.waveCanvas);
      this.bindWave();
      this.table = el("table", { class: "wb-segments", "data-testid": "segments" });
      parts.unshift(this.wave);
      parts.push(this.table);
    } else if (this.content) {
      this.textarea = el("textarea", { class: "wb-transcript", "data-testid": "transcript", placeholder: "Type what is said (Chinese or English)",
        "aria-label": "Speech content", oninput: () => this.onTranscript() });
      parts.push(this.textarea, el("div", {}, el("button", { type: "button", class: "btn btn-primary", "data-testid": "confirm",
        onclick: () => this.shell.flushAll() }, "Confirm annotation (Ctrl+Enter)")));
    }
    parts.unshift(this.audio);
    this.audio.controls = !this.segmentation;
    fill(this.stage, ...parts);
    if (this.content) this.textarea.value = (this.session.annotations[0] || {}).content || "";
    if (this.waveCanvas) new ResizeObserver(() => this.drawWave()).observe(this.wave);
  }

  togglePlay() { if (this.audio.paused) this.audio.play(); else this.audio.pause(); }

  tick() {
    this.drawWave();
    if (!this.audio.paused) requestAnimationFrame(() => this.tick());
  }

  onTranscript() {
    const text = this.textarea.value;
    const current = this.session.annotations[0];
    const next = text.trim() ? [{ ...(current || {}), shape: "none", content: text }] : [];
    this.session.commit(next, { coalesce: true });
  }

  // ---- waveform and segments ----------------------------------------------------------------

  timeAt(clientX) {
    const rect = this.wave.getBoundingClientRect();
    return Math.min(Math.max((clientX - rect.left) / rect.width, 0), 1) * this.duration;
  }

  bindWave() {
    this.wave.addEventListener("mousedown", (e) => {
      if (e.button !== 0 || this.shell.readOnly) return;
      e.preventDefault();
      const start = this.timeAt(e.clientX);
      const hit = this.segmentAt(start, e.clientX);
      if (hit) { this.dragEdge(hit, e); return; }
      this.draft = { start, end: start };
      const move = (ev) => { this.draft.end = this.timeAt(ev.clientX); this.drawWave(); };
      const up = async (ev) => {
        window.removeEventListener("mousemove", move);
        window.removeEventListener("mouseup", up);
        const draft = this.draft;
        this.draft = null;
        const [a, b] = [Math.min(draft.start, draft.end), Math.max(draft.start, draft.end)];
        if (b - a < 0.05) { this.audio.currentTime = a; this.drawWave(); return; }
        await this.addSegment(Math.round(a * 1000) / 1000, Math.round(b * 1000) / 1000, ev);
      };
      window.addEventListener("mousemove", move);
      window.addEventListener("mouseup", up);
    });
  }

  // A mousedown within 6 px of a segment edge drags that edge.
  segmentAt(t, clientX) {
    const rect = this.wave.getBoundingClientRect();
    const px = (s) => rect.left + (s / this.duration) * rect.width;
    for (const [i, a] of this.session.annotations.entries()) {
      if (Math.abs(px(a.geometry.start) - clientX) < 6) return { index: i, edge: "start" };
      if (Math.abs(px(a.geometry.end) - clientX) < 6) return { index: i, edge: "end" };
    }
    return null;
  }

  dragEdge({ index, edge }, e) {
    const before = this.session.annotations[index];
    const ref = before.ref_id;
    let value = before.geometry[edge];
    const move = (ev) => { value = Math.round(this.timeAt(ev.clientX) * 1000) / 1000; this.dragPreview = { ref, edge, value }; this.drawWave(); };
    const up = () => {
      window.removeEventListener("mousemove", move);
      window.removeEventListener("mouseup", up);
      this.dragPreview = null;
      const next = this.session.annotations.map((a) => (a.ref_id === ref ? { ...a, geometry: { ...a.geometry, [edge]: value } } : a));
      this.session.commit(next);
    };
    window.addEventListener("mousemove", move);
    window.addEventListener("mouseup", up);
  }

  nextRef() {
    const used = this.session.annotations.map((a) => Number((a.ref_id || "S0").slice(1)));
    return `S${(used.length ? Math.max(...used) : 0) + 1}`;
  }

  async addSegment(start, end, e) {
    const ref = this.nextRef();
    if (this.multi) {
      // One label per category, picked in turn.
      const categories = [...new Set(this.shell.labels.map((l) => l.category).filter(Boolean))];
      const rows = [];
      for (const category of categories) {
        const name = await pickLabel({ x: e.clientX, y: e.clientY + 12, labels: this.shell.labels.filter((l) => l.category === category), title: `${category} of ${clock(start)}–${clock(end)}` });
        if (!name) return;
        rows.push({ label: name, shape: "segment", ref_id: ref, geometry: { start, end } });
      }
      this.session.commit([...this.session.annotations, ...rows]);
      return;
    }
    const label = await pickLabel({ x: e.clientX, y: e.clientY + 12, labels: this.shell.labels, title: `Label ${clock(start)}–${clock(end)}`,
      create: (name, color) => this.shell.createLabel(name, color) });
    if (!label) { this.drawWave(); return; }
    this.session.commit([...this.session.annotations, { label, shape: "segment", ref_id: ref, geometry: { start, end } }]);
    this.selected = this.session.annotations.length - 1;
  }

  // Segments of the payload grouped by ref (multi-label mode keeps one row per category).
  groups() {
    const out = new Map();
    this.session.annotations.forEach((a) => { if (!out.has(a.ref_id)) out.set(a.ref_id, []); out.get(a.ref_id).push(a); });
    return [...out.values()];
  }

  drawWave() {
    if (this.time) this.time.textContent = `${clock(this.audio.currentTime)} / ${clock(this.duration)}`;
    if (!this.waveCanvas) return;
    const c = this.waveCanvas; const dpr = window.devicePixelRatio || 1;
    const w = this.wave.clientWidth; const h = this.wave.clientHeight;
    c.width = w * dpr; c.height = h * dpr;
    const ctx = c.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const x = (t) => (t / (this.duration || 1)) * w;
    for (const group of this.groups()) {
      const a = group[0];
      let { start, end } = a.geometry;
      if (this.dragPreview && this.dragPreview.ref === a.ref_id) ({ start, end } = { ...a.geometry, [this.dragPreview.edge]: this.dragPreview.value });
      const color = this.shell.labelColor(a.label);
      ctx.fillStyle = `${color}40`; ctx.fillRect(x(start), 0, x(end) - x(start), h);
      ctx.fillStyle = color; ctx.fillRect(x(start), 0, 2, h); ctx.fillRect(x(end) - 2, 0, 2, h);
      ctx.fillStyle = "#fff"; ctx.font = "11px sans-serif"; ctx.fillText(`${a.ref_id} ${group.map((g) => g.label).join(" · ")}`, x(start) + 5, 14);
    }
    ctx.fillStyle = "#7aa2ff";
    const mid = h / 2;
    this.peaks.forEach(([lo, hi], i) => {
      const px = (i / this.peaks.length) * w;
      ctx.fillRect(px, mid - hi * mid * 0.9, Math.max(1, w / this.peaks.length - 0.5), Math.max(1, (hi - lo) * mid * 0.9));
    });
    if (this.draft) {
      ctx.fillStyle = "rgba(253,224,71,.3)";
      ctx.fillRect(x(Math.min(this.draft.start, this.draft.end)), 0, Math.abs(x(this.draft.end) - x(this.draft.start)), h);
    }
    ctx.fillStyle = "#fde047"; ctx.fillRect(x(this.audio.currentTime), 0, 2, h);
  }

  // ---- panels -------------------------------------------------------------------------------

  refresh() { if (this.content && this.textarea) this.textarea.value = (this.session.annotations[0] || {}).content || ""; this.render(); }
  labelsChanged() { this.render(); }

  remoteSaved(msg) {
    if (!this.session.dirty && msg.version > this.session.version) {
      this.shell.api.sample(this.sample.id).then((r) => { if (r.status === 200 && !this.session.dirty) { this.session.takeTheirs(r.body.version, r.body.annotations); this.refresh(); } });
    }
  }

  toggle(name) {
    if (this.shell.readOnly) return;
    const anns = this.session.annotations;
    this.session.commit(anns.some((a) => a.label === name) ? anns.filter((a) => a.label !== name) : [...anns, { label: name }]);
  }

  updateGroup(ref, change) {
    this.session.commit(this.session.annotations.map((a) => (a.ref_id === ref ? change(a) : a)));
  }

  render() {
    const side = this.shell.parts.side;
    const anns = this.session.annotations;
    if (this.segmentation) {
      this.drawWave();
      const groups = this.groups();
      const head = el("tr", {}, el("th", {}, "No."), el("th", {}, "Start"), el("th", {}, "End"), el("th", {}, "Label"),
        this.shell.job.speech_content ? el("th", {}, "Content") : null, el("th", {}, ""));
      const rows = groups.map((group, i) => {
        const a = group[0];
        return el("tr", { class: i === this.selected ? "selected" : "", "data-testid": "segment-row" },
          el("td", {}, a.ref_id), el("td", {}, clock(a.geometry.start)), el("td", {}, clock(a.geometry.end)),
          el("td", {}, this.multi ? group.map((g) => g.label).join(" · ") : el("select", { "aria-label": "Segment label", disabled: this.shell.readOnly,
            onchange: (e) => this.updateGroup(a.ref_id, (x) => ({ ...x, label: e.target.value })) },
          this.shell.labels.map((l) => el("option", { value: l.name, selected: l.name === a.label }, l.name)))),
          this.shell.job.speech_content ? el("td", {}, el("input", { type: "text", value: a.content || "", "aria-label": "Segment content", disabled: this.shell.readOnly,
            onchange: (e) => this.updateGroup(a.ref_id, (x) => ({ ...x, content: e.target.value })) })) : null,
          el("td", {}, this.shell.readOnly ? null : el("button", { type: "button", class: "wb-icon-btn", "aria-label": `Delete ${a.ref_id}`,
            onclick: () => this.session.commit(anns.filter((x) => x.ref_id !== a.ref_id)) }, "✕")));
      });
      fill(this.table, el("thead", {}, head), el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 6, class: "wb-empty" }, "Drag across the waveform to add a segment."))));
    }
    const chosen = new Set(anns.map((a) => a.label));
    fill(side, el("section", { class: "wb-panel wb-panel-grow" },
      el("h3", {}, this.content ? "Transcript" : "Labels"),
      this.content ? el("p", { class: "wb-hint" }, "Play the recording, type what is said, then confirm. Edits save as you type.")
        : el("ul", { class: this.segmentation ? "wb-labels" : "wb-class-list", "data-testid": "audio-labels" }, this.shell.labels.map((l, i) => el("li", {},
          this.segmentation ? [swatch(l.color), el("span", {}, l.category ? `${l.category}: ${l.name}` : l.name),
            el("span", { class: "wb-count" }, anns.filter((a) => a.label === l.name).length)]
            : el("button", { type: "button", class: `wb-class${chosen.has(l.name) ? " on" : ""}`, "aria-pressed": String(chosen.has(l.name)), onclick: () => this.toggle(l.name) },
              // Number keys stand in only when no label has a shortcut of its own (see handleKey).
              l.shortcut || (i < 9 && !this.shell.labels.some((x) => x.shortcut)) ? el("kbd", {}, l.shortcut || String(i + 1))
                : el("span", { class: "wb-kbd-gap" }), swatch(l.color), el("span", {}, l.name),
              chosen.has(l.name) ? el("span", { class: "wb-check" }, "✓") : null)))),
      this.segmentation && !this.shell.readOnly ? el("button", { type: "button", class: "btn btn-sm btn-danger-outline", style: "margin-top:12px",
        onclick: () => this.session.commit([]) }, "Delete all annotations") : null));
  }

  shortcuts() {
    const base = [["Space", "Play or pause"], ["Ctrl+Z / Ctrl+Shift+Z", "Undo / redo"]];
    if (this.segmentation) return [["Drag on the waveform", "Select a time range, then pick its label"], ["Drag a segment edge", "Move the start or end"], ...base];
    if (this.content) return [["Ctrl+Enter", "Confirm the transcript (save now)"], ...base];
    return [["Shortcut key / 1 … 9", "Toggle the label with that key"], ...base];
  }

  handleKey(e, { typing }) {
    const ctrl = e.ctrlKey || e.metaKey;
    if (this.content && ctrl && e.key === "Enter") { this.shell.flushAll(); return true; }
    if (typing) return false;
    if (e.key === " ") { this.togglePlay(); return true; }
    if (ctrl && e.key.toLowerCase() === "z") { e.shiftKey ? this.session.redo() : this.session.undo(); this.refresh(); return true; }
    if (!this.segmentation && !this.content && !ctrl) {
      const label = this.shell.labels.find((l) => l.shortcut === e.key) || (/^[1-9]$/.test(e.key) && !this.shell.labels.some((l) => l.shortcut) ? this.shell.labels[Number(e.key) - 1] : null);
      if (label) { this.toggle(label.name); return true; }
    }
    return false;
  }
}
