// Shared by the chat page's history parts and the "Your data" page: a DOM helper and a JSON
// client for the REST API that sends Django's CSRF token on writes. Loaded before them.
"use strict";

window.chatbotApi = (() => {
  function el(tag, props = {}, ...children) {
    const node = Object.assign(document.createElement(tag), props);
    node.append(...children);
    return node;
  }

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    return document.querySelector("input[name=csrfmiddlewaretoken]")?.value ?? "";
  }

  // A function calling the API under `base`: JSON in and out, the server's detail as the error.
  function client(base) {
    return async function api(path, { method = "GET", body } = {}) {
      const headers = { Accept: "application/json" };
      if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
      if (body !== undefined) headers["Content-Type"] = "application/json";
      const response = await fetch(base + path, {
        method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
      });
      if (response.status === 204) return null;
      const data = await response.json().catch(() => ({}));
      if (response.ok) return data;
      throw new Error(data.detail || `Request failed (${response.status})`);
    };
  }

  return { el, csrfToken, client };
})();
