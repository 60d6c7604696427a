// Entry point loaded by base.html: each imported module attaches one behaviour through
// data- attributes (document-level listeners, so content swapped in by htmx works too).
import "./menu.js";
import "./modal.js";
import "./confirm.js";
import "./toasts.js";
import "./tabs.js";
import "./live.js";
