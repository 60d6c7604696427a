// Text editors: classification (label toggles), named entities (select a span, pick a label)
// and triplets (entities, then click a start and an end entity to add a typed relation).
// Offsets are characters of the sample text: start inclusive, end exclusive (spec §8).
import { NetworkError, errorText } from "./api.js";
import { el, fill, pickLabel, swatch } from "./ui.js";

// Character offset of (node, offset) inside `root`, counting only the sample's text nodes.
function offsetIn(root, node, offset) {
  let total = 0;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
    acceptNode: (n) => (n.parentElement.closest(".wb-span-tag") ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT),
  });
  while (walker.nextNode()) {
    if (walker.currentNode === node) return total + offset;
    total += walker.currentNode.textContent.length;
  }
  return total;
}

export class Editor {
  constructor(shell) {
    this.shell = shell;
    this.type = shell.job.type;
    this.triplet = this.type === "text_triplet";
    this.classification = this.type === "text_classification";
    this.start = null; // triplet: the entity clicked first
    // Text classification keeps one session per object of the page and saves them together
    // with "Save current page" (spec §7: saving is per page, one batch commit).
    this.page = new Map();
    this.listLoaded = false;
    shell.parts.stage.classList.add("wb-text-stage");
    this.list = el("nav", { class: "wb-objects", "aria-label": "Labeling objects" });
    this.doc = el("div", { class: "wb-doc" });
    fill(shell.parts.stage, this.list, this.doc);
    this.doc.addEventListener("mouseup", (e) => this.onSelect(e));
  }

  sessions() {
    if (this.classification) return [...this.page.values()].map((entry) => entry.session);
    return this.session ? [this.session] : [];
  }

  async load(sample) {
    this.sample = sample;
    this.start = null;
    const kept = this.classification ? this.page.get(sample.id) : null;
    if (kept) {
      this.session = kept.session;
    } else {
      const session = this.shell.makeSession({ key: sample.id, version: sample.version, annotations: sample.annotations,
        saver: this.shell.saverFor(sample.id), manual: this.classification });
      this.session = session;
      session.addEventListener("change", () => { if (this.session === session) this.render(); this.markList(); });
      session.addEventListener("saved", () => { if (this.session === session) this.render(); this.markList(); });
      if (this.classification) this.page.set(sample.id, { sample, session });
    }
    if (!this.classification || !this.listLoaded) await this.loadList();
    this.render();
    this.markList();
  }

  // "Save current page": every changed object of the page in one atomic batch request.
  async flushPage() {
    const dirty = [...this.page.entries()].filter(([, entry]) => entry.session.dirty && entry.session.state !== "conflict");
    if ([...this.page.values()].some((entry) => entry.session.state === "conflict")) return false;
    if (!dirty.length) return true;
    const sent = dirty.map(([id, entry]) => ({ id, session: entry.session, revision: entry.session.revision }));
    sent.forEach((item) => item.session.setState("saving"));
    let result;
    try {
      result = await this.shell.api.saveMany(sent.map((item) => ({ sample: item.id, version: item.session.version,
        annotations: item.session.annotations })));
    } catch (err) {
      if (!(err instanceof NetworkError)) throw err;
      sent.forEach((item) => item.session.setState("offline", "Offline: this page's edits are kept on this device; save again when the connection returns."));
      return false;
    }
    if (result.status === 200) {
      const versions = Object.fromEntries(result.body.items.map((r) => [r.sample, r.version]));
      sent.forEach((item) => item.session.markSaved(item.revision, versions[item.id]));
      this.markList();
      return true;
    }
    if (result.status === 409) {
      const current = result.body.current;
      const hit = sent.find((item) => current && item.id === current.id) || sent[0];
      sent.filter((item) => item !== hit).forEach((item) => item.session.setState("dirty"));
      hit.session.setState("conflict", errorText(result.body));
      hit.session.dispatchEvent(new CustomEvent("conflict", { detail: { current, mine: hit.session.annotations,
        message: errorText(result.body) } }));
      return false;
    }
    sent.forEach((item) => item.session.setState("dirty"));
    const message = errorText(result.body);
    sent[0].session.setState("error", message);
    sent[0].session.dispatchEvent(new CustomEvent("refused", { detail: { message, body: result.body } }));
    return false;
  }

