// Ferry admin page: lists stored items, shows one with its receipt (checked by
// verify.js), follows live updates, and shows the log's recent entries.
// The token lives in sessionStorage (this tab only) and goes in the
// Authorization header of every API call; EventSource cannot set headers, so
// live updates are read from a fetch() stream.
"use strict";

const TOKEN_KEY = "ferry-admin-token";
const PAGE_SIZE = 50;
const TEXT_PREVIEW = 256 * 1024;
const LOG_ENTRIES = 100;
const $ = (id) => document.getElementById(id);

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  next: null,
  selected: null,
  current: null,
  shown: new Set(),
  items: new Map(),
  events: null,
  // The log's verifier key text, fetched once (null: the server keeps no log).
  logKey: undefined,
  receipt: null,
};

// ---- API -------------------------------------------------------------------

class ApiFailure extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  headers.set("Authorization", "Bearer " + state.token);
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) { signOut("The token was refused."); throw new ApiFailure(401, "unauthorized"); }
  if (!response.ok) throw new ApiFailure(response.status, await errorMessage(response));
  return response;
}

async function errorMessage(response) {
  let message = response.status + " " + response.statusText;
  try { message = (await response.json()).error.message || message; } catch (_) { /* not JSON */ }
  return message;
}

function filterQuery() {
  const params = new URLSearchParams();
  const add = (name, value) => { if (value) params.set(name, value); };
  add("data_type", $("filter-type").value);
  add("serialization", $("filter-format").value);
  add("source", $("filter-source").value.trim());
  add("name", $("filter-name").value.trim());
  add("since", toRfc3339($("filter-since").value));
  add("until", toRfc3339($("filter-until").value));
  return params;
}

function toRfc3339(local) {
  if (!local) return "";
  const date = new Date(local);
  return isNaN(date) ? "" : date.toISOString();
}

// ---- sign in / out -----------------------------------------------------------

async function connect(token) {
  state.token = token;
  $("connect").disabled = true;
  $("login-error").hidden = true;
  try {
    const response = await fetch("/api/items?limit=1", { headers: { Authorization: "Bearer " + token } });
    if (response.status === 401) throw new Error("That token was refused.");
    if (!response.ok) throw new Error("The server answered " + response.status + ".");
    sessionStorage.setItem(TOKEN_KEY, token);
    $("login").hidden = true;
    $("app").hidden = false;
    $("disconnect").hidden = false;
    await reload();
    refreshCount();
    followEvents();
  } catch (err) {
    showLogin(err.message || String(err));
  } finally {
    $("connect").disabled = false;
  }
}

function showLogin(message) {
  $("app").hidden = true;
  $("login").hidden = false;
  $("disconnect").hidden = true;
  const error = $("login-error");
  error.textContent = message || "";
  error.hidden = !message;
  $("token").focus();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = "";
  if (state.events) { state.events.abort(); state.events = null; }
  setLive("off", "offline");
  showLogin(message);
}

// ---- the list ------------------------------------------------------------------

async function reload() {
  state.next = null;
  state.shown.clear();
  state.items.clear();
  $("item-list").replaceChildren();
  await loadPage();
}

async function loadPage() {
  const params = filterQuery();
  params.set("limit", PAGE_SIZE);
  if (state.next) params.set("cursor", state.next);
  $("list-error").hidden = true;
  $("load-more").disabled = true;
  try {
    const page = await (await api("/api/items?" + params)).json();
    for (const item of page.items) addRow(item, false);
    state.next = page.next;
  } catch (err) {
    if (err.status !== 401) { $("list-error").textContent = err.message; $("list-error").hidden = false; }
  } finally {
    $("load-more").disabled = false;
    $("load-more").hidden = !state.next;
    $("list-empty").hidden = $("item-list").children.length > 0;
  }
}

function addRow(item, live) {
  if (state.shown.has(item.id)) return;
  state.shown.add(item.id);
  state.items.set(item.id, item);
  const row = document.createElement("li");
  row.className = "item-row" + (live ? " new" : "");
  row.dataset.id = item.id;
  row.dataset.testid = "item-row";
  row.tabIndex = 0;
  row.setAttribute("role", "button");
  row.setAttribute("aria-selected", String(item.id === state.selected));
  fillRow(row, item);
  row.addEventListener("click", () => select(item));
  row.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(item); } });
  const list = $("item-list");
  if (live) list.prepend(row); else list.append(row);
  $("list-empty").hidden = true;
}

