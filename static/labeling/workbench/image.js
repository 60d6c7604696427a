// Image editors: object detection and segmentation on the canvas, image classification as a
// preview with label toggles. `ShapeController` ties a canvas to a session and the side panel;
// the video editor reuses it for paused frames.
import { ImageCanvas, TOOLS } from "./canvas.js";
import { contextMenu, el, fill, pickLabel, swatch } from "./ui.js";

const SHAPE_NAMES = { bndbox: "Rectangle", polygon: "Polygon", circle: "Circle", line: "Line", point: "Point" };
const LAST_TOOL_KEY = "atelier:labeling:last-tool";

export function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.decoding = "async";
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error(`could not load ${url}`));
    image.src = url;
  });
}

export function canvasShortcuts(segmentation) {
  return [
    [segmentation ? "2" : "1 … 6", segmentation ? "Polygon tool (the only tool of segmentation)" : "Tools: rectangle, polygon, circle, line, dashed line, point"],
    ["Click", "Rectangle, circle, line: click, move, click. Polygon: click the points, click the first point (or Enter) to close"],
    ["Ctrl+Z", "Undo"], ["Ctrl+Shift+Z / Ctrl+Y", "Redo"],
    ["Wheel / + / -", "Zoom in and out"], ["0", "Fit the image"], ["Space+drag / arrows", "Pan"],
    ["X+drag", "Move a shape, or resize it by its handles"], ["Esc", "Cancel drawing; else undo the last drag"],
    ["Right-click", "Modify the label of a shape or delete it"], ["Delete", "Delete the selected shape"],
    ["Shift+Delete", "Delete all shapes of this image"], ["Shift+H", "Show or hide the shapes"], ["F", "Full screen"],
  ];
}

