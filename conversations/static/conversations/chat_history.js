// Chat page, history parts: the search box and the open conversation's actions (rename, pin,
// archive, folder, share, delete). Talks to the REST API; chat.js owns everything else.
"use strict";

(() => {
  const API = "/api/v1";
  const $ = (id) => document.getElementById(id);
  const SEARCH_DELAY_MS = 250;
  let searchTimer = null;
  let searchSeq = 0;
  let current = null; // the open conversation, as the API returned it

  const { el } = window.chatbotApi;
  const api = window.chatbotApi.client(API);

  function showError(text) {
    const box = $("chat-error");
    box.textContent = text;
    box.hidden = !text;
  }

  // The server escapes snippets and adds only <mark>; this keeps only text and <mark> anyway.
  function snippetNodes(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    return [...template.content.childNodes].map((node) =>
      node.nodeName === "MARK" ? el("mark", { textContent: node.textContent }) : document.createTextNode(node.textContent));
  }

  // ---- Search ---------------------------------------------------------------------------------
  async function search(q) {
    const seq = ++searchSeq;
    const results = $("chat-search-results");
    if (!q.trim()) {
      results.hidden = true;
      results.replaceChildren();
      return;
    }
    const page = await api(`/search?${new URLSearchParams({ q, limit: 20 })}`);
    if (seq !== searchSeq) return; // a newer query was typed meanwhile
    const items = page.items.map((hit) => {
      const item = el("li", {}, el("a", { href: `/?c=${hit.conversation_id}` },
        el("span", { className: "search-title", textContent: hit.conversation_title || "Untitled" }),
        el("span", { className: "search-snippet" }, ...snippetNodes(hit.snippet_html))));
      item.dataset.testid = "search-result";
      return item;
    });
    if (!items.length) items.push(el("li", { className: "muted", textContent: "No matches" }));
    results.replaceChildren(...items);
    results.hidden = false;
  }

  // ---- The open conversation's actions ------------------------------------------------------------
  function button(label, onClick, testid) {
    const b = el("button", { type: "button", className: "btn-secondary", textContent: label });
    b.dataset.testid = testid;
    b.addEventListener("click", () => act(onClick));
    return b;
  }

  async function patch(fields) {
    current = await api(`/conversations/${current.id}`, { method: "PATCH", body: fields });
    renderActions();
  }

  async function share() {
    const days = prompt("Share a read-only copy of this conversation as it is now.\nExpires after how many days? (empty: never)", "30");
    if (days === null) return;
    const snippets = confirm("Include the quoted passages of cited documents? (OK: include, Cancel: titles only)");
    const body = { include_snippets: snippets, expires_in_days: days.trim() ? Number(days) : null };
    const link = await api(`/conversations/${current.id}/shares`, { method: "POST", body });
    prompt("Share link (manage your links on the Trash, shares page):", new URL(link.url, location.origin).href);
  }

  async function remove() {
    if (!confirm("Move this conversation to the trash? You can restore it for 30 days.")) return;
    await api(`/conversations/${current.id}`, { method: "DELETE" });
    location.assign("/");
  }

  async function move(select) {
    const folderId = select.value ? Number(select.value) : null;
    current = await api(`/conversations/${current.id}/folder`, { method: "PUT", body: { folder_id: folderId } });
  }

  async function renderActions() {
    const box = $("chat-conv-actions");
    box.hidden = !current;
    if (!current) return box.replaceChildren();
    const folders = await api("/folders");
    const select = el("select", { ariaLabel: "Folder" },
      el("option", { value: "", textContent: "No folder" }),
      ...folders.map((f) => el("option", { value: String(f.id), textContent: f.name, selected: f.id === current.folder_id })));
    select.dataset.testid = "folder-picker";
    select.addEventListener("change", () => act(() => move(select)));
    box.replaceChildren(
      button("Rename", async () => {
        const title = prompt("Title", current.title);
        if (title !== null) await patch({ title });
        $("chat-title").textContent = current.title || "New chat";
      }, "rename"),
      button(current.pinned ? "Unpin" : "Pin", () => patch({ pinned: !current.pinned }), "pin"),
      button(current.archived ? "Unarchive" : "Archive", () => patch({ archived: !current.archived }), "archive"),
      select,
      button("Share", share, "share"),
      button("Delete", remove, "delete"));
  }

  async function onUrlChange() {
    const id = Number(new URLSearchParams(location.search).get("c"));
    if (current?.id === id) return;
    current = Number.isInteger(id) && id > 0 ? await api(`/conversations/${id}`).catch(() => null) : null;
    await renderActions();
  }

  async function act(fn) {
    try {
      await fn();
    } catch (err) {
      showError(err.message);
    }
  }

  // chat.js records the open conversation in the URL with replaceState: follow it.
  const replaceState = history.replaceState.bind(history);
  history.replaceState = (...args) => {
    replaceState(...args);
    act(onUrlChange);
  };
  $("chat-search").addEventListener("submit", (event) => event.preventDefault());
  $("chat-search-q").addEventListener("input", (event) => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => act(() => search(event.target.value)), SEARCH_DELAY_MS);
  });
  act(onUrlChange);
})();
