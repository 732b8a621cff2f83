// "Your data" page: trash, share links, folders, export with progress, account deletion.
// Everything user-provided is written as text (textContent), never parsed as HTML.
"use strict";

(() => {
  const API = JSON.parse(document.getElementById("history-api").textContent);
  const $ = (id) => document.getElementById(id);
  const EXPORT_POLL_MS = 1000;

  const { el } = window.chatbotApi;
  const api = window.chatbotApi.client(API);

  function showError(text) {
    $("history-error").textContent = text;
    $("history-error").hidden = !text;
  }

  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "never");

  // ---- Trash ----------------------------------------------------------------------------------
  let trashCursor = null;

  async function loadTrash() {
    const query = trashCursor ? `?cursor=${encodeURIComponent(trashCursor)}` : "";
    const page = await api(`/trash${query}`);
    for (const conv of page.items) {
      const restore = el("button", { type: "button", textContent: "Restore", className: "btn-secondary" });
      const row = el("tr", {}, el("td", { textContent: conv.title || "Untitled" }), el("td", {}, restore));
      restore.addEventListener("click", () => act(async () => {
        await api(`/conversations/${conv.id}/restore`, { method: "POST" });
        row.remove();
      }));
      $("trash-list").append(row);
    }
    trashCursor = page.next_cursor;
    $("trash-more").hidden = !trashCursor;
  }

  // ---- Shares ---------------------------------------------------------------------------------
  async function loadShares() {
    const rows = (await api("/shares")).map((share) => {
      const link = new URL(share.url, location.origin).href;
      const active = !share.revoked_at && (!share.expires_at || new Date(share.expires_at) > new Date());
      const cell = el("td");
      if (active) {
        const revoke = el("button", { type: "button", textContent: "Revoke", className: "btn-secondary" });
        revoke.addEventListener("click", () => act(async () => {
          await api(`/shares/${share.id}`, { method: "DELETE" });
          await loadShares();
        }));
        cell.append(revoke);
      } else {
        cell.textContent = share.revoked_at ? "Revoked" : "Expired";
      }
      return el("tr", {},
        el("td", { textContent: share.title || "Untitled" }),
        el("td", {}, el("a", { href: link, textContent: active ? "Open" : "—", rel: "noreferrer" })),
        el("td", { textContent: String(share.view_count) }),
        el("td", { textContent: when(share.expires_at) }),
        cell);
    });
    $("share-list").replaceChildren(...rows);
  }

  // ---- Folders --------------------------------------------------------------------------------
  async function loadFolders() {
    const items = (await api("/folders")).map((folder) => {
      const rename = el("button", { type: "button", textContent: "Rename", className: "btn-secondary" });
      const remove = el("button", { type: "button", textContent: "Delete", className: "btn-secondary" });
      rename.addEventListener("click", () => act(async () => {
        const name = prompt("Folder name", folder.name);
        if (name) await api(`/folders/${folder.id}`, { method: "PATCH", body: { name } });
        await loadFolders();
      }));
      remove.addEventListener("click", () => act(async () => {
        if (!confirm(`Delete the folder "${folder.name}"? Its conversations are kept.`)) return;
        await api(`/folders/${folder.id}`, { method: "DELETE" });
        await loadFolders();
      }));
      return el("li", { className: "conv-actions" }, el("span", { textContent: folder.name }), rename, remove);
    });
    $("folder-list").replaceChildren(...items);
  }

  // ---- Export ---------------------------------------------------------------------------------
  function showExport(exp) {
    const percent = exp.total ? Math.round((100 * exp.done) / exp.total) : 0;
    $("export-progress").hidden = exp.status === "ready";
    $("export-progress").value = exp.status === "ready" ? 100 : percent;
    $("export-status").textContent = {
      pending: "Waiting for a worker…",
      running: `Exporting: ${exp.done} of ${exp.total} conversations`,
      ready: `Ready (${Math.ceil(exp.size_bytes / 1024)} KB), available until ${when(exp.expires_at)}.`,
      failed: "The export failed. Try again.",
    }[exp.status] ?? exp.status;
    $("export-download").hidden = !exp.download_url;
    if (exp.download_url) $("export-download").href = exp.download_url;
    $("export-start").disabled = exp.status === "pending" || exp.status === "running";
  }

  async function pollExport(id) {
    const exp = await api(`/exports/${id}`);
    showExport(exp);
    if (exp.status === "pending" || exp.status === "running") setTimeout(() => act(() => pollExport(id)), EXPORT_POLL_MS);
  }

  async function startExport() {
    const exp = await api("/exports", { method: "POST" });
    showExport(exp);
    await pollExport(exp.id);
  }

  // ---- Account --------------------------------------------------------------------------------
  async function deleteAccount(event) {
    event.preventDefault();
    if (!confirm("Delete your account and everything in it now? This cannot be undone.")) return;
    await api("/account", { method: "DELETE", body: { confirm: $("account-confirm").value } });
    location.assign("/login/");
  }

  async function act(fn) {
    showError("");
    try {
      await fn();
    } catch (err) {
      showError(err.message);
    }
  }

  $("trash-more").addEventListener("click", () => act(loadTrash));
  $("export-start").addEventListener("click", () => act(startExport));
  $("account-form").addEventListener("submit", (event) => act(() => deleteAccount(event)));
  $("folder-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act(async () => {
      await api("/folders", { method: "POST", body: { name: $("folder-name").value } });
      $("folder-name").value = "";
      await loadFolders();
    });
  });
  act(loadTrash);
  act(loadShares);
  act(loadFolders);
})();
