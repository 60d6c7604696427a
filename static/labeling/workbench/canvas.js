// The image canvas: draws an image (or a paused video frame) and its shapes with Canvas 2D,
// and implements the tools of spec table 5-27 with click–move–click semantics.
//
// Why Canvas 2D and not SVG: one DOM node per shape is what makes other tools crawl at
// 300–1,000 objects. Here a frame is one image blit plus one path per visible shape, culled
// to the viewport and redrawn only when something changed (requestAnimationFrame), which
// keeps pan and zoom smooth with thousands of shapes.
//
// Geometry is in image pixels and matches the JSON API: bndbox {xmin,ymin,xmax,ymax},
// polygon/line {points}, circle {cx,cy,r}, point {x,y}; a dashed line has style "dashed".

export const TOOLS = [
  { id: "rectangle", key: "1", label: "Rectangle", shape: "bndbox" },
  { id: "polygon", key: "2", label: "Polygon", shape: "polygon" },
  { id: "circle", key: "3", label: "Circle", shape: "circle" },
  { id: "line", key: "4", label: "Line", shape: "line" },
  { id: "dashed_line", key: "5", label: "Dashed line", shape: "line", style: "dashed" },
  { id: "point", key: "6", label: "Point", shape: "point" },
];

const HANDLE = 5; // handle half-size in screen pixels
const CLOSE_DISTANCE = 9; // screen pixels: a click this close to the first vertex closes a polygon
const clone = (v) => JSON.parse(JSON.stringify(v));
// The other person's shapes during a save conflict: one colour no label palette uses, dashed, unfilled.
const OVERLAY_COLOR = "#d0169b";
const DRAWN_SHAPES = new Set(["bndbox", "polygon", "circle", "line", "point"]);