// A row's content: name, kind, hold, size, arrival, expiry, source.
function fillRow(row, item) {
  row.dataset.held = String(item.held);
  const expiry = item.expires_at ? [el("span", "expiry", "expires " + formatTime(item.expires_at))] : [];
  row.replaceChildren(
    el("div", "name", rowLabel(item)),
    el("div", "sub", null,
      ...kindTags(item),
      ...holdTags(item),
      el("span", null, formatSize(item.size)),
      el("span", null, formatTime(item.received_at)),
      ...expiry,
      el("span", "mono", item.peer)),
  );
}

// Unnamed items share the first characters of their ids (the arrival time), so the
// list names them by kind and the random end of the id.
function rowLabel(item) {
  if (item.name) return item.name;
  const kind = item.data_type === "dictionary" ? formatLabel(item.serialization) + " dictionary" : "text";
  return kind + " · …" + item.id.slice(-8);
}

function matchesFilters(item) {
  const f = filterQuery();
  if (f.get("data_type") && f.get("data_type") !== item.data_type) return false;
  if (f.get("serialization") && f.get("serialization") !== item.serialization) return false;
  if (f.get("source") && !item.peer.startsWith(f.get("source"))) return false;
  if (f.get("name") && !(item.name || "").toLowerCase().includes(f.get("name").toLowerCase())) return false;
  const at = Date.parse(item.received_at);
  if (f.get("since") && at < Date.parse(f.get("since"))) return false;
  if (f.get("until") && at >= Date.parse(f.get("until"))) return false;
  return true;
}

// ---- live updates (Server-Sent Events over fetch) ------------------------------

function setLive(stateName, label) {
  const pill = $("live-status");
  pill.dataset.state = stateName;
  pill.textContent = label;
}

async function followEvents() {
  if (state.events) state.events.abort();
  const controller = new AbortController();
  state.events = controller;
  let delay = 1000;
  while (!controller.signal.aborted) {
    try {
      const response = await api("/api/events", { signal: controller.signal, headers: { Accept: "text/event-stream" } });
      setLive("live", "live");
      delay = 1000;
      await readEvents(response.body, onEvent);
    } catch (err) {
      if (controller.signal.aborted || err.status === 401) return;
    }
    setLive("off", "reconnecting…");
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 30000);
  }
}

async function readEvents(body, handle) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let type = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) type = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) handle(type, data.join("\n"));
    }
  }
}

function onEvent(type, data) {
  if (type === "item") {
    const item = JSON.parse(data);
    if (matchesFilters(item)) addRow(item, true);
    refreshCount();
  } else if (type === "lagged") {
    reload();
  }
}

function refreshCount() {
  // The list is paged, so the count shown is what has been loaded.
  const count = $("item-list").children.length;
  $("item-count").textContent = count + (state.next ? "+" : "") + " items";
}

// ---- the detail pane -------------------------------------------------------------

// The data type, and for a dictionary the form it arrived in (text is always txt).
function kindTags(item) {
  const tags = [el("span", "tag " + item.data_type, item.data_type)];
  if (item.data_type === "dictionary") tags.push(el("span", "tag", formatLabel(item.serialization)));
  return tags;
}

// A badge for an item on legal hold.
function holdTags(item) {
  if (!item.held) return [];
  const tag = el("span", "tag held", "on hold");
  tag.dataset.testid = "held-badge";
  tag.title = "On legal hold: kept past its expiry, and cannot be deleted until released";
  return [tag];
}

async function select(item) {
  showTab("item");
  state.selected = item.id;
  state.current = item;
  for (const row of document.querySelectorAll(".item-row")) {
    row.setAttribute("aria-selected", String(row.dataset.id === item.id));
  }
  $("detail-empty").hidden = true;
  $("detail-body").hidden = false;
  $("detail-body").dataset.id = item.id;
  $("detail-title").textContent = rowLabel(item);
  renderHold(item);
  renderMeta(item);
  await Promise.all([showContent(item), showReceipt(item)]);
}

// The parts of the detail view that change with the item's hold.
function renderHold(item) {
  $("detail-badges").replaceChildren(
    ...kindTags(item),
    ...holdTags(item),
    el("span", "tag", item.encrypted_in_transit ? "encrypted in transit" : "plain in transit"));
  const button = $("hold");
  button.textContent = item.held ? "Release hold" : "Put on hold";
  button.dataset.held = String(item.held);
  $("delete").disabled = item.held;
  $("delete").title = item.held ? "On legal hold: release it first" : "";
}

