// The Prediction tab: sends the JSON in the editor or the chosen image to the service (through the
// console, limit 8 MB), shows the answer, and draws detection boxes over the image when the answer
// has detection_boxes ([ymin, xmin, ymax, xmax] in image pixels, ModelArts' object detection output).
const csrf = () => document.querySelector("[name=csrfmiddlewaretoken]")?.value
  || JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";

const COLORS = ["#e11d48", "#2563eb", "#16a34a", "#d97706", "#7c3aed", "#0891b2"];

function drawImage(canvas, file) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => {
      canvas.width = image.naturalWidth;
      canvas.height = image.naturalHeight;
      canvas.getContext("2d").drawImage(image, 0, 0);
      canvas.hidden = false;
      resolve(image);
    };
    image.onerror = () => reject(new Error("the browser cannot show this image"));
    image.src = URL.createObjectURL(file);
  });
}

function drawBoxes(canvas, image, body) {
  const boxes = body && Array.isArray(body.detection_boxes) ? body.detection_boxes : [];
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const line = Math.max(2, Math.round(Math.min(canvas.width, canvas.height) / 150));
  context.lineWidth = line;
  context.font = `${Math.max(12, line * 6)}px sans-serif`;
  boxes.forEach((box, index) => {
    const [ymin, xmin, ymax, xmax] = box.map(Number);
    const color = COLORS[index % COLORS.length];
    context.strokeStyle = color;
    context.strokeRect(xmin, ymin, xmax - xmin, ymax - ymin);
    const label = `${(body.detection_classes || [])[index] ?? ""} ${((body.detection_scores || [])[index] ?? "")}`.trim();
    if (label) {
      context.fillStyle = color;
      const width = context.measureText(label).width + line * 2;
      context.fillRect(xmin, Math.max(0, ymin - line * 8), width, line * 8);
      context.fillStyle = "#fff";
      context.fillText(label, xmin + line, Math.max(line * 6, ymin - line * 2));
    }
  });
  canvas.dataset.boxes = String(boxes.length);
}

for (const panel of document.querySelectorAll("[data-predict]")) {
  const result = panel.querySelector("[data-predict-result]");
  const meta = panel.querySelector("[data-predict-meta]");
  const button = panel.querySelector("[data-predict-run]");
  const fileInput = panel.querySelector("[data-predict-file]");
  const canvas = panel.querySelector("[data-predict-canvas]");
  const maxBytes = Number(panel.dataset.maxBytes);
  let image = null;

  fileInput?.addEventListener("change", async () => {
    const file = fileInput.files[0];
    image = null;
    if (!file) return;
    try {
      image = await drawImage(canvas, file);
    } catch {
      canvas.hidden = true;
    }
  });

  button?.addEventListener("click", async () => {
    const data = new FormData();
    if (fileInput) {
      const file = fileInput.files[0];
      if (!file) { result.textContent = "Choose an image first."; return; }
      if (file.size >= maxBytes) {
        result.textContent = `${file.name} is ${(file.size / 1048576).toFixed(1)} MB; an image must be under ${maxBytes / 1048576} MB.`;
        return;
      }
      data.append("file", file);
      data.append("field", panel.dataset.field);
    } else {
      const body = panel.querySelector("[data-predict-body]").value;
      if (new Blob([body]).size > maxBytes) { result.textContent = `The request is over ${maxBytes / 1048576} MB.`; return; }
      data.append("body", body);
    }
    button.disabled = true;
    result.textContent = "Calling the service…";
    meta.textContent = "";
    try {
      const response = await fetch(panel.dataset.url, { method: "POST", body: data, headers: { "X-CSRFToken": csrf() },
                                                       credentials: "same-origin" });
      const answer = await response.json();
      result.textContent = typeof answer.body === "string" ? answer.body : JSON.stringify(answer.body, null, 2);
      result.dataset.status = String(answer.status);
      meta.textContent = `HTTP ${answer.status}` + (answer.elapsed_ms !== undefined ? ` · ${answer.elapsed_ms} ms` : "")
        + (answer.version ? ` · ${answer.version}` : "");
      if (image && canvas && answer.status === 200) drawBoxes(canvas, image, answer.body);
    } catch (error) {
      result.textContent = `The call failed: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  });
}
