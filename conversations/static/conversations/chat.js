// Chat page: conversation list, message history, and live turns over one websocket per conversation.
// Model output is only ever written as text (textContent / text nodes), never parsed as HTML.
"use strict";

(() => {
  const LIVE_STATUSES = new Set(["pending", "streaming"]);
  const BADGES = { stopped: "Stopped", interrupted: "Interrupted", failed: "Failed", moderated: "Withheld" };
  // By error code, so a live turn and the same turn reloaded from history read alike, and raw
  // provider messages are not shown to users. Unknown codes fall back to the server's words.
  const ERROR_TEXT = {
    provider_unavailable: "the model is busy or unavailable right now. Please try again in a minute.",
    moderated: "the answer was stopped because it appears to break the content policy.",
    provider_error: "the model could not answer.",
    internal: "something went wrong on our side.",
    interrupted: "the server stopped; the text so far is kept.",
  };
  const CONNECTION_LABELS = {
    idle: "Not connected", connecting: "Connecting…", connected: "Connected", reconnecting: "Reconnecting…",
    signedOut: "Logged out",
  };
  const TITLE_CHARS = 60;
  const STICK_THRESHOLD_PX = 40;
  const RESUME_RETRY_MS = 2000;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 10000;

  const readJson = (id) => JSON.parse(document.getElementById(id).textContent);
  const config = { api: readJson("chat-conversations-api"), wsBase: readJson("chat-ws-base") };
  const $ = (id) => document.getElementById(id);
  // Builds an element; string children become text nodes, so model output is never parsed as HTML.
  function el(tag, { dataset = {}, ...props } = {}, ...children) {
    const node = Object.assign(document.createElement(tag), props);
    Object.assign(node.dataset, dataset);
    node.append(...children);
    return node;
  }
  const els = {
    newChat: $("chat-new"), convList: $("chat-conversations"), moreConvs: $("chat-more-conversations"),
    title: $("chat-title"), modelField: $("chat-model-field"), model: $("chat-model"),
    modelName: $("chat-model-name"), connection: $("chat-connection"), scroller: $("chat-scroller"),
    older: $("chat-older"), messages: $("chat-messages"), error: $("chat-error"), form: $("chat-form"),
    input: $("chat-input"), send: $("chat-send"), stop: $("chat-stop"),
  };

  const state = {
    conversationId: null,
    conversations: new Map(), // id -> conversation, for the header's title and model
    convCursor: null,
    olderCursor: null,
    socket: null,
    retries: 0,
    retryTimer: null,
    lastSeq: new Map(), // assistant message id -> last applied seq
    live: new Set(), // assistant message ids in this conversation still generating
    resumedAt: new Map(), // message id -> when a resume was last sent, so gaps do not spam resumes
    pendingSend: null, // { content, key, bubble } until the server answers with turn.started
    creating: false,
    stickToBottom: true,
    lastScrollTop: 0,
    loadToken: 0, // bumped per history load; a stale response is dropped
  };

  // ---- REST ---------------------------------------------------------------------------------

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    // CSRF_USE_SESSIONS leaves no cookie; the form's token is accepted in the header as well.
    return document.querySelector("input[name=csrfmiddlewaretoken]")?.value ?? "";
  }

  async function api(url, { method = "GET", body } = {}) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url, {
      method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 204) return null;
    const data = await response.json().catch(() => ({}));
    if (response.ok) return data;
    const detail = data.detail || `Request failed (${response.status})`;
    throw Object.assign(new Error(detail), { status: response.status, code: data.code });
  }

  function withQuery(path, params) {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) if (value != null) query.set(key, value);
    return `${path}?${query}`;
  }

  const messagesUrl = (id) => `${config.api}/${id}/messages`;

  // ---- Conversation list ----------------------------------------------------------------------

  function renderConversationItem(conv) {
    const dataset = { testid: "conversation-item", conversationId: conv.id };
    const button = el("button", { type: "button", className: "conv-item", dataset },
      el("span", { className: "conv-title", textContent: conv.title || "New chat" }));
    if (conv.pinned) button.append(el("span", { className: "conv-pin", textContent: "Pinned" }));
    return el("li", {}, button);
  }

  function addConversation(conv, where) {
    if (state.conversations.has(conv.id)) return;
    state.conversations.set(conv.id, conv);
    els.convList[where](renderConversationItem(conv));
  }

  async function loadConversations() {
    els.moreConvs.disabled = true;
    try {
      const page = await api(withQuery(config.api, { limit: 30, cursor: state.convCursor }));
      for (const conv of page.items) addConversation(conv, "append");
      state.convCursor = page.next_cursor;
      els.moreConvs.hidden = !page.next_cursor;
      markActive();
      refreshHeader();
    } catch (err) {
      showError(err.message);
    } finally {
      els.moreConvs.disabled = false;
    }
  }

  function markActive() {
    for (const button of els.convList.querySelectorAll("[data-conversation-id]")) {
      if (Number(button.dataset.conversationId) === state.conversationId) button.setAttribute("aria-current", "page");
      else button.removeAttribute("aria-current");
    }
  }

  // The model picker only matters for a chat not created yet; an existing one shows its model.
  function refreshHeader() {
    const conv = state.conversations.get(state.conversationId);
    els.title.textContent = conv?.title || "New chat";
    document.title = `${els.title.textContent} · chatbot`;
    els.modelField.hidden = state.conversationId !== null;
    els.modelName.hidden = !conv;
    els.modelName.textContent = conv ? `Model: ${conv.model}` : "";
  }

  function rememberInUrl(id) {
    const url = new URL(location.href);
    if (id === null) url.searchParams.delete("c");
    else url.searchParams.set("c", id);
    history.replaceState(null, "", url);
  }

  function openConversation(id, { loadHistory = true } = {}) {
    disconnect();
    state.loadToken++;
    Object.assign(state, { conversationId: id, pendingSend: null, olderCursor: null, stickToBottom: true });
    state.live.clear();
    els.messages.replaceChildren();
    els.older.hidden = true;
    clearError();
    rememberInUrl(id);
    markActive();
    refreshHeader();
    updateComposer();
    if (id === null) return setConnection("idle");
    connect();
    if (loadHistory) loadMessages();
  }

  // ---- Messages -------------------------------------------------------------------------------

  function renderMessage(msg) {
    const speaker = { user: "You said:", assistant: "Assistant said:" }[msg.role] ?? "System:";
    const li = el("li", { className: `msg msg-${msg.role}`, dataset: { testid: "message", role: msg.role } },
      el("span", { className: "visually-hidden", textContent: speaker }),
      el("div", { className: "msg-body", textContent: msg.content }));
    li.dataset.messageId = msg.id ?? ""; // "" until the server names an optimistic user message
    setMessageStatus(li, msg.status, msg.error_code);
    renderCitations(li, msg.citations);
    if (msg.role === "assistant" && !LIVE_STATUSES.has(msg.status)) renderModel(li, msg.model);
    return li;
  }

  // Which model wrote an answer (with the conversation on "auto", it changes from turn to turn).
  function renderModel(li, model) {
    li.querySelector(".msg-model")?.remove();
    if (!model || model === "auto") return;
    li.append(el("p", { className: "msg-model", textContent: `Answered by ${model}`, dataset: { testid: "message-model" } }));
  }

  function setMessageStatus(li, status, code, detail) {
    li.dataset.status = status;
    li.setAttribute("aria-busy", String(LIVE_STATUSES.has(status)));
    li.querySelector(".msg-badge")?.remove();
    if (!BADGES[status]) return;
    const reason = ERROR_TEXT[code] || detail || code;
    const textContent = reason ? `${BADGES[status]}: ${reason}` : BADGES[status];
    bodyOf(li).after(el("p", { className: "msg-badge", textContent, dataset: { testid: "message-status" } }));
  }

  // The contract leaves the citation shape open: show a document name and page when present.
  function citationLabel(c) {
    if (typeof c !== "object" || c === null) return String(c);
    const name = String(c.title || c.document_title || c.document || "Source");
    return c.page ? `${name}, p. ${c.page}` : name;
  }

  // A source with a document id links to its file (the endpoint checks the reader's access).
  function citationItem(c) {
    const label = (c?.n ? `[${c.n}] ` : "") + citationLabel(c);
    if (!Number.isInteger(c?.document_id)) return el("li", { textContent: label });
    const link = el("a", { href: `/api/v1/documents/${c.document_id}/file`, textContent: label });
    if (c.snippet) link.title = String(c.snippet);
    return el("li", {}, link);
  }

  function renderCitations(li, citations) {
    li.querySelector(".msg-sources")?.remove();
    if (!citations?.length) return;
    const items = citations.map(citationItem);
    li.append(el("ol", { className: "msg-sources", dataset: { testid: "message-citations" } }, ...items));
  }

  const findMessage = (id) => els.messages.querySelector(`[data-message-id="${CSS.escape(String(id))}"]`);
  const bodyOf = (li) => li.querySelector(".msg-body");

  // A turn still generating is replayed from seq 1: its partial text exists only in the turn's
  // stream, so the history copy is dropped rather than appended to.
  function adoptHistory(items) {
    return items.slice().reverse().map((msg) => {
      if (msg.role !== "assistant" || !LIVE_STATUSES.has(msg.status)) return renderMessage(msg);
      trackLive(msg.id, 0);
      resume(msg.id); // no-op while the socket is connecting: onOpen resumes every live turn
      return renderMessage({ ...msg, content: "" });
    });
  }

  async function loadMessages() {
    const token = ++state.loadToken;
    try {
      const page = await api(withQuery(messagesUrl(state.conversationId), { limit: 50 }));
      if (token !== state.loadToken) return;
      state.live.clear();
      els.messages.replaceChildren(...adoptHistory(page.items));
      if (state.pendingSend) els.messages.append(state.pendingSend.bubble);
      state.olderCursor = page.next_cursor;
      els.older.hidden = !page.next_cursor;
      followBottom(true);
    } catch (err) {
      if (token !== state.loadToken) return;
      if (err.status === 404) openConversation(null); // stale ?c= or someone else's id
      showError(err.message);
    }
    updateComposer();
  }

  async function loadOlder() {
    const token = state.loadToken;
    els.older.disabled = true;
    try {
      const page = await api(withQuery(messagesUrl(state.conversationId), { limit: 50, cursor: state.olderCursor }));
      if (token !== state.loadToken) return;
      const heightBefore = els.scroller.scrollHeight;
      els.messages.prepend(...adoptHistory(page.items));
      els.scroller.scrollTop += els.scroller.scrollHeight - heightBefore; // keep the reader's place
      state.olderCursor = page.next_cursor;
      els.older.hidden = !page.next_cursor;
    } catch (err) {
      showError(err.message);
    } finally {
      els.older.disabled = false;
    }
  }

  // ---- Resume cursors -------------------------------------------------------------------------

  // Mirrored to sessionStorage as asked; a reload still replays from 0 because the text is not kept.
  const seqKey = (id) => `chat.seq.${id}`;

  function setSeq(id, seq) {
    state.lastSeq.set(id, seq);
    try { sessionStorage.setItem(seqKey(id), String(seq)); } catch { /* storage off or full: memory suffices */ }
  }

  function forgetSeq(id) {
    state.lastSeq.delete(id);
    try { sessionStorage.removeItem(seqKey(id)); } catch { /* as above */ }
  }

  function trackLive(id, seq) {
    state.live.add(id);
    setSeq(id, seq);
  }

  // ---- Websocket ------------------------------------------------------------------------------

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}${config.wsBase}${state.conversationId}/`);
    state.socket = ws;
    setConnection(state.retries ? "reconnecting" : "connecting");
    let opened = false;
    // Events from a socket we have since replaced are ignored, so a late close cannot reconnect it.
    ws.addEventListener("open", () => {
      opened = true;
      if (ws === state.socket) onOpen();
    });
    ws.addEventListener("message", (event) => { if (ws === state.socket) onFrame(event.data); });
    ws.addEventListener("close", (event) => { if (ws === state.socket) onClose(ws, event.code, opened); });
  }

  // 4404: the conversation is gone (deleted in another tab): retrying cannot help. A refused
  // handshake reaches the browser only as 1006, the same as a server that is down, so ask the
  // REST API whether the session ended (logged out elsewhere) before retrying forever.
  async function onClose(ws, code, opened) {
    if (code === 4404) return void stopReconnecting("idle");
    if (opened && code !== 4401) return void scheduleReconnect();
    try {
      await api(withQuery(config.api, { limit: 1 }));
    } catch (err) {
      if (ws === state.socket && (err.status === 401 || err.status === 403)) {
        stopReconnecting("signedOut");
        return void showError("Your session has ended: reload the page to log in again.");
      }
    }
    if (ws === state.socket) scheduleReconnect();
  }

  function stopReconnecting(connection) {
    state.socket = null;
    setConnection(connection);
  }

  function disconnect() {
    clearTimeout(state.retryTimer);
    const ws = state.socket;
    state.socket = null;
    state.retries = 0;
    ws?.close();
  }

  function scheduleReconnect() {
    state.socket = null;
    setConnection("reconnecting");
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** state.retries++);
    // Jitter spreads out the reconnects of many tabs after a server restart.
    state.retryTimer = setTimeout(connect, Math.min(BACKOFF_MAX_MS, base * (1 + Math.random() / 4)));
  }

  function reconnectNow() {
    if (state.conversationId === null || state.socket) return;
    clearTimeout(state.retryTimer);
    connect();
  }

  function onOpen() {
    state.retries = 0;
    state.resumedAt.clear(); // resumes asked on the old socket died with it
    setConnection("connected");
    for (const id of state.live) resume(id);
    // Sent again after a drop with the same idempotency key: the server runs it at most once.
    if (state.pendingSend) sendPending();
  }

  function sendFrame(frame) {
    if (state.socket?.readyState !== WebSocket.OPEN) return false;
    state.socket.send(JSON.stringify(frame));
    return true;
  }

  function resume(id) {
    const cursor = state.lastSeq.get(id) ?? 0;
    if (sendFrame({ type: "turn.resume", message_id: id, cursor })) state.resumedAt.set(id, Date.now());
  }

  function sendPending() {
    const { content, key } = state.pendingSend;
    sendFrame({ type: "message.send", content, idempotency_key: key });
  }

  function onFrame(data) {
    let frame;
    try { frame = JSON.parse(data); } catch { return; }
    FRAME_HANDLERS[frame.type]?.(frame);
  }

  const FRAME_HANDLERS = {
    "turn.started": onTurnStarted, "turn.delta": onDelta, "turn.done": onDone, error: onErrorFrame,
  };

  function onTurnStarted({ message_id: id, user_message_id: userMessageId, idempotency_key: key }) {
    if (findMessage(id)) return; // a replay of a turn already on screen
    // The server echoes our idempotency key: anything else was started in another tab.
    if (!state.pendingSend || state.pendingSend.key !== key) return void loadMessages();
    const { bubble } = state.pendingSend;
    state.pendingSend = null;
    bubble.dataset.messageId = userMessageId;
    els.messages.append(renderMessage({ id, role: "assistant", content: "", status: "pending" }));
    trackLive(id, 0);
    updateComposer();
    followBottom();
  }

  function onDelta({ message_id: id, seq, text }) {
    if (!state.live.has(id)) return; // finished or not loaded yet: history and resume cover it
    const last = state.lastSeq.get(id) ?? 0;
    if (seq <= last) return; // already applied (replay after a resume)
    if (seq !== last + 1) return void requestGapResume(id);
    const li = findMessage(id);
    if (!li) return;
    bodyOf(li).append(text); // a text node: cheap to append and never parsed as HTML
    setSeq(id, seq);
    if (li.dataset.status === "pending") setMessageStatus(li, "streaming");
    followBottom();
  }

  // Text must be applied without holes; ask for a replay unless one was asked for just now.
  function requestGapResume(id) {
    if (Date.now() - (state.resumedAt.get(id) ?? 0) > RESUME_RETRY_MS) resume(id);
  }

  function onDone({ message_id: id, status, citations, error, content, model }) {
    if (!state.live.has(id)) return;
    const receivedText = (state.lastSeq.get(id) ?? 0) > 0;
    state.live.delete(id);
    forgetSeq(id);
    const li = findMessage(id);
    if (li) {
      // The final text rides on the done frame: it also covers a resume whose deltas had expired.
      const body = bodyOf(li);
      if (typeof content === "string" && body.textContent !== content) body.textContent = content;
      else body.normalize();
      setMessageStatus(li, status, error?.code, error?.detail);
      renderCitations(li, citations);
      renderModel(li, model);
    }
    updateComposer();
    followBottom();
    // Without that text, a turn that ended before its replay came back: read it from the DB.
    if (typeof content !== "string" && !receivedText && status !== "failed") loadMessages();
  }

  function onErrorFrame({ code, detail, retry_after: retryAfter }) {
    showError(retryAfter != null ? `Slow down: try again in ${Math.ceil(retryAfter)} s` : detail || code);
    // Not about a send: it may be a turn's reader that failed ("lost the answer stream"), which
    // would leave the turn spinning forever. Resuming from our cursors is harmless if it was not.
    if (!state.pendingSend) return void state.live.forEach(resume);
    // The server refused the message: give the text back so it can be sent again.
    const { bubble, content } = state.pendingSend;
    state.pendingSend = null;
    bubble.remove();
    if (!els.input.value) els.input.value = content;
    updateComposer();
  }

  // ---- Composer -------------------------------------------------------------------------------

  const isBusy = () => state.creating || state.pendingSend !== null || state.live.size > 0;

  function updateComposer() {
    const streaming = state.live.size > 0;
    const stopHadFocus = document.activeElement === els.stop;
    els.send.disabled = isBusy();
    els.stop.hidden = !streaming;
    if (streaming) return;
    els.stop.disabled = false;
    if (stopHadFocus) els.input.focus(); // do not strand keyboard focus on a hidden button
  }

  // randomUUID exists only in secure contexts; a plain-http dev host other than localhost lacks it.
  function newIdempotencyKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  // Named after its first message, so the sidebar is not a column of identical "New chat" rows.
  function titleFrom(text) {
    const line = text.replace(/\s+/g, " ").trim();
    if (line.length <= TITLE_CHARS) return line;
    const cut = line.slice(0, TITLE_CHARS - 1);
    const space = cut.lastIndexOf(" ");
    return `${space > TITLE_CHARS / 2 ? cut.slice(0, space) : cut}…`;
  }

  // A conversation is created lazily, on the first message, so "New chat" leaves no empty rows.
  async function createConversation(firstMessage) {
    state.creating = true;
    updateComposer();
    try {
      // The server titles it in the background (a model, or the question's opening words); until
      // then the page shows the question's opening words.
      const conv = await api(config.api, { method: "POST", body: { title: "", model: els.model.value } });
      conv.title = titleFrom(firstMessage);
      addConversation(conv, "prepend");
      openConversation(conv.id, { loadHistory: false });
      return true;
    } catch (err) {
      showError(err.message);
      return false;
    } finally {
      state.creating = false;
      updateComposer();
    }
  }

  async function submit() {
    const content = els.input.value.trim();
    if (!content || isBusy()) return;
    clearError();
    if (state.conversationId === null && !(await createConversation(content))) return;
    const bubble = renderMessage({ role: "user", content, status: "complete" });
    els.messages.append(bubble);
    state.pendingSend = { content, key: newIdempotencyKey(), bubble };
    els.input.value = "";
    sendPending(); // if the socket is still connecting, onOpen sends it
    updateComposer();
    followBottom(true);
  }

  function stop() {
    let sent = false;
    for (const id of state.live) sent = sendFrame({ type: "turn.stop", message_id: id }) || sent;
    if (sent) els.stop.disabled = true;
    else showError("Not connected: try Stop again once the connection is back.");
  }

  function onKeydown(event) {
    // isComposing: Enter that picks an IME candidate must not send.
    if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    event.preventDefault();
    submit();
  }

  // ---- Page chrome ----------------------------------------------------------------------------

  function followBottom(force = false) {
    if (force) state.stickToBottom = true;
    if (!state.stickToBottom) return;
    els.scroller.scrollTop = els.scroller.scrollHeight;
    state.lastScrollTop = els.scroller.scrollTop;
  }

  // Only moving up unsticks: text can grow by more than the threshold before our own scroll's
  // event arrives, so "far from the bottom" alone would wrongly stop following the stream.
  function onScroll() {
    const s = els.scroller;
    if (s.scrollHeight - s.scrollTop - s.clientHeight < STICK_THRESHOLD_PX) state.stickToBottom = true;
    else if (s.scrollTop < state.lastScrollTop) state.stickToBottom = false;
    state.lastScrollTop = s.scrollTop;
  }

  function setConnection(name) {
    els.connection.dataset.state = name;
    els.connection.textContent = CONNECTION_LABELS[name];
  }

  function showError(text) {
    els.error.textContent = text;
    els.error.hidden = !text;
  }

  const clearError = () => showError("");

  function init() {
    els.newChat.addEventListener("click", () => {
      openConversation(null);
      els.input.focus();
    });
    els.convList.addEventListener("click", (event) => {
      const button = event.target.closest("[data-conversation-id]");
      if (!button) return;
      const id = Number(button.dataset.conversationId);
      // Clicking the open conversation reloads it (a way to retry after a failed load).
      if (id === state.conversationId) loadMessages();
      else openConversation(id);
    });
    els.moreConvs.addEventListener("click", () => loadConversations());
    els.older.addEventListener("click", () => loadOlder());
    els.form.addEventListener("submit", (event) => {
      event.preventDefault();
      submit();
    });
    els.input.addEventListener("keydown", onKeydown);
    els.stop.addEventListener("click", stop);
    els.scroller.addEventListener("scroll", onScroll, { passive: true });
    window.addEventListener("online", reconnectNow); // skip the rest of the backoff when the network is back
    const fromUrl = Number(new URLSearchParams(location.search).get("c"));
    openConversation(Number.isInteger(fromUrl) && fromUrl > 0 ? fromUrl : null);
    loadConversations();
  }

  init();
})();