export class ShapeController {
  constructor(shell, { stage, side, tools, segmentation }) {
    this.shell = shell;
    this.segmentation = segmentation;
    this.canvas = new ImageCanvas(stage, { readOnly: shell.readOnly, tools });
    this.canvas.setLabels(shell.labels);
    this.side = side;
    this.session = null;
    this.lastLabel = "";
    const saved = localStorage.getItem(LAST_TOOL_KEY);
    if (!segmentation && saved) this.canvas.setTool(saved);
    this.canvas.addEventListener("shape", (e) => this.onShape(e.detail));
    this.canvas.addEventListener("edit", (e) => this.replaceAt(e.detail.index, e.detail.shape));
    this.canvas.addEventListener("select", () => this.renderPanel());
    this.canvas.addEventListener("context", (e) => this.onContext(e.detail));
    this.canvas.addEventListener("tool", (e) => {
      if (!segmentation) localStorage.setItem(LAST_TOOL_KEY, e.detail);
      shell.root.querySelectorAll("[data-tool]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.tool === e.detail)));
    });
  }

  attach(session) {
    this.session = session;
    this.canvas.lastDrag = null;
    this.canvas.selected = -1;
    this.canvas.drawing = null;
    session.addEventListener("change", () => this.refresh());
    session.addEventListener("saved", () => this.refresh());
    this.refresh();
  }

  refresh() {
    if (!this.session) return;
    this.canvas.setAnnotations(this.session.annotations);
    this.renderPanel();
  }

  commit(next) { this.session.commit(next); }

  async onShape(shape) {
    const rect = this.canvas.canvas.getBoundingClientRect();
    const [ix, iy] = this.canvas.pointer || [0, 0];
    const label = await pickLabel({
      x: rect.left + ix * this.canvas.scale + this.canvas.tx + 12, y: rect.top + iy * this.canvas.scale + this.canvas.ty + 12,
      labels: this.shell.labels, last: this.lastLabel, title: `Label this ${SHAPE_NAMES[shape.shape].toLowerCase()}`,
      create: (name, color) => this.shell.createLabel(name, color),
    });
    this.canvas.canvas.focus({ preventScroll: true });
    if (!label) { this.canvas.invalidate(); return; }
    this.lastLabel = label;
    const next = [...this.session.annotations, { ...shape, label }];
    this.commit(next);
    this.canvas.select(next.length - 1);
  }

  replaceAt(index, shape) {
    const next = this.session.annotations.slice();
    next[index] = shape;
    this.commit(next);
  }

  removeAt(index) {
    const next = this.session.annotations.filter((_, i) => i !== index);
    this.canvas.selected = -1;
    this.commit(next);
  }

  async relabel(index, x, y) {
    const current = this.session.annotations[index];
    const label = await pickLabel({ x, y, labels: this.shell.labels, last: current.label, title: "Modify label",
      create: (name, color) => this.shell.createLabel(name, color) });
    if (!label || label === current.label) return;
    this.replaceAt(index, { ...current, label, attributes: {} });
  }

  onContext({ index, x, y }) {
    if (this.shell.readOnly) return;
    contextMenu({ x, y, items: [
      { label: "Modify label…", action: () => this.relabel(index, x, y) },
      { label: "Delete", action: () => this.removeAt(index) },
    ] });
  }

  labelsChanged() { this.canvas.setLabels(this.shell.labels); this.renderPanel(); }

  renderPanel() {
    const anns = this.session ? this.session.annotations : [];
    const selected = this.canvas.selected;
    // The list shows the first 500 (building rows for thousands of shapes on every change is what would lag).
    const rows = anns.slice(0, 500).map((a, i) => el("li", { class: `wb-ann${i === selected ? " selected" : ""}`, "data-testid": "annotation-row",
      onclick: () => this.canvas.select(i) },
    swatch(this.shell.labelColor(a.label)), el("span", { class: "wb-ann-label" }, a.label),
    el("span", { class: "wb-ann-kind" }, a.style === "dashed" ? "Dashed line" : SHAPE_NAMES[a.shape] || a.shape),
    this.shell.readOnly ? null : el("button", { type: "button", class: "wb-icon-btn", title: "Modify label", "aria-label": `Modify label of ${a.label}`,
      onclick: (e) => { e.stopPropagation(); const r = e.currentTarget.getBoundingClientRect(); this.relabel(i, r.left - 220, r.bottom); } }, "✎"),
    this.shell.readOnly ? null : el("button", { type: "button", class: "wb-icon-btn", title: "Delete", "aria-label": `Delete ${a.label}`,
      onclick: (e) => { e.stopPropagation(); this.removeAt(i); } }, "✕")));
    const counts = {};
    anns.forEach((a) => { counts[a.label] = (counts[a.label] || 0) + 1; });
    fill(this.side, ...[
      el("section", { class: "wb-panel" }, el("h3", {}, "Labels"),
        el("ul", { class: "wb-labels" }, this.shell.labels.map((l) => el("li", {}, swatch(l.color), el("span", {}, l.name),
          el("span", { class: "wb-count" }, counts[l.name] || 0))))),
      this.attributesPanel(anns[selected]),
      el("section", { class: "wb-panel wb-panel-grow" }, el("h3", {}, `Annotations `, el("span", { class: "wb-count" }, anns.length)),
        anns.length ? el("ol", { class: "wb-anns", "data-testid": "annotation-list" }, rows)
          : el("p", { class: "wb-empty" }, this.shell.readOnly ? "No annotations." : "Draw a shape: pick a tool (1–6) and click on the image."),
        anns.length > 500 ? el("p", { class: "wb-empty" }, `…and ${anns.length - 500} more (select them on the canvas).`) : null),
    ].filter(Boolean));
    this.side.querySelector(".wb-ann.selected")?.scrollIntoView({ block: "nearest" });
  }

  attributesPanel(a) {
    if (!a) return null;
    const label = this.shell.labels.find((l) => l.name === a.label);
    const defs = (label && label.attributes) || [];
    if (!defs.length) return null;
    const index = this.canvas.selected;
    return el("section", { class: "wb-panel" }, el("h3", {}, `Attributes of ${a.label}`),
      defs.map((def) => {
        const value = (a.attributes || {})[def.name] || "";
        const onchange = (e) => {
          const attributes = { ...(a.attributes || {}), [def.name]: e.target.value };
          if (!e.target.value) delete attributes[def.name];
          this.replaceAt(index, { ...a, attributes });
        };
        const control = def.values && def.values.length
          ? el("select", { "data-attribute": def.name, onchange, disabled: this.shell.readOnly }, el("option", { value: "" }, "—"),
            def.values.map((v) => el("option", { value: v, selected: v === value }, v)))
          : el("input", { type: "text", value, "data-attribute": def.name, onchange, disabled: this.shell.readOnly });
        return el("label", { class: "wb-attr" }, el("span", {}, def.name), control);
      }));
  }

  handleKey(e, { typing }) {
    if (typing) return false;
    const c = this.canvas;
    const key = e.key;
    const ctrl = e.ctrlKey || e.metaKey;
    if (ctrl && key.toLowerCase() === "z") { if (!this.shell.readOnly) (e.shiftKey ? this.session.redo() : this.session.undo()); return true; }
    if (ctrl && key.toLowerCase() === "y") { if (!this.shell.readOnly) this.session.redo(); return true; }
    if (ctrl || e.altKey) return false;
    const tool = c.tools.find((t) => t.key === key);
    if (tool && !e.shiftKey) { c.setTool(tool.id); return true; }
    if (key === "Escape") {
      if (c.cancelDrawing()) return true;
      if (c.lastDrag && !this.shell.readOnly) {
        const { index, before } = c.lastDrag;
        c.lastDrag = null;
        if (index < this.session.annotations.length) this.replaceAt(index, before);
        return true;
      }
      if (c.selected >= 0) { c.select(-1); return true; }
      return false;
    }
    if (key === "Delete" || key === "Backspace") {
      if (this.shell.readOnly) return true;
      if (e.shiftKey) { if (this.session.annotations.length) { c.selected = -1; this.commit([]); } return true; }
      if (c.selected >= 0) { this.removeAt(c.selected); return true; }
      return false;
    }
    if (e.shiftKey && key.toLowerCase() === "h") { c.hidden = !c.hidden; c.invalidate(); this.shell.root.dataset.hidden = c.hidden; return true; }
    if (key === "Enter" && c.drawing && c.drawing.tool === "polygon") { c.finishPolygon(); return true; }
    if (key === "+" || key === "=") { c.zoomAt(1.25); return true; }
    if (key === "-" || key === "_") { c.zoomAt(0.8); return true; }
    if (key === "0") { c.fit(); return true; }
    if (key === "f" || key === "F") { toggleFullscreen(this.shell.root); return true; }
    const pan = { ArrowLeft: [60, 0], ArrowRight: [-60, 0], ArrowUp: [0, 60], ArrowDown: [0, -60] }[key];
    if (pan) { c.pan(...pan); return true; }
    return false;
  }
}

export function toggleFullscreen(node) {
  if (document.fullscreenElement) document.exitFullscreen();
  else node.requestFullscreen?.();
}

function toolRail(shell, controller, tools) {
  const c = controller.canvas;
  const button = (attrs, text, title) => el("button", { type: "button", class: "wb-tool", title, "aria-label": title, ...attrs }, text);
  const rail = shell.parts.tools;
  fill(rail, 
    ...tools.map((t) => button({ "data-tool": t.id, "data-key": t.key, "aria-pressed": String(c.tool === t.id), onclick: () => c.setTool(t.id) },
      el("span", { class: `wb-tool-icon wb-tool-${t.id}` }), `${t.label} (${t.key})`)),
    el("hr"),
    button({ onclick: () => controller.session.undo(), "data-action": "undo" }, "↶", "Undo (Ctrl+Z)"),
    button({ onclick: () => controller.session.redo(), "data-action": "redo" }, "↷", "Redo (Ctrl+Shift+Z)"),
    button({ onclick: () => c.zoomAt(1.25), "data-action": "zoom-in" }, "+", "Zoom in (+ or wheel)"),
    button({ onclick: () => c.zoomAt(0.8), "data-action": "zoom-out" }, "−", "Zoom out (- or wheel)"),
    button({ onclick: () => c.fit(), "data-action": "fit" }, "⤢", "Fit image (0)"),
    button({ onclick: () => { c.hidden = !c.hidden; c.invalidate(); }, "data-action": "toggle" }, "◐", "Show or hide shapes (Shift+H)"),
    button({ onclick: () => { if (controller.session.annotations.length) controller.commit([]); }, "data-action": "delete-all" }, "⌫", "Delete all shapes (Shift+Delete)"),
    button({ onclick: () => toggleFullscreen(shell.root), "data-action": "fullscreen" }, "⤡", "Full screen (F)"),
  );
  rail.hidden = false;
}

// ---- the editor of the image kind --------------------------------------------------------

export class Editor {
  constructor(shell) {
    this.shell = shell;
    this.type = shell.job.type;
    this.classification = this.type === "image_classification";
    this.segmentation = this.type === "image_segmentation";
    const tools = this.segmentation ? TOOLS.filter((t) => t.id === "polygon") : TOOLS;
    this.controller = new ShapeController(shell, { stage: shell.parts.stage, side: shell.parts.side, tools, segmentation: this.segmentation });
    this.canvas = this.controller.canvas;
    if (this.classification) {
      this.canvas.readOnly = true;
      shell.parts.tools.hidden = true;
    } else {
      if (this.segmentation) this.canvas.setTool("polygon");
      toolRail(shell, this.controller, tools);
    }
    this.canvas.addEventListener("view", () => this.maybeFullResolution());
    this.strip = this.classification ? null : shell.parts.strip;
    this.stripIds = [];
    // Shown (empty, at its full height) before the first fit: filling it later must not move the
    // image under a labeler's cursor.
    if (this.strip) this.strip.hidden = false;
  }