function hexToRgba(hex, alpha) {
  const n = parseInt((hex || "#3b82f6").slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}

export function bounds(a) {
  const g = a.geometry;
  switch (a.shape) {
    case "bndbox": return [g.xmin, g.ymin, g.xmax, g.ymax];
    case "circle": return [g.cx - g.r, g.cy - g.r, g.cx + g.r, g.cy + g.r];
    case "point": return [g.x, g.y, g.x, g.y];
    default: {
      const xs = g.points.map((p) => p[0]); const ys = g.points.map((p) => p[1]);
      return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
    }
  }
}

function distToSegment(px, py, [x1, y1], [x2, y2]) {
  const dx = x2 - x1; const dy = y2 - y1;
  const len = dx * dx + dy * dy;
  const t = len ? Math.max(0, Math.min(1, ((px - x1) * dx + (py - y1) * dy) / len)) : 0;
  return Math.hypot(px - (x1 + t * dx), py - (y1 + t * dy));
}

function inPolygon(x, y, points) {
  let inside = false;
  for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
    const [xi, yi] = points[i]; const [xj, yj] = points[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

export class ImageCanvas extends EventTarget {
  constructor(host, { readOnly = false, tools = TOOLS } = {}) {
    super();
    this.host = host;
    this.readOnly = readOnly;
    this.tools = tools;
    this.canvas = document.createElement("canvas");
    this.canvas.className = "wb-canvas";
    this.canvas.tabIndex = 0;
    this.canvas.setAttribute("aria-label", "Image canvas: draw with the mouse; press ? for shortcuts");
    host.appendChild(this.canvas);
    this.ctx = this.canvas.getContext("2d");
    this.annotations = [];
    this.colors = {};
    this.source = null; // the drawable: an image, a preview of it, or a paused video
    this.width = 0; this.height = 0; // image size in pixels (annotation space)
    this.scale = 1; this.tx = 0; this.ty = 0;
    this.tool = tools[0].id;
    this.hidden = false;
    this.selected = -1;
    this.drawing = null;
    this.overlay = null; // read-only shapes drawn over the user's own (a conflicting save's), never hit-tested
    this.overlayHidden = false;
    this.drag = null;
    this.lastDrag = null; // {index, before} for Esc (reset the last drag)
    this.pointer = null;
    this.keysDown = new Set();
    this.needsDraw = false;
    this.frames = 0; // rendered frames, read by the frame-rate benchmark
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(host);
    this.bind();
    this.resize();
  }

  // ---- state in -------------------------------------------------------------------------

  setSource(source, width, height) {
    const first = !this.width || width !== this.width || height !== this.height;
    this.source = source; this.width = width; this.height = height;
    if (first) this.fit();
    this.invalidate();
  }

  setAnnotations(annotations) {
    this.annotations = annotations;
    if (this.selected >= annotations.length) this.selected = -1;
    this.invalidate();
  }

  // Shapes of another version, drawn as a distinct dashed outline above the editable ones; null removes them.
  // They are display only: hit-testing, selection and dragging look at `annotations` alone.
  setOverlay(annotations) {
    this.overlay = annotations ? annotations.filter((a) => DRAWN_SHAPES.has(a.shape) && a.geometry) : null;
    this.invalidate();
  }

  toggleOverlay(show = this.overlayHidden) {
    this.overlayHidden = !show;
    this.invalidate();
    return show;
  }

  setLabels(labels) {
    this.colors = Object.fromEntries(labels.map((l) => [l.name, l.color]));
    this.invalidate();
  }

  setTool(id) {
    if (!this.tools.some((t) => t.id === id)) return;
    this.tool = id;
    this.drawing = null;
    this.invalidate();
    this.dispatchEvent(new CustomEvent("tool", { detail: id }));
  }

  // ---- view -----------------------------------------------------------------------------

  resize() {
    const rect = this.host.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.viewW = Math.max(1, rect.width); this.viewH = Math.max(1, rect.height);
    this.canvas.width = Math.round(this.viewW * dpr); this.canvas.height = Math.round(this.viewH * dpr);
    this.canvas.style.width = `${this.viewW}px`; this.canvas.style.height = `${this.viewH}px`;
    this.dpr = dpr;
    if (this.width && !this.userZoomed) this.fit();
    this.invalidate();
  }

  fit() {
    if (!this.width) return;
    const pad = 24;
    this.scale = Math.min((this.viewW - pad * 2) / this.width, (this.viewH - pad * 2) / this.height);
    this.tx = (this.viewW - this.width * this.scale) / 2;
    this.ty = (this.viewH - this.height * this.scale) / 2;
    this.userZoomed = false;
    this.emitView();
    this.invalidate();
  }

  zoomAt(factor, sx = this.viewW / 2, sy = this.viewH / 2) {
    const next = Math.min(64, Math.max(0.02, this.scale * factor));
    const ix = (sx - this.tx) / this.scale; const iy = (sy - this.ty) / this.scale;
    this.scale = next;
    this.tx = sx - ix * next; this.ty = sy - iy * next;
    this.userZoomed = true;
    this.emitView();
    this.invalidate();
  }

  pan(dx, dy) { this.tx += dx; this.ty += dy; this.userZoomed = true; this.emitView(); this.invalidate(); }

  emitView() { this.dispatchEvent(new CustomEvent("view", { detail: { scale: this.scale } })); }

  toImage(sx, sy) { return [(sx - this.tx) / this.scale, (sy - this.ty) / this.scale]; }

  clampPoint([x, y]) { return [Math.min(Math.max(x, 0), this.width), Math.min(Math.max(y, 0), this.height)]; }

  // ---- rendering ------------------------------------------------------------------------

  invalidate() {
    if (this.needsDraw) return;
    this.needsDraw = true;
    requestAnimationFrame(() => { this.needsDraw = false; this.draw(); });
  }

  draw() {
    const { ctx } = this;
    this.frames += 1;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, this.viewW, this.viewH);
    if (!this.source) return;
    ctx.save();
    ctx.translate(this.tx, this.ty);
    ctx.scale(this.scale, this.scale);
    ctx.imageSmoothingEnabled = this.scale < 4; // crisp pixels when zoomed in far
    ctx.drawImage(this.source, 0, 0, this.width, this.height);
    ctx.restore();
    if (!this.hidden) this.drawShapes();
    this.drawOverlay();
    this.drawDrawing();
  }

  drawOverlay() {
    const shown = this.overlay && !this.overlayHidden ? this.overlay : [];
    this.canvas.dataset.overlay = String(shown.length); // what is on screen, for tests and assistive checks
    if (!shown.length) return;
    const { ctx } = this;
    ctx.save();
    ctx.strokeStyle = OVERLAY_COLOR;
    ctx.fillStyle = OVERLAY_COLOR;
    ctx.font = "600 11px system-ui, sans-serif";
    for (const a of shown) {
      ctx.beginPath();
      this.tracePath(a);
      // A light underlay keeps the dashes readable on dark and busy images alike.
      ctx.setLineDash([]);
      ctx.lineWidth = 4;
      ctx.strokeStyle = "rgba(255, 255, 255, 0.55)";
      ctx.stroke();
      ctx.lineWidth = 2.5;
      ctx.strokeStyle = OVERLAY_COLOR;
      ctx.setLineDash([7, 5]);
      ctx.stroke();
      // Their label beside the shape, so the two versions can be compared by name as well as place.
      const [x0, y0] = bounds(a);
      const sx = x0 * this.scale + this.tx; const sy = y0 * this.scale + this.ty;
      ctx.setLineDash([]);
      ctx.fillText(a.label || "", sx + 2, Math.max(11, sy - 4));
    }
    ctx.restore();
  }

  drawShapes() {
    const { ctx } = this;
    // Viewport in image coordinates: shapes wholly outside it are skipped.
    const [vx0, vy0] = this.toImage(0, 0); const [vx1, vy1] = this.toImage(this.viewW, this.viewH);
    const lw = 2;
    this.annotations.forEach((a, index) => {
      const [x0, y0, x1, y1] = bounds(a);
      if (x1 < vx0 || y1 < vy0 || x0 > vx1 || y0 > vy1) return;
      const color = this.colors[a.label] || "#3b82f6";
      const selected = index === this.selected;
      ctx.beginPath();
      this.tracePath(a);
      ctx.lineWidth = selected ? lw + 1.5 : lw;
      ctx.strokeStyle = color;
      ctx.setLineDash(a.style === "dashed" ? [8, 6] : []);
      if (a.shape === "point") {
        ctx.fillStyle = color;
        ctx.fill();
        ctx.strokeStyle = "#fff";
        ctx.lineWidth = 1.5;
        ctx.stroke();
      } else {
        if (a.shape !== "line") {
          ctx.fillStyle = hexToRgba(color, selected ? 0.28 : 0.14);
          ctx.fill();
        }
        ctx.stroke();
      }
      ctx.setLineDash([]);
      if (selected) this.drawHandles(a, color);
    });
  }

  tracePath(a) {
    const { ctx } = this;
    const g = a.geometry;
    const s = (x, y) => [x * this.scale + this.tx, y * this.scale + this.ty];
    if (a.shape === "bndbox") {
      const [x, y] = s(g.xmin, g.ymin);
      ctx.rect(x, y, (g.xmax - g.xmin) * this.scale, (g.ymax - g.ymin) * this.scale);
    } else if (a.shape === "circle") {
      const [x, y] = s(g.cx, g.cy);
      ctx.arc(x, y, g.r * this.scale, 0, Math.PI * 2);
    } else if (a.shape === "point") {
      const [x, y] = s(g.x, g.y);
      ctx.arc(x, y, 4.5, 0, Math.PI * 2);
    } else {
      g.points.forEach(([px, py], i) => { const [x, y] = s(px, py); if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y); });
      if (a.shape === "polygon") ctx.closePath();
    }
  }

  handles(a) {
    const g = a.geometry;
    switch (a.shape) {
      case "bndbox": {
        const mx = (g.xmin + g.xmax) / 2; const my = (g.ymin + g.ymax) / 2;
        return [["nw", g.xmin, g.ymin], ["n", mx, g.ymin], ["ne", g.xmax, g.ymin], ["e", g.xmax, my],
          ["se", g.xmax, g.ymax], ["s", mx, g.ymax], ["sw", g.xmin, g.ymax], ["w", g.xmin, my]];
      }
      case "circle": return [["r", g.cx + g.r, g.cy]];
      case "point": return [];
      default: return g.points.map(([x, y], i) => [i, x, y]);
    }
  }

  drawHandles(a, color) {
    const { ctx } = this;
    for (const [, x, y] of this.handles(a)) {
      const sx = x * this.scale + this.tx; const sy = y * this.scale + this.ty;
      ctx.fillStyle = "#fff"; ctx.strokeStyle = color; ctx.lineWidth = 1.5;
      ctx.fillRect(sx - HANDLE, sy - HANDLE, HANDLE * 2, HANDLE * 2);
      ctx.strokeRect(sx - HANDLE, sy - HANDLE, HANDLE * 2, HANDLE * 2);
    }
  }

  drawDrawing() {
    const d = this.drawing;
    if (!d || !this.pointer) return;
    const { ctx } = this;
    const shape = this.preview();
    ctx.save();
    ctx.strokeStyle = "#fde047"; ctx.fillStyle = "rgba(253,224,71,.15)"; ctx.lineWidth = 2;
    ctx.setLineDash(d.tool === "dashed_line" ? [8, 6] : []);
    if (shape) {
      ctx.beginPath(); this.tracePath(shape);
      if (shape.shape !== "line" && shape.shape !== "polygon") ctx.fill();
      ctx.stroke();
    }
    if (d.tool === "polygon") {
      ctx.setLineDash([]);
      d.points.forEach(([x, y], i) => {
        const sx = x * this.scale + this.tx; const sy = y * this.scale + this.ty;
        ctx.beginPath(); ctx.arc(sx, sy, i === 0 ? 6 : 3.5, 0, Math.PI * 2);
        ctx.fillStyle = i === 0 ? "#fde047" : "#fff"; ctx.fill(); ctx.stroke();
      });
    }
    ctx.restore();
  }

  // The shape the current drawing would make if finished at the pointer.
  preview() {
    const d = this.drawing; const p = this.clampPoint(this.pointer);
    const a = d.points[0];
    switch (d.tool) {
      case "rectangle": return { shape: "bndbox", geometry: { xmin: Math.min(a[0], p[0]), ymin: Math.min(a[1], p[1]),
        xmax: Math.max(a[0], p[0]), ymax: Math.max(a[1], p[1]) } };
      case "circle": {
        const r = Math.min(Math.hypot(p[0] - a[0], p[1] - a[1]), a[0], a[1], this.width - a[0], this.height - a[1]);
        return { shape: "circle", geometry: { cx: a[0], cy: a[1], r } };
      }
      case "line": case "dashed_line": return { shape: "line", geometry: { points: [a, p] } };
      case "polygon": return { shape: "line", geometry: { points: [...d.points, p] } };
      default: return null;
    }
  }

  // ---- hit testing ----------------------------------------------------------------------

  hit(sx, sy) {
    const [x, y] = this.toImage(sx, sy);
    const tol = 6 / this.scale;
    for (let i = this.annotations.length - 1; i >= 0; i -= 1) {
      const a = this.annotations[i]; const g = a.geometry;
      if (a.shape === "bndbox" && x >= g.xmin - tol && x <= g.xmax + tol && y >= g.ymin - tol && y <= g.ymax + tol) return i;
      if (a.shape === "circle" && Math.hypot(x - g.cx, y - g.cy) <= g.r + tol) return i;
      if (a.shape === "point" && Math.hypot(x - g.x, y - g.y) <= tol + 3 / this.scale) return i;
      if (a.shape === "polygon" && inPolygon(x, y, g.points)) return i;
      if ((a.shape === "line" || a.shape === "polygon") && g.points.some((p, j) => j && distToSegment(x, y, g.points[j - 1], p) <= tol)) return i;
    }
    return -1;
  }

  hitHandle(sx, sy) {
    if (this.selected < 0) return null;
    const a = this.annotations[this.selected];
    for (const [id, x, y] of this.handles(a)) {
      if (Math.abs(x * this.scale + this.tx - sx) <= HANDLE + 2 && Math.abs(y * this.scale + this.ty - sy) <= HANDLE + 2) return id;
    }
    return null;
  }

  select(index) {
    this.selected = index;
    this.invalidate();
    this.dispatchEvent(new CustomEvent("select", { detail: index }));
  }

  // ---- input ----------------------------------------------------------------------------

  bind() {
    const c = this.canvas;
    const local = (e) => { const r = c.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const [sx, sy] = local(e);
      this.zoomAt(Math.exp(-e.deltaY * 0.0015), sx, sy);
    }, { passive: false });
    c.addEventListener("mousedown", (e) => this.onDown(e, local(e)));
    window.addEventListener("mousemove", (e) => this.onMove(e, local(e)));
    window.addEventListener("mouseup", (e) => this.onUp(e, local(e)));
    c.addEventListener("dblclick", (e) => { e.preventDefault(); if (this.drawing && this.drawing.tool === "polygon") this.finishPolygon(); });
    c.addEventListener("contextmenu", (e) => {
      e.preventDefault();
      if (this.drawing) return;
      const [sx, sy] = local(e);
      const index = this.hit(sx, sy);
      if (index >= 0) {
        this.select(index);
        this.dispatchEvent(new CustomEvent("context", { detail: { index, x: e.clientX, y: e.clientY } }));
      }
    });
    // X + drag moves or resizes; Space + drag pans (keys tracked while the canvas page is open).
    window.addEventListener("keydown", (e) => { if (!e.repeat) this.keysDown.add(e.key.toLowerCase()); });
    window.addEventListener("keyup", (e) => this.keysDown.delete(e.key.toLowerCase()));
    window.addEventListener("blur", () => this.keysDown.clear());
  }

  onDown(e, [sx, sy]) {
    // Focus by hand and stop the default: a label picker opened by this click keeps the focus.
    e.preventDefault();
    this.canvas.focus({ preventScroll: true });
    this.pointer = this.toImage(sx, sy);
    if (e.button === 1 || (e.button === 0 && this.keysDown.has(" "))) {
      e.preventDefault();
      this.drag = { kind: "pan", sx, sy };
      return;
    }
    if (e.button !== 0 || !this.source) return;
    if (this.keysDown.has("x") && !this.readOnly) {
      const handle = this.hitHandle(sx, sy);
      const index = handle !== null ? this.selected : this.hit(sx, sy);
      if (index < 0) return;
      if (index !== this.selected) this.select(index);
      this.drag = { kind: handle !== null ? "handle" : "move", handle, index, start: this.pointer,
        before: clone(this.annotations[index]), moved: false };
      return;
    }
    if (this.readOnly) { this.select(this.hit(sx, sy)); return; }
    this.clickTool(this.clampPoint(this.pointer));
  }

  clickTool(p) {
    const tool = this.tool;
    if (!this.drawing) {
      if (tool === "point") { this.finish({ shape: "point", geometry: { x: p[0], y: p[1] } }); return; }
      this.drawing = { tool, points: [p] };
      this.invalidate();
      return;
    }
    if (tool === "polygon") {
      const [fx, fy] = this.drawing.points[0];
      const near = Math.hypot((fx - p[0]) * this.scale, (fy - p[1]) * this.scale) <= CLOSE_DISTANCE;
      if (near && this.drawing.points.length >= 3) { this.finishPolygon(); return; }
      this.drawing.points.push(p);
      this.invalidate();
      return;
    }
    const shape = this.preview();
    this.drawing = null;
    this.finish(shape);
  }

  finishPolygon() {
    const d = this.drawing;
    if (!d || d.points.length < 3) return;
    this.drawing = null;
    this.finish({ shape: "polygon", geometry: { points: d.points } });
  }

  cancelDrawing() {
    if (!this.drawing) return false;
    this.drawing = null;
    this.invalidate();
    return true;
  }

  // A finished shape goes to the editor, which asks for its label.
  finish(shape) {
    const round = (v) => Math.round(v * 100) / 100;
    const g = shape.geometry;
    for (const k of Object.keys(g)) {
      if (k === "points") g.points = g.points.map(([x, y]) => [round(x), round(y)]);
      else g[k] = round(g[k]);
    }
    if (this.tool === "dashed_line" && shape.shape === "line") shape.style = "dashed";
    this.invalidate();
    this.dispatchEvent(new CustomEvent("shape", { detail: shape }));
  }

  onMove(e, [sx, sy]) {
    if (e.target !== this.canvas && !this.drag && !this.drawing) return;
    this.pointer = this.toImage(sx, sy);
    const d = this.drag;
    if (d && d.kind === "pan") { this.pan(sx - d.sx, sy - d.sy); d.sx = sx; d.sy = sy; return; }
    if (d) {
      const [x, y] = this.pointer;
      const dx = x - d.start[0]; const dy = y - d.start[1];
      d.moved = d.moved || Math.abs(dx) + Math.abs(dy) > 0;
      this.annotations[d.index] = this.dragged(d, dx, dy, this.clampPoint([x, y]));
      this.invalidate();
      return;
    }
    if (this.drawing) this.invalidate();
    const over = !this.readOnly && this.keysDown.has("x") && (this.hitHandle(sx, sy) !== null || this.hit(sx, sy) >= 0);
    this.canvas.style.cursor = this.keysDown.has(" ") ? "grab" : over ? "move" : "crosshair";
  }

  // The shape `d.before` moved by (dx, dy), or with handle `d.handle` at point p; always inside the image.
  dragged(d, dx, dy, p) {
    const a = clone(d.before); const g = a.geometry;
    if (d.kind === "move") {
      const [x0, y0, x1, y1] = bounds(d.before);
      dx = Math.min(Math.max(dx, -x0), this.width - x1); dy = Math.min(Math.max(dy, -y0), this.height - y1);
      if (a.shape === "bndbox") { g.xmin += dx; g.xmax += dx; g.ymin += dy; g.ymax += dy; }
      else if (a.shape === "circle") { g.cx += dx; g.cy += dy; }
      else if (a.shape === "point") { g.x += dx; g.y += dy; }
      else g.points = g.points.map(([x, y]) => [x + dx, y + dy]);
      return a;
    }
    const h = d.handle;
    if (a.shape === "bndbox") {
      if (h.includes("w")) g.xmin = p[0];
      if (h.includes("e")) g.xmax = p[0];
      if (h.includes("n")) g.ymin = p[1];
      if (h.includes("s")) g.ymax = p[1];
      [g.xmin, g.xmax] = [Math.min(g.xmin, g.xmax), Math.max(g.xmin, g.xmax)];
      [g.ymin, g.ymax] = [Math.min(g.ymin, g.ymax), Math.max(g.ymin, g.ymax)];
    } else if (a.shape === "circle") {
      g.r = Math.min(Math.hypot(p[0] - g.cx, p[1] - g.cy), g.cx, g.cy, this.width - g.cx, this.height - g.cy);
    } else if (typeof h === "number") {
      g.points[h] = p;
    }
    return a;
  }

  onUp(e) {
    const d = this.drag;
    this.drag = null;
    if (!d || d.kind === "pan") return;
    if (!d.moved) return;
    const after = this.annotations[d.index];
    this.annotations[d.index] = d.before; // the editor commits the change as one undoable step
    this.lastDrag = { index: d.index, before: d.before };
    this.dispatchEvent(new CustomEvent("edit", { detail: { index: d.index, shape: after } }));
  }
}
