// The annotation workbench: one isolated client of the labeling JSON API (STYLE rule 11).
//
// The shell owns what every labeling type shares: loading a sample, autosave sessions, the
// status line, the conflict banner, presence, the leave prompt, next/previous and the
// keyboard. An editor per kind (image canvas, text, audio, video) owns its stage and panel.
import { Api, errorText } from "./api.js";
import { Session } from "./session.js";
import { el, helpOverlay, toast } from "./ui.js";

const EDITORS = {
  image: () => import("./image.js"),
  text: () => import("./text.js"),
  audio: () => import("./audio.js"),
  video: () => import("./video.js"),
};

const STATUS_TEXT = {
  saved: "All changes saved",
  dirty: "Unsaved changes…",
  saving: "Saving…",
};

export class Shell {
  constructor(root, config) {
    this.root = root;
    this.config = config;
    this.job = config.job;
    this.api = new Api({ base: config.api, csrf: config.csrf });
    this.labels = [];
    this.sample = null;
    this.session = null;
    this.visited = [];
    this.presence = new Map();
    this.parts = Object.fromEntries([...root.querySelectorAll("[data-part]")].map((n) => [n.dataset.part, n]));
    this.readOnly = !config.can_annotate;
  }

  async start() {
    const [labels, sample] = await Promise.all([this.api.labels(), this.api.sample(this.config.sample_id)]);
    if (labels.status !== 200 || sample.status !== 200) {
      this.showBanner(errorText(sample.body, "This sample could not be loaded."), "danger");
      return;
    }
    this.labels = labels.body.labels;
    const module = await EDITORS[this.job.kind]();
    this.editor = new module.Editor(this);
    this.bindKeys();
    this.bindNav();
    window.addEventListener("beforeunload", (e) => {
      if (this.hasUnsaved()) { e.preventDefault(); e.returnValue = ""; }
    });
    await this.show(sample.body);
    this.root.dataset.ready = "true";
    // The automation hook of tests and the frame-rate benchmark.
    window.atelierWorkbench = this;
  }

  hasUnsaved() { return this.editor && this.editor.sessions().some((s) => s.dirty || s.state === "conflict"); }

  // ---- samples ----------------------------------------------------------------------------

  async show(sample) {
    this.sample = sample;
    this.parts.name.textContent = sample.file_name || (sample.text || "").slice(0, 60);
    this.parts.name.title = sample.file_name || sample.text || "";
    const url = this.config.workbench_url.replace("SAMPLE", sample.id) + `?status=${encodeURIComponent(this.config.status)}`;
    if (location.pathname + location.search !== url) history.replaceState(null, "", url);
    this.hideBanner();
    await this.editor.load(sample);
    this.connectPresence(sample.id);
    this.updateStatus();
  }

  // A session for one sample (or one video frame): autosave, local keeping, conflict events.
  makeSession({ key, version, annotations, saver, meta, manual = false }) {
    const session = new Session({ key: `atelier:labeling:${this.job.id}:${key}`, version, annotations, saver, meta, manual });
    session.addEventListener("state", () => this.updateStatus());
    session.addEventListener("conflict", (e) => this.onConflict(session, e.detail));
    session.addEventListener("refused", (e) => toast(e.detail.message, "error"));
    const pending = session.pending();
    if (pending && !this.readOnly) {
      if (pending.version === version) {
        session.restore(pending);
        toast("Restored unsaved edits kept on this device; saving them now.");
      } else {
        session.annotations = pending.annotations;
        session.revision += 1;
        session.setState("conflict");
        this.onConflict(session, { mine: pending.annotations, current: null,
          message: "Edits kept on this device started from an older version of this sample; nothing was saved." }, version);
      }
    }
    return session;
  }

  saverFor(sampleId) { return (version, annotations) => this.api.save(sampleId, version, annotations); }

  async next() {
    if (!(await this.flushAll())) return;
    const result = await this.api.next(this.sample.id, this.config.status === "all" ? "all" : this.config.status);
    if (result.status === 404) { toast("No more samples in this tab. Well done!"); return; }
    if (result.status !== 200) { toast(errorText(result.body), "error"); return; }
    this.visited.push(this.sample.id);
    await this.show(result.body);
  }

