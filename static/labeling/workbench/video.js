// The video editor (spec §11): play, pause at a moment, draw detection shapes on that frame
// with the same six tools, label them. Each labeled time point is saved as a frame of the video
// (…/frames/): the first save sends the paused frame as a JPEG, so the dataset holds exactly
// the picture the labeler saw. The "Annotation list" shows the labeled time points.
import { TOOLS } from "./canvas.js";
import { ShapeController, canvasShortcuts } from "./image.js";
import { el, fill, swatch } from "./ui.js";

const TIME_STEP = 0.001; // frame times are kept to the millisecond in the workbench

export class Editor {
  constructor(shell) {
    this.shell = shell;
    this.video = el("video", { preload: "auto", playsinline: true, muted: true, "data-testid": "video" });
    this.canvasHost = el("div", { class: "wb-canvas-host" });
    this.wrap = el("div", { class: "wb-video-wrap", "data-paused": "true" }, this.video, this.canvasHost);
    this.playButton = el("button", { type: "button", class: "btn btn-sm", "data-testid": "play-pause", onclick: () => this.togglePlay() }, "▶");
    this.seek = el("input", { type: "range", min: 0, max: 1000, value: 0, "aria-label": "Position in the video",
      oninput: () => { this.video.currentTime = (this.seek.value / 1000) * (this.video.duration || 0); } });
    this.clock = el("span", {}, "0.000 s");
    this.annPanel = el("div", { class: "wb-panel-grow" });
    this.framesPanel = el("section", { class: "wb-panel", "data-testid": "frame-list" });
    fill(shell.parts.stage, el("div", { class: "wb-media-stage" }, this.wrap,
      el("div", { class: "wb-transport" }, this.playButton, this.seek, this.clock)));
    fill(shell.parts.side, this.framesPanel, this.annPanel);
    this.controller = new ShapeController(shell, { stage: this.canvasHost, side: this.annPanel, tools: TOOLS, segmentation: false });
    this.controller.canvas.canvas.style.background = "transparent";
    this.frameSessions = new Map();
    this.video.addEventListener("pause", () => this.paused());
    this.video.addEventListener("play", () => { this.wrap.dataset.paused = "false"; this.playButton.textContent = "❚❚"; this.controller.session = null; });
    this.video.addEventListener("seeked", () => { if (this.video.paused) this.paused(); });
    this.video.addEventListener("timeupdate", () => {
      this.clock.textContent = `${this.video.currentTime.toFixed(3)} s`;
      if (this.video.duration) this.seek.value = String(Math.round((this.video.currentTime / this.video.duration) * 1000));
    });
    this.railButtons();
  }

  railButtons() {
    const c = this.controller.canvas;
    fill(this.shell.parts.tools, ...TOOLS.map((t) => el("button", { type: "button", class: "wb-tool", "data-tool": t.id, "data-key": t.key,
      title: `${t.label} (${t.key})`, "aria-label": `${t.label} (${t.key})`, "aria-pressed": String(c.tool === t.id), onclick: () => c.setTool(t.id) },
    el("span", { class: `wb-tool-icon wb-tool-${t.id}` }))));
    this.shell.parts.tools.hidden = false;
  }

  get canvas() { return this.controller.canvas; }

  sessions() { return [...this.frameSessions.values()]; }

  async load(sample) {
    this.sample = sample;
    this.frames = sample.frames || [];
    this.frameSessions = new Map();
    this.video.src = sample.media_url;
    await new Promise((resolve) => {
      if (this.video.readyState >= 1) resolve();
      this.video.addEventListener("loadedmetadata", resolve, { once: true });
      this.video.addEventListener("error", resolve, { once: true });
    });
    this.renderFrames();
  }

  togglePlay() { if (this.video.paused) this.video.play(); else this.video.pause(); }

  frameAt(time) { return this.frames.find((f) => Math.abs(f.time - time) < TIME_STEP / 2); }

  // Paused: the current frame becomes the canvas' picture, with that time point's shapes.
  paused() {
    this.wrap.dataset.paused = "true";
    this.playButton.textContent = "▶";
    const time = Math.round(this.video.currentTime / TIME_STEP) * TIME_STEP;
    this.time = Number(time.toFixed(3));
    const c = this.controller.canvas;
    c.setSource(this.video, this.video.videoWidth || 640, this.video.videoHeight || 360);
    const key = this.time.toFixed(3);
    let session = this.frameSessions.get(key);
    if (!session) {
      const existing = this.frameAt(this.time);
      const time = this.time;
      // The picture is taken now, while the video shows it; the save may run after the video moved on.
      const image = existing ? "" : this.capture();
      session = this.shell.makeSession({ key: `${this.sample.id}@${key}`, version: existing ? existing.version : 0,
        annotations: existing ? existing.annotations : [], saver: (version, annotations) => this.saveFrame(time, version, annotations, image),
        meta: { time } });
      session.addEventListener("saved", (e) => { if (e.detail.frames) { this.frames = e.detail.frames; this.renderFrames(); } });
      this.frameSessions.set(key, session);
    }
    this.controller.attach(session);
    c.invalidate();
  }