// Puts the item on legal hold, or releases it, and shows its new state.
async function toggleHold(item) {
  const button = $("hold");
  button.disabled = true;
  $("content-error").hidden = true;
  try {
    const response = await api("/api/items/" + encodeURIComponent(item.id) + "/hold", { method: item.held ? "DELETE" : "PUT" });
    const updated = await response.json();
    const row = document.querySelector('.item-row[data-id="' + updated.id + '"]');
    if (row) fillRow(row, updated);
    if (state.items.has(updated.id)) state.items.set(updated.id, updated);
    if (state.current && state.current.id === updated.id) {
      state.current = updated;
      renderHold(updated);
      renderMeta(updated);
    }
  } catch (err) {
    $("content-error").textContent = (item.held ? "Release" : "Hold") + " failed: " + err.message;
    $("content-error").hidden = false;
  } finally {
    button.disabled = false;
  }
}

function renderMeta(item) {
  const rows = [
    ["Id", item.id], ["Received", new Date(item.received_at).toLocaleString() + "  (" + item.received_at + ")"],
    ["Source", item.peer], ["Name", item.name || "—"], ["Size", formatSize(item.size) + " (" + item.size + " bytes)"],
    ["Type", item.data_type], ["Format", formatLabel(item.serialization) + " · " + item.content_type],
    ["SHA-256", item.sha256], ["Storage key", item.key_id],
    ["Expires", item.expires_at ? new Date(item.expires_at).toLocaleString() + "  (" + item.expires_at + ")" + (item.held ? ", kept while on hold" : "") : "never (no retention rule)"],
    ["Legal hold", item.held ? "on hold: cannot be deleted or expire until released" : "no"],
  ];
  $("meta").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", null, k), el("dd", k === "SHA-256" || k === "Id" ? "mono" : null, v)]));
}

async function showContent(item) {
  const tree = $("json-tree"), text = $("text-view"), note = $("content-note"), error = $("content-error");
  tree.hidden = text.hidden = note.hidden = error.hidden = true;
  $("tree-tools").hidden = true;
  tree.replaceChildren();
  text.textContent = "";
  const url = "/api/items/" + encodeURIComponent(item.id) + "/content";
  try {
    if (item.data_type === "dictionary") {
      const value = await (await api(url + "?as=json")).json();
      if (state.selected !== item.id) return;
      tree.replaceChildren(jsonNode(null, value, 0));
      tree.hidden = false;
      $("tree-tools").hidden = false;
    } else {
      const partial = item.size > TEXT_PREVIEW;
      const headers = partial ? { Range: "bytes=0-" + (TEXT_PREVIEW - 1) } : {};
      const bytes = await (await api(url, { headers })).arrayBuffer();
      if (state.selected !== item.id) return;
      text.textContent = new TextDecoder("utf-8").decode(bytes);
      text.hidden = false;
      if (partial) {
        const link = el("a", null, "download the whole file");
        link.href = "#";
        link.addEventListener("click", (e) => { e.preventDefault(); download(item); });
        note.replaceChildren("Showing the first 256 KiB of " + formatSize(item.size) + ". ", link, " to see the rest.");
        note.hidden = false;
      }
    }
  } catch (err) {
    if (state.selected !== item.id) return;
    error.textContent = "Could not load the content: " + err.message;
    error.hidden = false;
  }
}

function jsonNode(key, value, depth) {
  const isContainer = value !== null && typeof value === "object";
  if (!isContainer) {
    const leaf = el("div", "leaf");
    if (key !== null) leaf.append(el("span", "key", key), ": ");
    leaf.append(scalar(value));
    return leaf;
  }
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  if (key !== null) summary.append(el("span", "key", key), ": ");
  const [open, close] = Array.isArray(value) ? ["[", "]"] : ["{", "}"];
  summary.append(el("span", "count", open + " " + entries.length + (entries.length === 1 ? " entry " : " entries ") + close));
  details.append(summary);
  const children = el("div", "children");
  details.append(children);
  // Children are built when first opened, so huge dictionaries stay fast.
  let built = false;
  const build = () => {
    if (built) return;
    built = true;
    for (const [k, v] of entries) children.append(jsonNode(k, v, depth + 1));
  };
  details.addEventListener("toggle", () => { if (details.open) build(); });
  if (depth < 2) { build(); details.open = true; }
  return details;
}

function scalar(value) {
  if (typeof value === "string") return el("span", "v-string", JSON.stringify(value));
  if (typeof value === "number") return el("span", "v-number", String(value));
  if (typeof value === "boolean") return el("span", "v-bool", String(value));
  return el("span", "v-null", "null");
}