  async previous() {
    const id = this.visited.pop();
    if (!id) { toast("This is the first sample you opened here."); return; }
    if (!(await this.flushAll())) { this.visited.push(id); return; }
    const result = await this.api.sample(id);
    if (result.status === 200) await this.show(result.body);
  }

  async flushAll() {
    // Editors that save a page at once (text classification) flush through one batch request.
    const results = this.editor.flushPage ? [await this.editor.flushPage()]
      : await Promise.all(this.editor.sessions().map((s) => s.flush()));
    if (results.every(Boolean)) return true;
    const offline = this.editor.sessions().some((s) => s.state === "offline");
    toast(offline ? "You are offline: your edits are kept on this device and will be saved when the connection returns."
      : "Resolve the unsaved change first (see the message above).", "error");
    return false;
  }

  async leave() {
    if (this.hasUnsaved()) {
      if (!window.confirm("Save your changes before leaving this sample?")) return;
      if (!(await this.flushAll())) return;
    }
    location.assign(this.config.detail_url);
  }

  // ---- labels ------------------------------------------------------------------------------

  async createLabel(name, color, extra = {}) {
    if (!this.config.can_edit_labels) return { error: "Your role cannot add labels; ask the job owner." };
    const result = await this.api.createLabel({ name, color, ...extra });
    if (result.status !== 201) return { error: errorText(result.body) };
    this.labels.push(result.body);
    this.editor.labelsChanged?.();
    return { label: result.body };
  }

  labelColor(name) { return (this.labels.find((l) => l.name === name) || {}).color || "#98a2b3"; }

  // ---- status, conflicts, presence ---------------------------------------------------------

  updateStatus() {
    const sessions = this.editor ? this.editor.sessions() : [];
    const worst = ["conflict", "error", "offline", "saving", "dirty", "saved"].find((s) => sessions.some((x) => x.state === s)) || "saved";
    const session = sessions.find((x) => x.state === worst);
    const node = this.parts.status;
    node.dataset.state = worst;
    node.textContent = this.readOnly ? "Read only" : (worst === "conflict" ? "Conflict: not saved"
      : worst === "error" ? "Not saved: fix the highlighted problem"
        : worst === "offline" ? session.message : STATUS_TEXT[worst]);
  }

  onConflict(session, { current, mine, message }, versionOverride) {
    const theirs = current ? (current.annotations || []) : null;
    const who = current && current.last_change ? current.last_change.by : "";
    const summary = (list) => list.length ? `${list.length} annotation(s): ${[...new Set(list.map((a) => a.label || a.content || a.shape))].slice(0, 6).join(", ")}` : "no annotations";
    const version = current ? current.version : versionOverride;
    // Their shapes go on the canvas as a dashed overlay beside the user's own unsaved ones, so the two
    // versions are compared where they differ; the overlay is display only and leaves with the banner.
    const canvas = theirs && this.editor.canvas && this.editor.canvas.setOverlay ? this.editor.canvas : null;
    if (canvas) canvas.setOverlay(theirs);
    const drawn = canvas ? canvas.overlay.length : 0;
    const whose = who ? `${who}'s` : "their";
    const toggle = drawn ? el("button", { type: "button", class: "btn btn-sm", "data-testid": "conflict-overlay-toggle",
      "aria-pressed": "true", onclick: (e) => {
        const shown = canvas.toggleOverlay();
        e.currentTarget.setAttribute("aria-pressed", String(shown));
        e.currentTarget.textContent = shown ? `Hide ${whose} shapes` : `Show ${whose} shapes`;
      } }, `Hide ${whose} shapes`) : null;
    this.showBanner([
      el("strong", {}, "Not saved: "), message || "Someone else saved this sample after you opened it.",
      el("div", { class: "wb-conflict-detail", "data-testid": "conflict-detail" },
        theirs ? el("p", {}, `${who || "The other person"}'s version: ${summary(theirs)}.`) : null,
        el("p", {}, `Your version (kept on this device): ${summary(mine || session.annotations)}.`),
        drawn ? el("p", { class: "wb-conflict-legend", "data-testid": "conflict-legend" },
          el("span", { class: "wb-overlay-swatch", "aria-hidden": "true" }),
          `${who || "Their"}${who ? "'s" : ""} ${drawn} shape(s) are drawn dashed in magenta over yours; they cannot be edited.`) : null),
      el("div", { class: "wb-banner-actions" },
        el("button", { type: "button", class: "btn btn-sm btn-primary", "data-testid": "keep-mine",
          onclick: async () => { this.hideBanner(); await session.keepMine(version); this.editor.refresh(); } }, "Keep mine (save over theirs)"),
        current ? el("button", { type: "button", class: "btn btn-sm", "data-testid": "take-theirs",
          onclick: () => { this.hideBanner(); session.takeTheirs(current.version, theirs); this.editor.refresh(); } }, "Take theirs (drop mine)") : null,
        toggle),
    ], "warning");
    this.updateStatus();
  }