  // The paused picture as a JPEG: the first save of a time point sends it for the frame sample.
  capture() {
    const canvas = document.createElement("canvas");
    canvas.width = this.video.videoWidth; canvas.height = this.video.videoHeight;
    canvas.getContext("2d").drawImage(this.video, 0, 0);
    return canvas.toDataURL("image/jpeg", 0.92);
  }

  async saveFrame(time, version, annotations, image) {
    const payload = { time, version, annotations };
    if (!this.frameAt(time) && version === 0 && image) payload.image = image;
    const result = await this.shell.api.saveFrame(this.sample.id, payload);
    if (result.status === 200) { this.frames = result.body.frames; this.renderFrames(); }
    return result;
  }

  async deleteFrame(frame) {
    const result = await this.shell.api.deleteFrame(this.sample.id, frame.id);
    if (result.status !== 200) return;
    this.frames = result.body.frames;
    this.frameSessions.delete(Number(frame.time).toFixed(3));
    this.renderFrames();
    if (this.video.paused && Math.abs(this.time - frame.time) < TIME_STEP) this.paused();
  }

  goTo(frame) {
    this.video.pause();
    this.video.currentTime = frame.time;
  }

  // Item 46: edit or delete one label of a time point from the list. The video moves to that
  // frame first, so the change goes through the frame's own session (autosave, undo, conflicts).
  async onFrameLabel(frame, index, action, event) {
    const key = Number(frame.time).toFixed(3);
    if (!this.video.paused || this.time === undefined || this.time.toFixed(3) !== key) {
      const seeked = new Promise((resolve) => this.video.addEventListener("seeked", resolve, { once: true }));
      this.goTo(frame);
      await seeked;
    }
    const session = this.frameSessions.get(key);
    if (!session || !session.annotations[index]) return;
    if (action === "delete") {
      this.controller.removeAt(index);
    } else {
      this.controller.canvas.selected = index;
      this.controller.canvas.invalidate();
      await this.controller.relabel(index, event.clientX - 220, event.clientY + 10);
    }
  }

  renderFrames() {
    const items = this.frames.map((f) => el("li", {}, el("details", { open: true },
      el("summary", { class: "wb-frame-head" }, el("button", { type: "button", class: "wb-frame-time", "data-testid": "frame-time", onclick: (e) => { e.preventDefault(); this.goTo(f); } },
        `${Number(f.time).toFixed(3)} s`), el("span", { class: "wb-count" }, f.annotations.length),
      this.shell.readOnly ? null : el("button", { type: "button", class: "wb-icon-btn", title: "Delete every label of this frame", "aria-label": `Delete frame ${f.time}`,
        onclick: (e) => { e.preventDefault(); this.deleteFrame(f); } }, "✕")),
      el("ul", { class: "wb-labels wb-frame-body" }, f.annotations.map((a, index) => el("li", { "data-testid": "frame-label" },
        swatch(this.shell.labelColor(a.label)), el("span", {}, a.label),
        el("span", { class: "wb-ann-kind" }, a.style === "dashed" ? "dashed line" : a.shape),
        this.shell.readOnly ? null : el("button", { type: "button", class: "wb-icon-btn", title: "Change this label", "aria-label": `Edit ${a.label} at ${f.time}`,
          "data-testid": "frame-label-edit", onclick: (e) => this.onFrameLabel(f, index, "edit", e) }, "✎"),
        this.shell.readOnly ? null : el("button", { type: "button", class: "wb-icon-btn", title: "Delete this label", "aria-label": `Delete ${a.label} at ${f.time}`,
          "data-testid": "frame-label-delete", onclick: (e) => this.onFrameLabel(f, index, "delete", e) }, "✕")))))));
    fill(this.framesPanel, el("h3", {}, "Annotation list ", el("span", { class: "wb-count" }, this.frames.length)),
      items.length ? el("ol", { class: "wb-list wb-frames" }, items) : el("p", { class: "wb-empty" }, "Pause the video where an object shows and draw on that frame."));
  }

  refresh() { this.controller.refresh(); }
  labelsChanged() { this.controller.labelsChanged(); }

  shortcuts() { return [["Space / K", "Play or pause"], [", / .", "Step back or forward 0.04 s (paused)"], ...canvasShortcuts(false)]; }

  handleKey(e, ctx) {
    if (ctx.typing) return false;
    if ((e.key === " " || e.key === "k") && !this.controller.canvas.keysDown.has("x")) { this.togglePlay(); return true; }
    if (e.key === "," || e.key === ".") { this.video.pause(); this.video.currentTime = Math.max(0, this.video.currentTime + (e.key === "," ? -0.04 : 0.04)); return true; }
    if (!this.video.paused || !this.controller.session) return false;
    return this.controller.handleKey(e, ctx);
  }
}