  sessions() { return this.session ? [this.session] : []; }

  // The thumbnail strip (spec §6, item 33): this tab's images; a click saves and opens one.
  async renderStrip() {
    if (!this.strip) return;
    if (!this.stripIds.includes(this.sample.id)) {
      const result = await this.shell.api.samples({ status: this.shell.config.status, page_size: 60 });
      const items = result.status === 200 ? result.body.results : [];
      if (!items.some((s) => s.id === this.sample.id)) items.unshift(this.sample);
      this.stripIds = items.map((s) => s.id);
      fill(this.strip, ...items.map((s) => el("button", { type: "button", class: "wb-thumb", "data-sample": s.id,
        title: s.file_name, "aria-label": `Open ${s.file_name}`, onclick: () => this.open(s.id) },
      el("img", { src: s.preview_url, alt: "", loading: "lazy" }))));
      this.strip.hidden = false;
    }
    this.strip.querySelectorAll(".wb-thumb").forEach((b) => {
      const active = b.dataset.sample === this.sample.id;
      b.classList.toggle("active", active);
      if (active) b.scrollIntoView({ block: "nearest", inline: "nearest" });
    });
  }

  async open(id) {
    if (id === this.sample.id || !(await this.shell.flushAll())) return;
    const result = await this.shell.api.sample(id);
    if (result.status === 200) { this.shell.visited.push(this.sample.id); await this.shell.show(result.body); }
  }

