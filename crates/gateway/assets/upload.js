// Ferry upload page: each chosen or dropped file goes to the gateway's tus
// endpoint (/uploads, same origin) with tus-js-client (vendored:
// /assets/vendor/tus.min.js), in chunks, with its own progress bar and pause
// and resume buttons. When the last byte is stored, the gateway names the item
// in the Ferry-Item-Id and Ferry-Item-Location headers, shown as a link.
// tus-js-client keeps each upload's URL in localStorage (by the file's name,
// size, type and date), so choosing the same file again after a reload
// continues it instead of starting over. The token, when the gateway wants one,
// lives in sessionStorage (this tab only).
"use strict";

const ENDPOINT = "/uploads";
const TOKEN_KEY = "ferry-gateway-token";
// A chunk is one PATCH: what a cut connection can cost at most. `?chunk=BYTES`
// picks another size (smaller for a slow link).
const DEFAULT_CHUNK = 8 * 1024 * 1024;
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 20000];
const $ = (id) => document.getElementById(id);

function chunkSize() {
  const asked = Number(new URLSearchParams(location.search).get("chunk"));
  return Number.isSafeInteger(asked) && asked > 0 ? asked : DEFAULT_CHUNK;
}

function tokenHeaders() {
  const token = $("token").value.trim();
  sessionStorage.setItem(TOKEN_KEY, token);
  return token ? { Authorization: "Bearer " + token } : {};
}

function showTokenField() {
  $("token-row").hidden = false;
}

function formatBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) { n /= 1024; unit += 1; }
  return (unit === 0 ? n : n.toFixed(1)) + " " + units[unit];
}

// What went wrong, in the gateway's words when it answered with its JSON error body.
function describe(error) {
  const response = error && error.originalResponse;
  if (response) {
    const status = response.getStatus();
    let message = "";
    try { message = JSON.parse(response.getBody()).error.message; } catch (_) { /* not JSON */ }
    if (status === 401) showTokenField();
    return status + (message ? ": " + message : "");
  }
  return String((error && error.message) || error);
}

class Row {
  constructor(file) {
    this.file = file;
    this.element = $("upload-row").content.firstElementChild.cloneNode(true);
    this.part = (name) => this.element.querySelector(`[data-testid="${name}"]`);
    this.part("name").textContent = file.name;
    this.part("size").textContent = formatBytes(file.size);
    this.part("pause").addEventListener("click", () => this.pause());
    this.part("resume").addEventListener("click", () => this.resume());
    $("uploads").append(this.element);
    this.itemId = null;
    this.itemLocation = null;
    const metadata = { filename: file.name };
    if ($("encrypt").checked) metadata.encrypt = "true";
    this.upload = new tus.Upload(file, {
      endpoint: ENDPOINT,
      chunkSize: chunkSize(),
      retryDelays: RETRY_DELAYS,
      metadata,
      headers: tokenHeaders(),
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      onProgress: (sent, total) => this.progress(sent, total),
      onAfterResponse: (_request, response) => this.remember(response),
      onSuccess: (payload) => this.done(payload && payload.lastResponse),
      onError: (error) => this.failed(error),
    });
  }

  // Continues an earlier upload of the same file when this browser kept its URL.
  async start() {
    this.setState("uploading");
    try {
      const previous = await this.upload.findPreviousUploads();
      if (previous.length > 0) {
        previous.sort((a, b) => String(b.creationTime).localeCompare(String(a.creationTime)));
        this.upload.resumeFromPreviousUpload(previous[0]);
        this.element.dataset.resumed = "true";
      }
    } catch (_) {
      // No storage to look in: start afresh.
    }
    this.upload.start();
  }

  pause() {
    this.setState("paused");
    this.upload.abort();
  }

  resume() {
    this.part("error").hidden = true;
    this.upload.options.headers = tokenHeaders();
    this.setState("uploading");
    this.upload.start();
  }

  setState(state) {
    this.element.dataset.state = state;
    const pill = this.part("state");
    pill.textContent = state;
    pill.dataset.state = state;
    const active = state === "uploading";
    const finished = state === "done";
    this.part("pause").hidden = !active;
    this.part("resume").hidden = active || finished;
    if (this.upload && this.upload.url) this.element.dataset.url = this.upload.url;
  }

  progress(sent, total) {
    const percent = total > 0 ? Math.floor((sent / total) * 100) : 100;
    this.part("progress").value = percent;
    this.part("percent").textContent = `${percent}% (${formatBytes(sent)} of ${formatBytes(total)})`;
    this.element.dataset.sent = String(sent);
    if (this.upload.url) this.element.dataset.url = this.upload.url;
  }

  // The item headers come with the response that committed the last byte (or
  // with a HEAD of an upload already complete).
  remember(response) {
    const id = response.getHeader("Ferry-Item-Id");
    if (id) {
      this.itemId = id;
      this.itemLocation = response.getHeader("Ferry-Item-Location");
    }
  }

  done(response) {
    if (response) this.remember(response);
    this.progress(this.file.size, this.file.size);
    this.setState("done");
    if (this.itemId) {
      this.part("item-id").textContent = this.itemId;
      const link = this.part("item-link");
      if (this.itemLocation) link.href = this.itemLocation;
      this.element.dataset.itemId = this.itemId;
      this.part("result").hidden = false;
    }
  }

  failed(error) {
    this.setState("failed");
    const shown = this.part("error");
    shown.textContent = describe(error);
    shown.hidden = false;
  }
}

function add(files) {
  if (typeof tus === "undefined" || !tus.isSupported) {
    const error = $("page-error");
    error.textContent = "This browser cannot run resumable uploads.";
    error.hidden = false;
    return;
  }
  for (const file of files) new Row(file).start();
}

function init() {
  if (document.body.dataset.token === "required") showTokenField();
  $("token").value = sessionStorage.getItem(TOKEN_KEY) || "";
  const input = $("files");
  input.addEventListener("change", () => {
    add(Array.from(input.files));
    input.value = "";
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    add(Array.from(event.dataTransfer.files));
  });
  drop.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); input.click(); }
  });
}

init();
