// The workbench's only way to the server: the documented labeling JSON API
// (/api/v1/labeling/jobs/<id>/…). Every method resolves to {status, body}; a network failure
// rejects with NetworkError so callers can keep edits locally and retry.

export class NetworkError extends Error {}

export class Api {
  constructor({ base, csrf }) {
    this.base = base.replace(/\/$/, "");
    this.csrf = csrf;
  }

  async request(method, path, body) {
    let response;
    try {
      response = await fetch(this.base + path, {
        method,
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": this.csrf },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new NetworkError(err.message || "network error");
    }
    // A proxy or a restarting server answers 502–504: as good as offline, retry later.
    if (response.status >= 502 && response.status <= 504) throw new NetworkError(`HTTP ${response.status}`);
    let data = null;
    if (response.status !== 204) {
      try { data = await response.json(); } catch { data = null; }
    }
    return { status: response.status, body: data };
  }

  sample(id) { return this.request("GET", `/samples/${id}/`); }
  next(afterId, status) {
    const params = new URLSearchParams({ status: status || "unlabeled" });
    if (afterId) params.set("after", afterId);
    return this.request("GET", `/samples/next/?${params}`);
  }
  samples(params) { return this.request("GET", `/samples/?${new URLSearchParams(params)}`); }
  save(id, version, annotations) {
    return this.request("PUT", `/samples/${id}/annotations/`, { version, annotations });
  }
  saveMany(items) { return this.request("PUT", "/annotations/", { items }); }
  labels() { return this.request("GET", "/labels/"); }
  createLabel(spec) { return this.request("POST", "/labels/", { ...spec, source: "workbench" }); }
  peaks(id, columns) { return this.request("GET", `/samples/${id}/peaks/?columns=${columns}`); }
  saveFrame(id, payload) { return this.request("POST", `/samples/${id}/frames/`, payload); }
  deleteFrame(id, frameId) { return this.request("DELETE", `/samples/${id}/frames/${frameId}/`); }
}

export function errorText(body, fallback = "The server refused the change.") {
  const error = body && body.error;
  if (!error) return fallback;
  const fields = Object.entries(error.fields || {});
  if (fields.length) return fields.map(([k, v]) => `${k}: ${v.join(" ")}`).join("\n");
  return error.message || fallback;
}