  async load(sample) {
    if (this.session && this.session.dirty) await this.session.flush();
    this.sample = sample;
    this.full = null;
    this.session = this.shell.makeSession({ key: sample.id, version: sample.version, annotations: sample.annotations,
      saver: this.shell.saverFor(sample.id) });
    if (this.classification) this.session.addEventListener("change", () => this.renderClasses());
    const image = await loadImage(sample.preview_url || sample.media_url);
    this.preview = image;
    this.canvas.setSource(image, sample.width || image.naturalWidth, sample.height || image.naturalHeight);
    this.canvas.fit();
    if (this.classification) { this.canvas.setAnnotations([]); this.renderClasses(); } else this.controller.attach(this.session);
    this.renderStrip();
  }

  // Large images: the preview until the zoom shows more detail than it holds, then the original;
  // zoomed back out, the preview again, so a frame never downsamples a 48-megapixel bitmap.
  maybeFullResolution() {
    const s = this.sample;
    if (!s || !this.preview || this.preview.naturalWidth >= (s.width || 0)) return;
    // Screen pixels per preview pixel: above 1.1 the preview would look soft.
    const sharp = this.canvas.scale * s.width / this.preview.naturalWidth > 1.1;
    if (this.full && this.full !== "loading") {
      const want = sharp ? this.full : this.preview;
      if (this.canvas.source !== want) this.canvas.setSource(want, s.width, s.height);
      return;
    }
    if (!sharp || this.full) return;
    this.full = "loading";
    loadImage(s.media_url).then((image) => {
      if (this.sample !== s) return;
      this.full = image;
      this.maybeFullResolution();
    });
  }

