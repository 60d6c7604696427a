// Quick review (spec §5.7, item 32): a staging layer over one page of labeled images. Every edit
// (moving or resizing a shape, deleting or relabeling the annotations of the selected images) changes only
// this page's copy, with undo/redo and "Restore page"; cards show Modified/Deleted badges.
// "Apply all" sends every changed image in one atomic batch save (PUT /annotations/, each with
// the version it was read at, so a concurrent change is a 409 and nothing is written);
// "Discard" leaves without writing anything.
const node = document.getElementById("review-config");
if (node) {
  const config = JSON.parse(node.textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const grid = document.querySelector("[data-part=grid]");
  const errorBox = document.querySelector("[data-part=error]");
  const statusBox = document.querySelector("[data-part=status]");
  const colors = Object.fromEntries(config.labels.map((l) => [l.name, l.color || "#e6194b"]));
  const items = config.items;
  // The annotations this page is about (of the filtered label, or all when unfiltered) are fixed
  // when the page opens, so a relabeled shape stays in focus and can be relabeled again.
  items.forEach((i) => i.annotations.forEach((a) => { a.target = !config.label || a.label === config.label; }));
  const original = JSON.stringify(Object.fromEntries(items.map((i) => [i.id, i.annotations])));
  let current = JSON.parse(original);
  let deleted = new Set();
  const selected = new Set();
  const undoStack = [];
  const redoStack = [];
  let leaving = false;
  // The shape last pressed shows resize handles: {item: sample id, index: annotation index}.
  let focus = null;

  // A target annotation is one the page is about: of the filtered label, or any when unfiltered.
  const isTarget = (a) => a.target;
  const snapshot = () => JSON.stringify({ current, deleted: [...deleted] });
  const restore = (snap) => { const s = JSON.parse(snap); current = s.current; deleted = new Set(s.deleted); };
  const originalOf = JSON.parse(original);
  const changed = (id) => JSON.stringify(current[id]) !== JSON.stringify(originalOf[id]);
  const dirty = () => items.some((i) => changed(i.id));

  function record() { undoStack.push(snapshot()); redoStack.length = 0; }

  function shapeNode(a, item) {
    const g = a.geometry;
    let el;
    if (a.shape === "bndbox") {
      el = document.createElementNS(SVG, "rect");
      el.setAttribute("x", g.xmin); el.setAttribute("y", g.ymin);
      el.setAttribute("width", g.xmax - g.xmin); el.setAttribute("height", g.ymax - g.ymin);
    } else if (a.shape === "polygon" || a.shape === "line") {
      el = document.createElementNS(SVG, a.shape === "polygon" ? "polygon" : "polyline");
      el.setAttribute("points", g.points.map((p) => p.join(",")).join(" "));
      if (a.style === "dashed") el.setAttribute("stroke-dasharray", "8 5");
    } else if (a.shape === "circle" || a.shape === "point") {
      el = document.createElementNS(SVG, "circle");
      el.setAttribute("cx", a.shape === "circle" ? g.cx : g.x); el.setAttribute("cy", a.shape === "circle" ? g.cy : g.y);
      el.setAttribute("r", a.shape === "circle" ? g.r : Math.max(item.width, item.height) / 120);
    } else {
      return null;
    }
    const color = colors[a.label] || "#e6194b";
    el.setAttribute("stroke", color);
    el.setAttribute("fill", a.shape === "line" ? "none" : color);
    el.setAttribute("fill-opacity", a.shape === "point" ? "1" : "0.15");
    el.setAttribute("vector-effect", "non-scaling-stroke");
    el.setAttribute("stroke-width", isTarget(a) ? "2.5" : "1");
    el.classList.add("lb-review-shape");
    if (!isTarget(a)) el.classList.add("other");
    return el;
  }

  function card(item) {
    const box = document.createElement("div");
    box.className = "lb-review-card";
    box.dataset.sample = item.id;
    box.dataset.testid = "review-item";
    const head = document.createElement("div");
    head.className = "lb-review-head";
    const check = document.createElement("input");
    check.type = "checkbox"; check.dataset.select = item.id; check.setAttribute("aria-label", `Select ${item.file_name}`);
    const name = document.createElement("span");
    name.className = "lb-review-name"; name.textContent = item.file_name; name.title = item.file_name;
    const badge = document.createElement("span");
    badge.className = "badge"; badge.dataset.part = "badge";
    head.append(check, name, badge);
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", `0 0 ${item.width} ${item.height}`);
    svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
    svg.classList.add("lb-review-canvas");
    const image = document.createElementNS(SVG, "image");
    image.setAttribute("href", item.preview_url);
    image.setAttribute("width", item.width); image.setAttribute("height", item.height);
    svg.append(image);
    const layer = document.createElementNS(SVG, "g");
    svg.append(layer);
    const labelsLine = document.createElement("div");
    labelsLine.className = "lb-tags";
    box.append(head, svg, labelsLine);
    return box;
  }

  function draw(item) {
    const box = grid.querySelector(`[data-sample="${item.id}"]`);
    const layer = box.querySelector("svg g");
    layer.replaceChildren();
    current[item.id].forEach((a, index) => {
      const el = shapeNode(a, item);
      if (!el) return;
      el.dataset.index = index;
      layer.append(el);
    });
    if (focus && focus.item === item.id && current[item.id][focus.index]) {
      layer.querySelector(`[data-index="${focus.index}"]`)?.classList.add("focused");
      layer.append(...handlesOf(current[item.id][focus.index], item));
    }
    const isChanged = changed(item.id);
    const badge = box.querySelector("[data-part=badge]");
    const kind = !isChanged ? "" : deleted.has(item.id) ? "Deleted" : "Modified";
    badge.textContent = kind;
    badge.className = `badge ${kind === "Deleted" ? "badge-danger" : kind ? "badge-warning" : ""}`;
    badge.hidden = !kind;
    box.classList.toggle("changed", isChanged);
    box.classList.toggle("selected", selected.has(item.id));
    box.querySelector("[data-select]").checked = selected.has(item.id);
    const names = [...new Set(current[item.id].map((a) => a.label).filter(Boolean))];
    const tags = box.querySelector(".lb-tags");
    tags.replaceChildren(...names.map((n) => { const s = document.createElement("span"); s.className = "badge badge-neutral"; s.textContent = n; return s; }));
    // Item 19: who (or which model) made the annotations under review.
    const makers = [...new Set(current[item.id].map((a) => a.annotated_by).filter(Boolean))];
    if (makers.length) {
      const by = document.createElement("span");
      by.className = "muted small"; by.dataset.part = "annotated-by";
      by.textContent = `by ${makers.join(", ")}`;
      tags.append(by);
    }
  }

  function refresh() {
    items.forEach(draw);
    const count = document.querySelector("[data-part=count]");
    if (count) count.textContent = `${selected.size} selected`;
    const all = document.querySelector("[data-act=select-page]");
    if (all) all.checked = selected.size > 0 && selected.size === items.length;
    const none = !selected.size || !config.can_annotate;
    document.querySelector("[data-act=delete]").disabled = none;
    document.querySelector("[data-part=relabel] button").disabled = none;
    document.querySelector("[data-act=undo]").disabled = !undoStack.length;
    document.querySelector("[data-act=redo]").disabled = !redoStack.length;
    const n = items.filter((i) => changed(i.id)).length;
    statusBox.textContent = n ? `${n} image(s) changed, not applied` : "No changes";
    statusBox.dataset.changed = n;
  }

  function deleteSelected() {
    if (!selected.size || !config.can_annotate) return;
    record();
    selected.forEach((id) => { current[id] = current[id].filter((a) => !isTarget(a)); deleted.add(id); });
    refresh();
  }

  function relabelSelected(name) {
    if (!selected.size || !name || !config.can_annotate) return;
    record();
    selected.forEach((id) => {
      current[id] = current[id].map((a) => (isTarget(a) && a.label !== name
        ? { ...a, label: name, label_id: null, attributes: {} } : a));
    });
    refresh();
  }

  // Resize handles of the focused shape: a box's corners and edge midpoints, a circle's rim,
  // each vertex of a polygon or line. They are drawn in image pixels, sized to stay grabbable
  // on the small cards (about 7 screen pixels on a 240-pixel card of a 640-pixel image).
  const CURSORS = { nw: "nwse-resize", se: "nwse-resize", ne: "nesw-resize", sw: "nesw-resize",
                    n: "ns-resize", s: "ns-resize", e: "ew-resize", w: "ew-resize", r: "ew-resize" };
  function handlesOf(a, item) {
    const g = a.geometry;
    let spots = [];
    if (a.shape === "bndbox") {
      const mx = (g.xmin + g.xmax) / 2; const my = (g.ymin + g.ymax) / 2;
      spots = [["nw", g.xmin, g.ymin], ["n", mx, g.ymin], ["ne", g.xmax, g.ymin], ["e", g.xmax, my],
               ["se", g.xmax, g.ymax], ["s", mx, g.ymax], ["sw", g.xmin, g.ymax], ["w", g.xmin, my]];
    } else if (a.shape === "circle") {
      spots = [["r", g.cx + g.r, g.cy]];
    } else if (a.shape === "polygon" || a.shape === "line") {
      spots = g.points.map((p, i) => [`v${i}`, p[0], p[1]]);
    }
    const size = Math.max(item.width, item.height) / 45;
    return spots.map(([key, x, y]) => {
      const el = document.createElementNS(SVG, "rect");
      el.setAttribute("x", x - size / 2); el.setAttribute("y", y - size / 2);
      el.setAttribute("width", size); el.setAttribute("height", size);
      el.classList.add("lb-review-handle");
      el.dataset.handle = key;
      el.style.cursor = CURSORS[key] || "move";
      return el;
    });
  }
  // The shape with one handle dragged by (dx, dy) image pixels, clamped to the image. The delta,
  // not the pointer position, moves the edge, so grabbing a handle off-centre does not jump it.
  // A box or circle never turns inside out or shrinks below one pixel.
  function resized(a, handle, dx, dy, item) {
    const g = JSON.parse(JSON.stringify(a.geometry));
    const cx = (v) => Math.min(Math.max(v, 0), item.width); const cy = (v) => Math.min(Math.max(v, 0), item.height);
    if (a.shape === "bndbox") {
      if (handle.includes("w")) g.xmin = Math.min(cx(g.xmin + dx), g.xmax - 1);
      if (handle.includes("e")) g.xmax = Math.max(cx(g.xmax + dx), g.xmin + 1);
      if (handle.includes("n")) g.ymin = Math.min(cy(g.ymin + dy), g.ymax - 1);
      if (handle.includes("s")) g.ymax = Math.max(cy(g.ymax + dy), g.ymin + 1);
    } else if (a.shape === "circle") {
      const room = Math.min(g.cx, g.cy, item.width - g.cx, item.height - g.cy);
      g.r = Math.max(1, Math.min(Math.hypot(g.r + dx, dy), room));
    } else if (g.points && handle.startsWith("v")) {
      const [x, y] = g.points[Number(handle.slice(1))];
      g.points[Number(handle.slice(1))] = [cx(x + dx), cy(y + dy)];
    }
    return { ...a, geometry: rounded(g) };
  }
  function rounded(g) {
    const round = (v) => Math.round(v * 100) / 100;
    ["xmin", "ymin", "xmax", "ymax", "cx", "cy", "r", "x", "y"].forEach((k) => { if (k in g) g[k] = round(g[k]); });
    if (g.points) g.points = g.points.map(([x, y]) => [round(x), round(y)]);
    return g;
  }

  // Moving a shape: pointer deltas are converted into image pixels and the shape is kept inside.
  let drag = null;
  function toImage(svg, event) {
    const point = svg.createSVGPoint();
    point.x = event.clientX; point.y = event.clientY;
    return point.matrixTransform(svg.getScreenCTM().inverse());
  }
  function moved(a, dx, dy, item) {
    const g = JSON.parse(JSON.stringify(a.geometry));
    const clampShift = (lo, hi, max, d) => Math.min(Math.max(d, -lo), max - hi);
    if (a.shape === "bndbox") {
      const sx = clampShift(g.xmin, g.xmax, item.width, dx); const sy = clampShift(g.ymin, g.ymax, item.height, dy);
      g.xmin += sx; g.xmax += sx; g.ymin += sy; g.ymax += sy;
    } else if (a.shape === "polygon" || a.shape === "line") {
      const xs = g.points.map((p) => p[0]); const ys = g.points.map((p) => p[1]);
      const sx = clampShift(Math.min(...xs), Math.max(...xs), item.width, dx);
      const sy = clampShift(Math.min(...ys), Math.max(...ys), item.height, dy);
      g.points = g.points.map(([x, y]) => [x + sx, y + sy]);
    } else if (a.shape === "circle") {
      g.cx += clampShift(g.cx - g.r, g.cx + g.r, item.width, dx); g.cy += clampShift(g.cy - g.r, g.cy + g.r, item.height, dy);
    } else if (a.shape === "point") {
      g.x = Math.min(Math.max(g.x + dx, 0), item.width); g.y = Math.min(Math.max(g.y + dy, 0), item.height);
    }
    return { ...a, geometry: rounded(g) };
  }
  grid?.addEventListener("pointerdown", (event) => {
    const handle = event.target.closest(".lb-review-handle");
    const shape = handle ? null : event.target.closest(".lb-review-shape");
    if ((!shape && !handle) || !config.can_annotate) return;
    const box = event.target.closest("[data-sample]");
    const item = items.find((i) => i.id === box.dataset.sample);
    const index = handle ? focus.index : Number(shape.dataset.index);
    const svg = box.querySelector("svg");
    const start = toImage(svg, event);
    const previous = focus && items.find((i) => i.id === focus.item);
    focus = { item: item.id, index };
    if (previous && previous !== item) draw(previous);
    drag = { item, index, start, svg, before: snapshot(), base: current[item.id][index], moved: false,
             handle: handle ? handle.dataset.handle : null };
    svg.setPointerCapture(event.pointerId);
    draw(item);
    event.preventDefault();
  });
  grid?.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const at = toImage(drag.svg, event);
    const dx = at.x - drag.start.x; const dy = at.y - drag.start.y;
    if (!drag.moved && Math.hypot(dx, dy) < 1) return;
    drag.moved = true;
    current[drag.item.id][drag.index] = drag.handle
      ? resized(drag.base, drag.handle, dx, dy, drag.item) : moved(drag.base, dx, dy, drag.item);
    draw(drag.item);
  });
  grid?.addEventListener("pointerup", () => {
    if (!drag) return;
    if (drag.moved) { undoStack.push(drag.before); redoStack.length = 0; }
    drag = null;
    refresh();
  });

  document.addEventListener("change", (event) => {
    if (event.target.matches("[data-act=select-page]")) {
      items.forEach((i) => (event.target.checked ? selected.add(i.id) : selected.delete(i.id)));
    } else if (event.target.matches("[data-select]")) {
      if (event.target.checked) selected.add(event.target.dataset.select); else selected.delete(event.target.dataset.select);
    } else {
      return;
    }
    refresh();
  });

  async function apply() {
    const changes = items.filter((i) => changed(i.id));
    if (!changes.length) { statusBox.textContent = "Nothing to apply"; return; }
    if (!window.confirm(`Overwrite the saved annotations of ${changes.length} image(s)?`)) return;
    errorBox.textContent = "";
    const body = { items: changes.map((i) => ({ sample: i.id, version: i.version, annotations: current[i.id].map((a) => {
      const out = { label: a.label, shape: a.shape, geometry: a.geometry, attributes: a.attributes || {} };
      if (typeof a.id === "number") out.id = a.id;
      if (a.style) out.style = a.style;
      return out;
    }) })) };
    statusBox.textContent = "Applying…";
    const response = await fetch(`${config.api}annotations/`, { method: "PUT", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": config.csrf }, body: JSON.stringify(body) });
    const data = await response.json().catch(() => null);
    if (response.ok) { leaving = true; window.location.href = config.detail_url; return; }
    if (response.status === 409) {
      const who = data && data.current && data.current.last_change ? data.current.last_change.by : "someone";
      errorBox.textContent = `Nothing was applied: ${who} changed one of these images meanwhile. Reload the page to review the latest annotations.`;
    } else {
      const fields = (data && data.error && data.error.fields) || {};
      const first = Object.entries(fields)[0];
      errorBox.textContent = `Nothing was applied: ${first ? `${first[0]}: ${first[1][0]}` : (data && data.error ? data.error.message : "the server refused the change.")}`;
    }
    refresh();
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-act]");
    if (!button || button.matches("input")) return;
    const act = button.dataset.act;
    if (act === "undo" && undoStack.length) { redoStack.push(snapshot()); restore(undoStack.pop()); refresh(); }
    if (act === "redo" && redoStack.length) { undoStack.push(snapshot()); restore(redoStack.pop()); refresh(); }
    if (act === "restore" && dirty()) { record(); current = JSON.parse(original); deleted = new Set(); refresh(); }
    if (act === "delete") deleteSelected();
    if (act === "apply") apply();
    if (act === "discard") { leaving = true; window.location.href = config.detail_url; }
  });
  document.querySelector("[data-part=relabel]")?.addEventListener("submit", (event) => {
    event.preventDefault();
    relabelSelected(event.target.elements.label.value);
  });
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input[type=text], textarea, select")) return;
    const key = event.key.toLowerCase();
    if ((event.ctrlKey || event.metaKey) && key === "z") {
      event.preventDefault();
      document.querySelector(`[data-act=${event.shiftKey ? "redo" : "undo"}]`).click();
    } else if (event.key === "Delete") {
      event.preventDefault();
      deleteSelected();
    } else if (event.key === "Escape") {
      selected.clear();
      focus = null;
      refresh();
    }
  });
  window.addEventListener("beforeunload", (event) => {
    if (!leaving && dirty()) { event.preventDefault(); event.returnValue = ""; }
  });

  if (grid) {
    grid.append(...items.map(card));
    refresh();
    grid.dataset.ready = "true";
  }
}