function setAllOpen(open) {
  // Opening builds children, which adds more details: repeat until stable (bounded).
  for (let pass = 0; pass < 64; pass++) {
    const closed = [...$("json-tree").querySelectorAll("details")].filter((d) => d.open !== open);
    if (!closed.length) return;
    for (const d of closed) { d.open = open; d.dispatchEvent(new Event("toggle")); }
    if (!open) return;
  }
}

async function download(item) {
  const button = $("download");
  button.disabled = true;
  try {
    const blob = await (await api("/api/items/" + encodeURIComponent(item.id) + "/content")).blob();
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = item.file_name;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
  } catch (err) {
    $("content-error").textContent = "Download failed: " + err.message;
    $("content-error").hidden = false;
  } finally {
    button.disabled = false;
  }
}

async function remove(item) {
  if (!confirm("Delete " + (item.name || item.id) + "? This cannot be undone.")) return;
  try {
    await api("/api/items/" + encodeURIComponent(item.id), { method: "DELETE" });
    document.querySelector('.item-row[data-id="' + item.id + '"]')?.remove();
    state.shown.delete(item.id);
    state.items.delete(item.id);
    state.selected = null;
    state.current = null;
    $("detail-body").hidden = true;
    $("detail-empty").hidden = false;
  } catch (err) {
    $("content-error").textContent = "Delete failed: " + err.message;
    $("content-error").hidden = false;
  }
}

// ---- the receipt ------------------------------------------------------------------

// The log's verifier key, from this server, once per page: the receipt is
// checked against the key the server serves (trust on first use; `ferry verify
// --key-file` takes a key kept elsewhere). null when the server keeps no log.
async function logKey() {
  if (state.logKey === undefined) {
    const response = await fetch("/api/log/key");
    if (response.status === 404) state.logKey = null;
    else if (!response.ok) throw new ApiFailure(response.status, "the log's key: " + await errorMessage(response));
    else state.logKey = await response.text();
  }
  return state.logKey;
}

function setStatus(node, stateName, text) {
  node.dataset.state = stateName;
  node.textContent = text;
}

// Fetches the item's receipt, shows it, and checks in this browser its
// checkpoint's signature and the leaf's inclusion in that checkpoint (the
// receipt carries both: nothing more is fetched).
async function showReceipt(item) {
  const status = $("receipt-status"), meta = $("receipt-meta"), button = $("receipt-download");
  state.receipt = null;
  meta.hidden = button.hidden = true;
  setStatus(status, "pending", "Checking the receipt…");
  const current = () => state.selected === item.id;
  try {
    const key = await logKey();
    if (!current()) return;
    if (key === null) { setStatus(status, "none", "This server keeps no log: its items have no receipts."); return; }
    const receipt = await (await api("/api/items/" + encodeURIComponent(item.id) + "/receipt")).json();
    if (!current()) return;
    state.receipt = receipt;
    renderReceipt(receipt, key);
    meta.hidden = button.hidden = false;
    const checked = await FerryVerify.verifyReceipt(receipt, key, null);
    if (!current()) return;
    if (checked.ok) setStatus(status, "ok", "verified: signature ✓, in checkpoint of " + checked.checkpointSize + " leaves ✓");
    else if (checked.signature) setStatus(status, "failed", "signature ✓, not in its checkpoint: " + checked.error + ".");
    else setStatus(status, "failed", "Not verified: " + checked.error + ".");
  } catch (err) {
    if (!current() || err.status === 401) return;
    setStatus(status, "failed", "Could not check the receipt: " + err.message);
  }
}

function renderReceipt(receipt, key) {
  const rows = [
    ["Log", receipt.log], ["Leaf index", String(receipt.index)], ["Id", receipt.id], ["SHA-256", receipt.sha256],
    ["Size", formatSize(receipt.size) + " (" + receipt.size + " bytes)"], ["Received", receipt.received_at],
    ["Log key", key.trim() + "  (as this server serves it)"],
  ];
  $("receipt-meta").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", null, k), el("dd", k === "Log" || k === "Received" ? null : "mono", v)]));
}

// Saves the receipt as `ferry send --receipts` does, for `ferry verify`.
function downloadReceipt() {
  const receipt = state.receipt;
  if (!receipt) return;
  const blob = new Blob([JSON.stringify(receipt, null, 2) + "\n"], { type: "application/json" });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = receipt.id + ".receipt.json";
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
}

// ---- the log ------------------------------------------------------------------------

function showTab(name) {
  const log = name === "log";
  $("tab-item").setAttribute("aria-selected", String(!log));
  $("tab-log").setAttribute("aria-selected", String(log));
  $("item-view").hidden = log;
  $("log-view").hidden = !log;
  if (log) loadLog();
}

