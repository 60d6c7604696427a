// One sample being edited: its annotations, undo/redo history, autosave with the sample's
// version, and local keeping of unsaved edits.
//
// Nothing is lost: every change is written to localStorage at once, saved after a short idle
// pause, and retried with back-off while the network is down. A save carries the version the
// edits started from; a 409 leaves the edits untouched and reports the other person's change
// ("conflict" event) so the labeler chooses, instead of anything being overwritten silently.
import { NetworkError, errorText } from "./api.js";

const clone = (value) => JSON.parse(JSON.stringify(value));
const MAX_HISTORY = 200;

export class Session extends EventTarget {
  constructor({ key, version, annotations, saver, delay = 700, meta = {}, manual = false }) {
    super();
    // Manual sessions never autosave: their owner saves them in a batch ("Save current page").
    this.manual = manual;
    this.key = key; // localStorage key of this sample's unsaved edits
    this.version = version;
    this.annotations = clone(annotations || []);
    this.saver = saver; // (version, annotations) => Promise<{status, body}>
    this.delay = delay;
    this.meta = meta;
    this.past = [];
    this.future = [];
    this.revision = 0; // bumps on every local change
    this.savedRevision = 0;
    this.state = "saved";
    this.message = "";
    this.timer = null;
    this.retryDelay = 1000;
    this.inflight = null;
  }

  // Unsaved edits kept on this device from an earlier visit, if any.
  pending() {
    try { return JSON.parse(localStorage.getItem(this.key) || "null"); } catch { return null; }
  }

  // Take over edits kept locally: same version → they simply continue; else the caller has a conflict.
  restore(pending) {
    this.annotations = clone(pending.annotations);
    this.revision += 1;
    this.setState("dirty");
    this.schedule(50);
  }

  get dirty() { return this.revision !== this.savedRevision; }

  setState(state, message = "") {
    this.state = state;
    this.message = message;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, message } }));
  }

  keep() {
    try {
      localStorage.setItem(this.key, JSON.stringify({ version: this.version, annotations: this.annotations,
        at: Date.now(), meta: this.meta }));
    } catch { /* storage full: the autosave still runs */ }
  }

  forget() {
    try { localStorage.removeItem(this.key); } catch { /* ignore */ }
  }

  // Replace the annotations with `next` as one undoable step.
  commit(next, { coalesce = false } = {}) {
    if (!coalesce || !this.past.length) {
      this.past.push(clone(this.annotations));
      if (this.past.length > MAX_HISTORY) this.past.shift();
    }
    this.future = [];
    this.annotations = next;
    this.touched();
  }

  touched() {
    this.revision += 1;
    this.keep();
    if (this.state !== "conflict") this.setState("dirty");
    this.dispatchEvent(new CustomEvent("change"));
    this.schedule();
  }

  undo() {
    if (!this.past.length) return false;
    this.future.push(clone(this.annotations));
    this.annotations = this.past.pop();
    this.touched();
    return true;
  }

  redo() {
    if (!this.future.length) return false;
    this.past.push(clone(this.annotations));
    this.annotations = this.future.pop();
    this.touched();
    return true;
  }

  schedule(delay = this.delay) {
    clearTimeout(this.timer);
    if (this.manual) return;
    if (this.state === "conflict" || this.state === "error") return;
    this.timer = setTimeout(() => this.save(), delay);
  }

  // Save now; resolves true when the server holds the current edits.
  async flush() {
    clearTimeout(this.timer);
    if (this.inflight) await this.inflight;
    if (!this.dirty) return true;
    if (this.state === "conflict") return false;
    return this.save();
  }

  async save() {
    if (this.inflight) return this.inflight;
    if (!this.dirty) return true;
    const revision = this.revision;
    const payload = clone(this.annotations);
    this.setState("saving");
    this.inflight = (async () => {
      let result;
      try {
        result = await this.saver(this.version, payload);
      } catch (err) {
        if (!(err instanceof NetworkError)) throw err;
        this.setState("offline", `Offline: ${this.pendingCount()} unsaved edit(s) kept on this device, retrying in ${Math.round(this.retryDelay / 1000)} s`);
        this.timer = setTimeout(() => this.save(), this.retryDelay);
        this.retryDelay = Math.min(this.retryDelay * 2, 30000);
        return false;
      }
      this.retryDelay = 1000;
      if (result.status === 200) {
        this.version = result.body.version;
        this.savedRevision = revision;
        if (this.revision === revision) {
          if (Array.isArray(result.body.annotations)) this.annotations = result.body.annotations;
          this.forget();
          this.setState("saved");
          this.dispatchEvent(new CustomEvent("saved", { detail: result.body }));
        } else {
          this.keep();
          this.setState("dirty");
          this.schedule();
        }
        return true;
      }
      if (result.status === 409) {
        this.setState("conflict", errorText(result.body));
        this.dispatchEvent(new CustomEvent("conflict", { detail: { current: result.body.current, mine: payload,
          message: errorText(result.body) } }));
        return false;
      }
      this.setState("error", errorText(result.body));
      this.dispatchEvent(new CustomEvent("refused", { detail: { message: errorText(result.body), body: result.body } }));
      return false;
    })();
    try { return await this.inflight; } finally { this.inflight = null; }
  }

  // A batch save wrote `revision` of these edits and the sample is now at `version`.
  markSaved(revision, version) {
    this.version = version;
    this.savedRevision = revision;
    if (this.revision === revision) {
      this.forget();
      this.setState("saved");
      this.dispatchEvent(new CustomEvent("saved", { detail: { version } }));
    } else {
      this.keep();
      this.setState("dirty");
    }
  }

  pendingCount() { return Math.max(1, this.revision - this.savedRevision); }

  // After a refusal, any new edit (an undo, a fix) clears the error and saves again.
  clearError() { if (this.state === "error") { this.setState("dirty"); this.schedule(); } }

  // Conflict resolutions: save mine over their version, or take theirs and drop mine.
  keepMine(currentVersion) {
    this.version = currentVersion;
    this.setState("dirty");
    return this.save();
  }

  takeTheirs(version, annotations) {
    this.past.push(clone(this.annotations));
    this.version = version;
    this.annotations = clone(annotations);
    this.revision += 1;
    this.savedRevision = this.revision;
    this.forget();
    this.setState("saved");
    this.dispatchEvent(new CustomEvent("change"));
  }
}