  // Mark the objects of the list that carry unsaved edits, and show saved ones' new status.
  markList() {
    this.list.querySelectorAll(".wb-object").forEach((button) => {
      const id = button.dataset.sample;
      const session = this.page.get(id)?.session || (id === this.sample?.id ? this.session : null);
      button.classList.toggle("unsaved", Boolean(session && session.dirty));
      const small = button.querySelector("small");
      if (session && !session.dirty && small) small.textContent = session.annotations.length ? "Labeled" : "Unlabeled";
    });
  }

  // The left "labeling objects" list: this tab's page of text samples.
  async loadList() {
    const status = this.shell.config.status;
    const result = await this.shell.api.samples({ status, page_size: 50 });
    const items = result.status === 200 ? result.body.results : [];
    if (!items.some((s) => s.id === this.sample.id)) items.unshift(this.sample);
    this.listLoaded = true;
    fill(this.list, ...items.map((s) => el("button", { type: "button", class: `wb-object${s.id === this.sample.id ? " active" : ""}`,
      "data-testid": "text-object", "data-sample": s.id, onclick: () => this.open(s.id) }, s.text.slice(0, 90) + (s.text.length > 90 ? "…" : ""),
    el("small", {}, s.status === "labeled" ? "Labeled" : "Unlabeled"))));
  }

  async open(id) {
    if (id === this.sample.id) return;
    if (this.classification) {
      // Objects of one page switch without saving; "Save current page" commits them together.
      const kept = this.page.get(id);
      if (kept) { this.shell.visited.push(this.sample.id); await this.shell.show(kept.sample); return; }
    } else if (!(await this.shell.flushAll())) {
      return;
    }
    const result = await this.shell.api.sample(id);
    if (result.status === 200) { this.shell.visited.push(this.sample.id); await this.shell.show(result.body); }
  }

  refresh() { this.render(); }
  labelsChanged() { this.render(); }

  remoteSaved(msg) {
    if (!this.session.dirty && msg.version > this.session.version) {
      this.shell.api.sample(this.sample.id).then((r) => { if (r.status === 200 && !this.session.dirty) this.session.takeTheirs(r.body.version, r.body.annotations); });
    }
  }

  entities() { return this.session.annotations.filter((a) => a.shape === "span"); }

  nextRef(prefix) {
    const used = this.session.annotations.map((a) => a.ref_id).filter((r) => r && r.startsWith(prefix)).map((r) => Number(r.slice(1)));
    return `${prefix}${(used.length ? Math.max(...used) : 0) + 1}`;
  }

  async onSelect(e) {
    if (this.classification || this.shell.readOnly) return;
    const text = this.doc.querySelector(".wb-text");
    const selection = window.getSelection();
    if (!text || !selection.rangeCount || selection.isCollapsed) return;
    const range = selection.getRangeAt(0);
    if (!text.contains(range.startContainer) || !text.contains(range.endContainer)) return;
    let start = offsetIn(text, range.startContainer, range.startOffset);
    let end = offsetIn(text, range.endContainer, range.endOffset);
    if (start > end) [start, end] = [end, start];
    const raw = this.sample.text;
    while (start < end && /\s/.test(raw[start])) start += 1; // selections often grab a space
    while (end > start && /\s/.test(raw[end - 1])) end -= 1;
    if (end <= start) return;
    const labels = this.shell.labels.filter((l) => l.kind !== "relation");
    const label = await pickLabel({ x: e.clientX + 8, y: e.clientY + 12, labels, title: `Label "${raw.slice(start, end).slice(0, 40)}"`,
      create: this.triplet ? null : (name, color) => this.shell.createLabel(name, color) });
    selection.removeAllRanges();
    if (!label) return;
    const span = { label, shape: "span", geometry: { start, end } };
    if (this.triplet) span.ref_id = this.nextRef("E");
    this.session.commit([...this.session.annotations, span]);
  }

  remove(annotation) {
    let next = this.session.annotations.filter((a) => a !== annotation);
    if (annotation.shape === "span" && annotation.ref_id) {
      next = next.filter((a) => !(a.shape === "relation" && (a.geometry.from === annotation.ref_id || a.geometry.to === annotation.ref_id)));
    }
    this.session.commit(next);
  }

