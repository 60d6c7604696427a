// Browser shell: [data-run-shell] (templates/runtime/_shell.html) opens a terminal into a
// running run through /ws/runtime/runs/<pk>/shell/ (apps/runtime/shell_consumer.py).
//
// xterm.js and its fit addon are loaded from our static files (pinned npm packages) by URLs
// the template gives, so this module stays the only client code of the feature. The socket
// carries binary frames (terminal output, raw bytes for xterm) and JSON text frames (ready,
// exit, error); keystrokes and sizes go up as JSON. A session ends for good (no automatic
// retry) on refusal, idle timeout or the end of the run; the Reconnect button starts a new one.

const REFUSED = { 4404: "No access to this run.", 4403: "Your role does not allow opening a shell." };
const ENDED = 4000;
const UNAVAILABLE = 4409;  // not Running, or its worker offers no shell right now

class RunShell {
  constructor(root, { Terminal, FitAddon }) {
    this.root = root;
    this.select = root.querySelector("[data-shell-node]");
    this.stateLabel = root.querySelector("[data-shell-state]");
    this.notice = root.querySelector("[data-shell-notice]");
    this.reconnectButton = root.querySelector("[data-shell-reconnect]");
    this.term = new Terminal({
      cursorBlink: true, fontSize: 13, scrollback: 5000, convertEol: false,
      fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
      theme: { background: "#0f1720", foreground: "#d8dee9" },
    });
    this.fit = new FitAddon();
    this.term.loadAddon(this.fit);
    this.term.open(root.querySelector("[data-shell-screen]"));
    this.fitNow();
    this.term.onData((data) => this.sendJson({ type: "input", data }));
    this.term.onResize(({ cols, rows }) => this.sendJson({ type: "resize", cols, rows }));
    new ResizeObserver(() => this.fitNow()).observe(root.querySelector("[data-shell-screen]"));
    this.select.addEventListener("change", () => this.restart());
    this.reconnectButton.addEventListener("click", () => this.restart());
    this.connect();
  }

  fitNow() {
    try { this.fit.fit(); } catch { /* hidden panel: no size yet; the observer fits it later */ }
  }

  sendJson(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  setState(label, state) {
    this.stateLabel.textContent = label;
    this.root.dataset.state = state;
  }

  say(message, tone) {
    this.notice.textContent = message;
    this.notice.dataset.tone = tone || "info";
    this.notice.hidden = !message;
  }

  restart() {
    if (this.ws) {
      this.ws.onclose = null;  // a deliberate switch: no "disconnected" notice for the old one
      this.ws.close();
    }
    this.term.reset();
    this.connect();
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const params = new URLSearchParams({ cols: this.term.cols, rows: this.term.rows });
    const ws = new WebSocket(`${scheme}://${location.host}/ws/runtime/runs/${this.select.value}/shell/?${params}`);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.lastMessage = "";
    this.lastReason = "";
    this.say("");
    this.reconnectButton.hidden = true;
    this.setState("Connecting…", "connecting");
    ws.onmessage = (event) => {
      if (typeof event.data !== "string") { this.term.write(new Uint8Array(event.data)); return; }
      const message = JSON.parse(event.data);
      if (message.type === "ready") {
        this.setState(`Connected as ${message.user} · ${message.cwd}`, "open");
        this.term.focus();
      } else if (message.type === "exit" || message.type === "error") {
        this.lastMessage = message.message || "";
        this.lastReason = message.reason || message.type;
      } else if (message.type === "notice") {
        this.say(message.message, "warning");
      }
    };
    ws.onclose = (event) => this.closed(event.code);
  }

  closed(code) {
    this.ws = null;
    const option = this.select.selectedOptions[0];
    const node = option ? option.textContent.trim() : "";
    if (REFUSED[code]) {
      this.setState("Refused", "refused");
      this.say(this.lastMessage || REFUSED[code], "danger");
      this.reconnectButton.hidden = code === 4404;
      return;
    }
    if (code === UNAVAILABLE) {
      this.setState("Unavailable", "refused");
      this.say(this.lastMessage || "The shell is unavailable.", "danger");
    } else if (code === ENDED && this.lastReason === "idle") {
      this.setState("Disconnected (idle)", "idle");
      this.say(`${this.lastMessage} Reconnect to open a new shell on ${node}.`, "warning");
    } else if (code === ENDED) {
      this.setState("Session ended", "ended");
      this.say(this.lastMessage || "The shell ended.", "info");
    } else {
      this.setState("Disconnected", "closed");
      this.say(this.lastMessage || "The connection to the shell was lost.", this.lastMessage ? "danger" : "warning");
    }
    this.term.write("\r\n\x1b[2m[session closed]\x1b[0m\r\n");
    this.reconnectButton.hidden = false;
  }
}

async function start(root) {
  const [{ Terminal }, { FitAddon }] = await Promise.all([import(root.dataset.xterm), import(root.dataset.xtermFit)]);
  if (!root.querySelector("[data-shell-screen]")) return;  // nothing is running: the panel says so
  root.runShell = new RunShell(root, { Terminal, FitAddon });
}

document.querySelectorAll("[data-run-shell]").forEach((root) => {
  start(root).catch((error) => {
    const notice = root.querySelector("[data-shell-notice]");
    notice.textContent = `The terminal could not load: ${error.message}`;
    notice.hidden = false;
  });
});