  showBanner(content, tone = "info") {
    const banner = this.parts.banner;
    banner.className = `wb-banner wb-banner-${tone}`;
    banner.replaceChildren(...[].concat(content));
    banner.hidden = false;
  }

  hideBanner() {
    this.parts.banner.hidden = true;
    if (this.editor && this.editor.canvas && this.editor.canvas.setOverlay) this.editor.canvas.setOverlay(null);
  }

  connectPresence(sampleId) {
    if (this.socket) { this.socket.onclose = null; this.socket.close(); }
    this.presence.clear();
    this.renderPresence();
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/labeling/presence/${this.job.id}/${sampleId}/`;
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      if (msg.kind === "presence") {
        if (msg.event === "self") this.selfId = msg.id;
        else if (msg.event === "leave") this.presence.delete(msg.id);
        else this.presence.set(msg.id, msg.user);
        this.renderPresence();
      } else if (msg.kind === "saved" && msg.by && msg.by !== this.config.user) {
        this.editor.remoteSaved?.(msg);
      }
    };
    socket.onclose = (event) => {
      if (event.code === 4404 || this.socket !== socket) return;
      setTimeout(() => { if (this.socket === socket && this.sample && this.sample.id === sampleId) this.connectPresence(sampleId); }, 3000);
    };
  }

  renderPresence() {
    const names = [...new Set(this.presence.values())];
    const node = this.parts.presence;
    node.replaceChildren(...names.map((name) => el("span", { class: "wb-avatar", title: `${name} has this sample open` }, name.slice(0, 1).toUpperCase())));
    if (names.length) node.append(el("span", { class: "wb-presence-text", "data-testid": "presence" }, `${names.join(", ")} ${names.length > 1 ? "are" : "is"} also here`));
  }

  // ---- keyboard ----------------------------------------------------------------------------

  shortcuts() {
    return [
      ...this.editor.shortcuts(),
      ["D", "Save and go to the next sample"],
      ["A", "Back to the previous sample"],
      ["Ctrl+S", "Save now"],
      ["?", "Show or hide this help"],
    ];
  }

  bindNav() {
    this.parts.next?.addEventListener("click", () => this.next());
    this.parts.prev?.addEventListener("click", () => this.previous());
    this.parts.help?.addEventListener("click", () => helpOverlay(this.shortcuts()));
    this.parts.back?.addEventListener("click", (e) => { e.preventDefault(); this.leave(); });
  }

  bindKeys() {
    document.addEventListener("keydown", (e) => {
      if (document.querySelector(".wb-help, .wb-picker")) return;
      const typing = e.target.closest && e.target.closest("input, textarea, select, [contenteditable]");
      if (this.editor.handleKey(e, { typing })) { e.preventDefault(); return; }
      if (typing) return;
      const key = e.key.toLowerCase();
      const ctrl = e.ctrlKey || e.metaKey;
      if (ctrl && key === "s") { e.preventDefault(); this.flushAll(); return; }
      if (ctrl || e.altKey) return;
      if (key === "d") { e.preventDefault(); this.next(); }
      else if (key === "a") { e.preventDefault(); this.previous(); }
      else if (e.key === "?") { e.preventDefault(); helpOverlay(this.shortcuts()); }
    });
  }
}

const root = document.getElementById("workbench");
if (root) {
  const config = JSON.parse(document.getElementById("workbench-config").textContent);
  new Shell(root, config).start();
}