  // Triplets: first click picks the start entity, second the end; then a typed relation menu.
  async clickEntity(entity, e) {
    if (!this.triplet || this.shell.readOnly) return;
    if (!this.start) { this.start = entity; this.render(); return; }
    const from = this.start;
    this.start = null;
    this.render();
    if (from === entity) return;
    const byName = Object.fromEntries(this.shell.labels.map((l) => [l.name, l]));
    const relations = this.shell.labels.filter((l) => l.kind === "relation");
    if (!relations.length) return;
    const label = await pickLabel({ x: e.clientX + 8, y: e.clientY + 12, labels: relations, title: `${from.ref_id} → ${entity.ref_id}`,
      disabled: (l) => (l.from_label === byName[from.label]?.id && l.to_label === byName[entity.label]?.id ? ""
        : `Goes from ${this.shell.labels.find((x) => x.id === l.from_label)?.name} to ${this.shell.labels.find((x) => x.id === l.to_label)?.name}`) });
    if (!label) return;
    this.session.commit([...this.session.annotations, { label, shape: "relation", ref_id: this.nextRef("R"),
      geometry: { from: from.ref_id, to: entity.ref_id } }]);
  }

  render() {
    const raw = this.sample.text;
    const anns = this.session.annotations;
    const side = this.shell.parts.side;
    this.list.querySelectorAll(".wb-object").forEach((b) => b.classList.toggle("active", b.dataset.sample === this.sample.id));
    if (this.classification) {
      const chosen = new Set(anns.map((a) => a.label));
      fill(this.doc, el("div", { class: "wb-text", "data-testid": "sample-text" }, raw),
        el("div", { class: "wb-chips" }, anns.map((a) => el("span", { class: "wb-chip" }, swatch(this.shell.labelColor(a.label)), a.label,
          el("button", { type: "button", "aria-label": `Remove ${a.label}`, onclick: () => this.session.commit(anns.filter((x) => x !== a)) }, "✕")))));
      fill(side, el("section", { class: "wb-panel wb-panel-grow" }, el("h3", {}, "Label set"),
        el("p", { class: "wb-hint" }, "Number keys or clicks toggle labels; a text may carry several."),
        el("ul", { class: "wb-class-list" }, this.shell.labels.map((l, i) => el("li", {}, el("button", { type: "button",
          class: `wb-class${chosen.has(l.name) ? " on" : ""}`, "aria-pressed": String(chosen.has(l.name)), onclick: () => this.toggle(l.name) },
        i < 9 ? el("kbd", {}, String(i + 1)) : el("span", { class: "wb-kbd-gap" }), swatch(l.color), el("span", {}, l.name),
        chosen.has(l.name) ? el("span", { class: "wb-check" }, "✓") : null))))),
      this.saveBar());
      return;
    }
    // Spans may overlap: cut the text at every boundary and colour each piece by its innermost span.
    const spans = anns.filter((a) => a.shape === "span");
    const cuts = [...new Set([0, raw.length, ...spans.flatMap((s) => [s.geometry.start, s.geometry.end])])].sort((a, b) => a - b);
    const pieces = [];
    for (let i = 0; i < cuts.length - 1; i += 1) {
      const [a, b] = [cuts[i], cuts[i + 1]];
      const covering = spans.filter((s) => s.geometry.start <= a && s.geometry.end >= b);
      const text = raw.slice(a, b);
      if (!covering.length) { pieces.push(text); continue; }
      const top = covering.reduce((x, y) => (y.geometry.end - y.geometry.start < x.geometry.end - x.geometry.start ? y : x));
      const color = this.shell.labelColor(top.label);
      pieces.push(el("span", { class: "wb-span", style: `background:${color}33;box-shadow:inset 0 -2px 0 ${color}`, title: top.label,
        oncontextmenu: (e) => { e.preventDefault(); this.remove(top); } }, text));
      const ending = spans.filter((s) => s.geometry.end === b);
      ending.forEach((s) => pieces.push(el("span", { class: `wb-span-tag${this.start === s ? " start" : ""}`, style: `background:${this.shell.labelColor(s.label)}`,
        "data-testid": "entity-tag", "data-ref": s.ref_id || "", title: this.triplet ? "Click: start or end of a relation · right-click: delete" : "Right-click to delete",
        onclick: (e) => this.clickEntity(s, e), oncontextmenu: (e) => { e.preventDefault(); this.remove(s); } },
      this.triplet ? `${s.ref_id} ${s.label}` : s.label)));
    }
    const relations = anns.filter((a) => a.shape === "relation");
    const name = (ref) => { const s = spans.find((x) => x.ref_id === ref); return s ? `${ref} “${raw.slice(s.geometry.start, s.geometry.end)}”` : ref; };
    fill(this.doc, 
      el("div", { class: "wb-text", "data-testid": "sample-text" }, pieces),
      this.triplet && this.start ? el("p", { class: "wb-hint" }, `Start entity ${this.start.ref_id} chosen: click the end entity.`) : null,
      el("div", { class: "wb-chips", "data-testid": "entity-list" }, spans.map((s) => el("span", { class: "wb-chip" }, swatch(this.shell.labelColor(s.label)),
        `${s.ref_id ? `${s.ref_id} ` : ""}${s.label}: ${raw.slice(s.geometry.start, s.geometry.end)} [${s.geometry.start}–${s.geometry.end})`,
        this.shell.readOnly ? null : el("button", { type: "button", "aria-label": "Remove entity", onclick: () => this.remove(s) }, "✕")))),
      this.triplet ? el("div", { class: "wb-relations", "data-testid": "relation-list" }, el("h3", {}, "Relations"),
        relations.length ? relations.map((r) => el("div", { class: "wb-relation", oncontextmenu: (e) => { e.preventDefault(); this.remove(r); } },
          el("span", {}, name(r.geometry.from)), el("span", { class: "wb-arrow" }, `—${r.label}→`), el("span", {}, name(r.geometry.to)),
          this.shell.readOnly ? null : el("button", { type: "button", class: "wb-icon-btn", "aria-label": "Remove relation", onclick: () => this.remove(r) }, "✕")))
          : el("p", { class: "wb-hint" }, "Click a start entity tag, then an end entity tag, to add a relation.")) : null,
    );
    fill(side, el("section", { class: "wb-panel wb-panel-grow" }, el("h3", {}, "Label set"),
      el("p", { class: "wb-hint" }, this.triplet ? "Select text to add an entity. Labels are edited in label management." : "Select text, then pick a label (number keys work in the list)."),
      el("ul", { class: "wb-labels" }, this.shell.labels.map((l) => el("li", { "data-testid": "label-row" }, swatch(l.color),
        el("span", {}, l.name, l.kind === "relation" ? el("span", { class: "wb-hint" }, ` ${this.endpoints(l)}`) : null),
        el("span", { class: "wb-count" }, anns.filter((a) => a.label === l.name).length))))),
    this.saveBar());
  }