// The latest entries, newest first.
async function loadLog() {
  const error = $("log-error");
  error.hidden = true;
  $("log-refresh").disabled = true;
  try {
    const page = await (await api("/api/log/entries?limit=" + LOG_ENTRIES)).json();
    $("log-summary").textContent = page.size + " leaves in the log; the latest " + page.entries.length + ", newest first.";
    $("log-rows").replaceChildren(...page.entries.slice().reverse().map(logRow));
  } catch (err) {
    if (err.status === 401) return;
    error.textContent = err.status === 404 ? "This server keeps no log." : "Could not load the log: " + err.message;
    error.hidden = false;
  } finally {
    $("log-refresh").disabled = false;
  }
}

function logRow(entry) {
  const row = document.createElement("tr");
  row.className = "log-row";
  row.dataset.testid = "log-row";
  row.dataset.index = entry.index;
  row.dataset.event = entry.event;
  row.dataset.id = entry.id;
  const item = state.items.get(entry.id);
  let id = el("span", "mono", entry.id);
  if (item) {
    id = el("a", "mono", entry.id);
    id.href = "#";
    id.title = rowLabel(item);
    id.addEventListener("click", (e) => { e.preventDefault(); select(state.items.get(entry.id) || item); });
  }
  const rule = entry.event === "expired" ? (/\nrule ([^\n]*)\n/.exec(entry.leaf) || [])[1] : null;
  const time = el("td", null, formatTime(entry.time));
  time.title = entry.time;
  row.append(
    el("td", "mono", String(entry.index)), time,
    el("td", null, null, el("span", "event " + entry.event, entry.event)),
    el("td", "item", null, id),
    el("td", null, entry.what || rule || "—"),
    el("td", "mono", entry.credential || "—"),
    el("td", "mono", entry.address || "—"));
  return row;
}

// Asks the server to read its whole log back from disk and check it.
async function verifyLog() {
  const status = $("log-verify-status"), button = $("log-verify");
  button.disabled = true;
  status.hidden = false;
  setStatus(status, "pending", "Reading every leaf back and checking it…");
  try {
    const check = await (await api("/api/log/verify", { method: "POST" })).json();
    const against = check.checkpoint_size === null ? "no checkpoint yet" : "the last signed checkpoint of " + check.checkpoint_size + " leaves";
    if (check.ok) {
      setStatus(status, "ok", "Log verified ✓: " + check.size + " leaves read back from disk, consistent with " + against + ".");
    } else {
      setStatus(status, "failed", "The log does NOT verify (" + check.size + " leaves, " + against + "):");
      status.append(el("ul", null, null, ...check.problems.map((problem) => el("li", null, problem))));
    }
  } catch (err) {
    if (err.status !== 401) setStatus(status, "failed", "Could not check the log: " + err.message);
  } finally {
    button.disabled = false;
  }
}

// ---- helpers --------------------------------------------------------------------

function el(tag, className, text, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== null && text !== undefined) node.textContent = text;
  node.append(...children);
  return node;
}

function formatSize(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return (unit ? value.toFixed(1) : String(value)) + " " + units[unit];
}

function formatLabel(serialization) {
  return serialization === "binary" ? "pickle" : serialization;
}

function formatTime(rfc3339) {
  const date = new Date(rfc3339);
  const today = new Date().toDateString() === date.toDateString();
  return today ? date.toLocaleTimeString() : date.toLocaleString();
}

// ---- wiring -------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (e) => { e.preventDefault(); connect($("token").value.trim()); });
  $("disconnect").addEventListener("click", () => signOut(""));
  $("filters").addEventListener("submit", async (e) => { e.preventDefault(); await reload(); refreshCount(); });
  $("clear-filters").addEventListener("click", async () => { $("filters").reset(); await reload(); refreshCount(); });
  $("load-more").addEventListener("click", async () => { await loadPage(); refreshCount(); });
  $("expand-all").addEventListener("click", () => setAllOpen(true));
  $("collapse-all").addEventListener("click", () => setAllOpen(false));
  $("download").addEventListener("click", () => { if (state.current) download(state.current); });
  $("delete").addEventListener("click", () => { if (state.current) remove(state.current); });
  $("hold").addEventListener("click", () => { if (state.current) toggleHold(state.current); });
  $("receipt-download").addEventListener("click", downloadReceipt);
  $("tab-item").addEventListener("click", () => showTab("item"));
  $("tab-log").addEventListener("click", () => showTab("log"));
  $("log-refresh").addEventListener("click", loadLog);
  $("log-verify").addEventListener("click", verifyLog);
  if (state.token) connect(state.token); else showLogin("");
});