  refresh() { if (this.classification) this.renderClasses(); else this.controller.refresh(); }

  labelsChanged() { this.controller.labelsChanged(); if (this.classification) this.renderClasses(); }

  remoteSaved(msg) {
    if (!this.session.dirty && msg.version > this.session.version) {
      this.shell.api.sample(this.sample.id).then((r) => {
        if (r.status === 200 && !this.session.dirty) { this.session.takeTheirs(r.body.version, r.body.annotations); this.refresh(); }
      });
    }
  }

  // Classification: label toggles with number keys (multi-label, spec §4).
  toggleClass(name) {
    if (this.shell.readOnly) return;
    const has = this.session.annotations.some((a) => a.label === name);
    this.session.commit(has ? this.session.annotations.filter((a) => a.label !== name) : [...this.session.annotations, { label: name }]);
  }

  renderClasses() {
    const chosen = new Set(this.session.annotations.map((a) => a.label));
    const input = el("input", { type: "text", placeholder: "New label name", "aria-label": "New label name", class: "wb-input" });
    fill(this.shell.parts.side, el("section", { class: "wb-panel wb-panel-grow" },
      el("h3", {}, "Labels of this image"),
      el("p", { class: "wb-hint" }, "Press a number key or click to toggle; an image may carry several labels."),
      el("ul", { class: "wb-class-list", "data-testid": "class-list" }, this.shell.labels.map((l, i) => el("li", {},
        el("button", { type: "button", class: `wb-class${chosen.has(l.name) ? " on" : ""}`, "aria-pressed": String(chosen.has(l.name)),
          onclick: () => this.toggleClass(l.name) }, i < 9 ? el("kbd", {}, String(i + 1)) : el("span", { class: "wb-kbd-gap" }),
        swatch(l.color), el("span", {}, l.name), chosen.has(l.name) ? el("span", { class: "wb-check" }, "✓") : null)))),
      this.shell.readOnly || !this.shell.config.can_edit_labels ? null : el("form", { class: "wb-add-label", onsubmit: async (e) => {
        e.preventDefault();
        const name = input.value.trim();
        if (!name) return;
        const result = await this.shell.createLabel(name, "");
        if (result.error) { input.setCustomValidity(result.error); input.reportValidity(); return; }
        input.value = "";
        this.toggleClass(name);
      } }, input, el("button", { type: "submit", class: "btn btn-sm" }, "Add"))));
  }

  shortcuts() {
    if (this.classification) return [["1 … 9", "Toggle the n-th label"], ["Ctrl+Z / Ctrl+Shift+Z", "Undo / redo"], ["Wheel / + / -", "Zoom"]];
    return canvasShortcuts(this.segmentation);
  }

  handleKey(e, ctx) {
    if (this.classification) {
      if (ctx.typing) return false;
      const ctrl = e.ctrlKey || e.metaKey;
      if (ctrl && e.key.toLowerCase() === "z") { e.shiftKey ? this.session.redo() : this.session.undo(); return true; }
      if (!ctrl && /^[1-9]$/.test(e.key)) {
        const label = this.shell.labels[Number(e.key) - 1];
        if (label) this.toggleClass(label.name);
        return true;
      }
      if (e.key === "+" || e.key === "=") { this.canvas.zoomAt(1.25); return true; }
      if (e.key === "-") { this.canvas.zoomAt(0.8); return true; }
      return false;
    }
    return this.controller.handleKey(e, ctx);
  }
}
