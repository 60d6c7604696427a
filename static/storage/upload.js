// Multi-file upload with one progress bar per file (templates/storage/_upload_form.html).
// Each file travels in its own XMLHttpRequest to the storage API, because fetch() reports no
// upload progress; CSRF rides in the X-CSRFToken header. When every file has finished, the
// folder listing is fetched again through htmx so the new files appear without a reload.
// Without JavaScript the same form posts to the page's upload view instead.

// Three uploads at a time: enough to fill the connection, few enough to show steady progress.
const PARALLEL = 3;

function formatBytes(bytes) {
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

// The API's error body is {"error": {"code", "message", "fields"}}; a field's own message reads best.
function errorText(xhr) {
  try {
    const error = JSON.parse(xhr.responseText).error;
    const fieldMessages = Object.values(error.fields || {}).flat();
    return fieldMessages[0] || error.message;
  } catch {
    return `The server answered ${xhr.status} ${xhr.statusText}.`;
  }
}

function progressRow(list, file) {
  const item = document.createElement("li");
  item.className = "upload-item";
  item.dataset.file = file.name;
  const name = document.createElement("span");
  name.className = "upload-name";
  name.textContent = file.name;
  const size = document.createElement("span");
  size.className = "upload-size muted";
  size.textContent = formatBytes(file.size);
  const bar = document.createElement("progress");
  bar.max = 100;
  bar.value = 0;
  bar.setAttribute("aria-label", `Upload progress of ${file.name}`);
  const status = document.createElement("span");
  status.className = "upload-status";
  status.dataset.uploadStatus = "";
  status.textContent = "Waiting";
  item.append(name, size, bar, status);
  list.append(item);
  const finish = (state, text) => {
    item.dataset.state = state;
    status.textContent = text;
  };
  return {
    progress(percent) {
      bar.value = percent;
      status.textContent = `${percent}%`;
    },
    done() {
      bar.value = 100;
      finish("done", "Uploaded");
    },
    fail(message) {
      finish("failed", message);
      status.setAttribute("role", "alert");
    },
  };
}

function sendOne(form, file, row) {
  return new Promise((resolve) => {
    const body = new FormData();
    body.append("path", form.elements.path.value);
    body.append("files", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.dataset.uploadUrl);
    xhr.setRequestHeader("X-CSRFToken", form.elements.csrfmiddlewaretoken.value);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => {
      // Hold at 99% until the server has stored the file and answered.
      if (event.lengthComputable) row.progress(Math.min(99, Math.floor((event.loaded / event.total) * 100)));
    });
    xhr.addEventListener("load", () => {
      if (xhr.status === 201) {
        row.done();
        resolve(true);
      } else {
        row.fail(errorText(xhr));
        resolve(false);
      }
    });
    xhr.addEventListener("error", () => {
      row.fail("The connection failed before the upload finished; try again.");
      resolve(false);
    });
    xhr.send(body);
  });
}

async function uploadAll(form) {
  const input = form.querySelector("input[type=file]");
  const list = form.querySelector("[data-upload-list]");
  const submit = form.querySelector("[data-upload-submit]");
  const files = [...input.files];
  if (files.length === 0) {
    input.setCustomValidity("Choose at least one file to upload.");
    input.reportValidity();
    return;
  }
  input.setCustomValidity("");
  const limit = Number(form.dataset.maxBytes);
  list.replaceChildren();
  submit.disabled = true;
  const queue = files.map((file) => ({ file, row: progressRow(list, file) }));
  let uploaded = 0;
  const worker = async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      if (limit && job.file.size > limit) {
        // Refused here so a file the server would reject is never sent at all.
        job.row.fail(`The file "${job.file.name}" is larger than the upload limit of ${formatBytes(limit)}.`);
        continue;
      }
      if (await sendOne(form, job.file, job.row)) uploaded += 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, files.length) }, worker));
  submit.disabled = false;
  input.value = "";
  form.dataset.uploaded = String(uploaded);
  const listing = document.querySelector(form.dataset.listing);
  if (uploaded > 0 && listing && window.htmx) {
    window.htmx.ajax("GET", window.location.href, { target: form.dataset.listing, swap: "outerHTML" });
  }
}

document.addEventListener("submit", (event) => {
  const form = event.target.closest?.("form[data-upload]");
  if (!form) return;
  event.preventDefault();
  uploadAll(form);
});
