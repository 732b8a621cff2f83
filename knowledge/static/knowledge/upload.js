// Document upload on the chat page: POST the file, then follow its ingestion over /ws/documents/
// (document.progress frames, docs/protocol.md). Everything shown is written as text, never HTML.
"use strict";

(() => {
  const COLLECTIONS_URL = "/api/v1/collections";
  const DEFAULT_COLLECTION = "My documents";
  const STAGES = { queued: "Queued", extracting: "Reading…", embedding: "Indexing…", ready: "Ready", failed: "Failed" };
  const $ = (id) => document.getElementById(id);
  const rows = new Map(); // document id -> { li, bar, status }

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    return document.querySelector("input[name=csrfmiddlewaretoken]")?.value ?? "";
  }

  async function request(url, options = {}) {
    const headers = { Accept: "application/json", ...(options.headers || {}) };
    if ((options.method || "GET") !== "GET") headers["X-CSRFToken"] = csrfToken();
    const response = await fetch(url, { credentials: "same-origin", ...options, headers });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.detail || `Request failed (${response.status})`);
    return data;
  }

  async function loadCollections() {
    let mine = (await request(COLLECTIONS_URL)).filter((c) => c.writable);
    if (!mine.length) {
      const body = JSON.stringify({ name: DEFAULT_COLLECTION });
      mine = [await request(COLLECTIONS_URL, { method: "POST", body, headers: { "Content-Type": "application/json" } })];
    }
    const select = $("kn-collection");
    select.replaceChildren(...mine.map((c) => Object.assign(document.createElement("option"), { value: c.id, textContent: c.name })));
  }

  function row(id, name) {
    if (rows.has(id)) return rows.get(id);
    const li = document.createElement("li");
    li.dataset.documentId = id;
    li.dataset.testid = "upload-item";
    const label = Object.assign(document.createElement("span"), { textContent: name });
    const bar = Object.assign(document.createElement("progress"), { max: 1, value: 0 });
    const status = Object.assign(document.createElement("span"), { textContent: STAGES.queued });
    status.dataset.testid = "upload-status";
    li.append(label, bar, status);
    $("kn-uploads").prepend(li);
    const entry = { li, bar, status };
    rows.set(id, entry);
    return entry;
  }

  function show(id, { stage, done = 0, total = 0, error = "" }) {
    const entry = rows.get(id);
    if (!entry) return;
    entry.bar.max = Math.max(total, 1);
    entry.bar.value = stage === "ready" ? entry.bar.max : done;
    const counts = stage === "embedding" && total ? ` ${done} of ${total}` : "";
    entry.status.textContent = (STAGES[stage] || stage) + counts + (error ? `: ${error}` : "");
    entry.status.classList.toggle("kn-failed", stage === "failed");
    entry.li.dataset.stage = stage;
  }

  async function upload(event) {
    event.preventDefault();
    const file = $("kn-file").files[0];
    if (!file) return;
    const form = new FormData();
    form.append("file", file);
    try {
      const doc = await request(`${COLLECTIONS_URL}/${$("kn-collection").value}/documents`, { method: "POST", body: form });
      row(doc.id, doc.title);
      show(doc.id, { stage: doc.status, done: doc.progress.done, total: doc.progress.total, error: doc.error_reason });
      $("kn-file").value = "";
    } catch (error) {
      const li = Object.assign(document.createElement("li"), { className: "kn-failed", textContent: `${file.name}: ${error.message}` });
      $("kn-uploads").prepend(li);
    }
  }

  function listen(delay = 1000) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws/documents/`);
    ws.addEventListener("message", (event) => {
      const frame = JSON.parse(event.data);
      if (frame.type === "document.progress") show(frame.document_id, frame);
    });
    ws.addEventListener("open", () => { delay = 1000; });
    ws.addEventListener("close", (event) => {
      if (event.code !== 4401) setTimeout(() => listen(Math.min(delay * 2, 30000)), delay);
    });
  }

  $("kn-upload").addEventListener("submit", upload);
  loadCollections().catch(() => { $("kn-upload").hidden = true; });
  listen();
})();