  // A relation label's entity types, "Person → Book": which tags it may join.
  endpoints(label) {
    const name = (id) => this.shell.labels.find((x) => x.id === id)?.name || "?";
    return `${name(label.from_label)} → ${name(label.to_label)}`;
  }

  saveBar() {
    if (this.shell.readOnly) return null;
    return el("section", { class: "wb-panel" }, el("div", { class: "wb-savebar" },
      el("button", { type: "button", class: "btn btn-primary btn-sm", "data-testid": "save-page", onclick: () => this.shell.flushAll() }, "Save current page"),
      el("button", { type: "button", class: "btn btn-sm btn-danger-outline", onclick: () => this.session.commit([]) }, "Delete current item's labels")));
  }

  toggle(name) {
    if (this.shell.readOnly) return;
    const anns = this.session.annotations;
    this.session.commit(anns.some((a) => a.label === name) ? anns.filter((a) => a.label !== name) : [...anns, { label: name }]);
  }

  shortcuts() {
    return [
      this.classification ? ["1 … 9", "Toggle the n-th label"] : ["Select text", "Label the selected span (then 1 … 9 or type a name)"],
      ...(this.triplet ? [["Click, click", "Start entity, end entity: add a relation of a matching type"], ["Right-click", "Delete an entity or relation"]] : []),
      ["Ctrl+Z / Ctrl+Shift+Z", "Undo / redo"],
    ];
  }

  handleKey(e, { typing }) {
    if (typing) return false;
    const ctrl = e.ctrlKey || e.metaKey;
    if (ctrl && e.key.toLowerCase() === "z") { e.shiftKey ? this.session.redo() : this.session.undo(); return true; }
    if (this.classification && !ctrl && /^[1-9]$/.test(e.key)) {
      const label = this.shell.labels[Number(e.key) - 1];
      if (label) this.toggle(label.name);
      return true;
    }
    if (e.key === "Escape" && this.start) { this.start = null; this.render(); return true; }
    return false;
  }
}
