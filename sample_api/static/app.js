// The chat view: one chat, one contact or the session's chats, as the embed
// session's scope allows, with a box to send a message in the open chat.
//
// The session comes from the gateway. With a cookie, GET /gateway/v1/embed/session
// returns it. Without one, the page that embeds this frame posts an embed code,
// which POST /gateway/v1/embed/token trades for a bearer token. The token is
// kept in a variable of this script only, never in storage, a cookie or the URL.
// Every request goes to this page's own origin, so the view shows what the
// gateway lets the session see. API data reaches the DOM only as text
// (textContent and attribute values), never as markup.

"use strict";

(function () {
  const SESSION_URL = "/gateway/v1/embed/session";
  const TOKEN_URL = "/gateway/v1/embed/token";
  const API = "/api/1";
  const READY_MESSAGE = "gateway-embed-ready";
  const CODE_MESSAGE = "gateway-embed-code";
  const CODE_TIMEOUT_MS = 10000; // how long to wait for the embedding page's code
  const PAGE_SIZE = 100; // requested per page; the API may return fewer
  const MAX_DETAIL_LENGTH = 200; // characters of an error detail shown
  // Ids from the session and the API become URL path segments. The pattern
  // keeps "/", "?", "%" and the segments "." and ".." out of those paths.
  const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
  const SECTIONS = ["embed-required", "chat-list-view", "chat-view", "contact-view"];

  // How requests authenticate. In "cookie" mode they send the session cookie,
  // and writes also send the session's CSRF token. In "token" mode they send
  // the bearer token.
  const auth = { mode: null, csrfToken: null, bearerToken: null };

  const view = {
    chatId: null, // id of the open chat
    // Incremented on each navigation, so that responses for a chat the user
    // has already left are dropped.
    generation: 0,
    shownMessageIds: new Set(),
    earlierMessagesUrl: null,
    moreChatsUrl: null,
  };

  const byId = (id) => document.getElementById(id);

  // ---- Requests -------------------------------------------------------------

  // Error of a failed request: the HTTP status (0 when no response arrived), the
  // server's detail text if it sent one, and a message to show.
  class RequestError extends Error {
    constructor(status, detail) {
      super(errorMessage(status, detail));
      this.status = status;
      this.detail = detail;
    }
  }

  const STATUS_MESSAGES = {
    0: "The server could not be reached, or it redirected the request.",
    401: "The session has ended. Open the view again from the embedding page.",
    403: "This session is not allowed to see or do that.",
    404: "Not found.",
  };

  function errorMessage(status, detail) {
    if (status === 401 || status === 0) {
      return STATUS_MESSAGES[status];
    }

    const text = detail || STATUS_MESSAGES[status] || "The request failed.";
    return `${text} (HTTP ${status})`;
  }

  // Send one request to this origin and return its JSON body.
  async function request(method, url, body) {
    const headers = { Accept: "application/json" };
    if (auth.mode === "token") {
      headers.Authorization = `Bearer ${auth.bearerToken}`;
    }

    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      if (auth.mode === "cookie" && auth.csrfToken !== null) {
        headers["X-CSRF-Token"] = auth.csrfToken;
      }
    }

    const init = {
      method,
      headers,
      credentials: "same-origin",
      cache: "no-store",
      // A redirect could lead to another origin, so it fails the request
      // instead of being followed.
      redirect: "error",
    };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
    }

    let response;
    try {
      response = await fetch(url, init);
    } catch {
      throw new RequestError(0, "");
    }

    const data = await readJSON(response);
    if (!response.ok) {
      throw new RequestError(response.status, detailOf(data));
    }

    if (data === null || typeof data !== "object") {
      throw new RequestError(response.status, "The response is not a JSON object.");
    }

    return data;
  }

  // Return the parsed body of a JSON response, or null for any other body, so
  // that an HTML error page is never read, let alone shown.
  async function readJSON(response) {
    const type = response.headers.get("Content-Type") || "";
    if (!/^application\/([\w.-]+\+)?json\s*(;|$)/i.test(type)) {
      return null;
    }

    try {
      return await response.json();
    } catch {
      return null;
    }
  }

  // The short text of an error body: `detail` of the sample API's
  // {"detail": ...} bodies and of the gateway's problem bodies, else `title`.
  function detailOf(data) {
    if (data === null || typeof data !== "object") {
      return "";
    }

    return shortText(data.detail) || shortText(data.title);
  }

  function shortText(value) {
    if (typeof value !== "string") {
      return "";
    }

    const text = value.replace(/\s+/g, " ").trim();
    if (text.length <= MAX_DETAIL_LENGTH) {
      return text;
    }

    return `${text.slice(0, MAX_DETAIL_LENGTH - 1)}…`;
  }

  // Return the path and query of a pagination link, so that the next request
  // stays on this origin whatever host the API wrote into the link. Return null
  // when there is no link or it leads to another path.
  function pageLink(link, path) {
    if (typeof link !== "string" || link === "") {
      return null;
    }

    let url;
    try {
      url = new URL(link, location.href);
    } catch {
      return null;
    }

    return url.pathname === path ? url.pathname + url.search : null;
  }

  function pathId(value) {
    const id = Number.isSafeInteger(value) && value >= 0 ? String(value) : value;
    return typeof id === "string" && ID_PATTERN.test(id) ? id : null;
  }

  function results(page) {
    return Array.isArray(page.results) ? page.results : [];
  }

  // ---- Session --------------------------------------------------------------

  // Return the embed session, from the cookie or else from a code that the
  // embedding page sends, or null after showing why there is none.
  async function openSession() {
    try {
      const session = await request("GET", SESSION_URL);
      auth.mode = "cookie";
      auth.csrfToken = typeof session.csrf_token === "string" ? session.csrf_token : null;
      return session;
    } catch (error) {
      const parent = parentOrigin();
      if (error.status === 401 && parent !== null) {
        return openTokenSession(parent);
      }

      // 401 without a parent, and the 404 of an API served without the
      // gateway, need no more words than the embed link notice.
      const known = error.status === 401 || error.status === 404;
      showEmbedRequired(known ? "" : `The session could not be loaded. ${error.message}`);
      return null;
    }
  }

  // Return the origin in the page URL's `parent` parameter, or null when it is
  // missing or not exactly an http(s) origin, or the page is not in a frame.
  function parentOrigin() {
    const value = new URLSearchParams(location.search).get("parent");
    if (value === null || window.parent === window) {
      return null;
    }

    let url;
    try {
      url = new URL(value);
    } catch {
      return null;
    }

    if (url.protocol !== "https:" && url.protocol !== "http:") {
      return null;
    }

    return url.origin === value ? value : null;
  }

  async function openTokenSession(parent) {
    showNotice("Waiting for the embedding page…");
    const code = await receiveCode(parent);
    if (code === null) {
      showEmbedRequired("The embedding page sent no embed code.");
      return null;
    }

    let grant;
    try {
      grant = await request("POST", TOKEN_URL, { code, origin: parent });
    } catch (error) {
      showEmbedRequired(codeRejectedMessage(error));
      return null;
    }

    if (typeof grant.token !== "string" || grant.token === "") {
      showEmbedRequired("The gateway returned no token for the embed code.");
      return null;
    }

    auth.mode = "token";
    auth.bearerToken = grant.token;
    return grant;
  }

  function codeRejectedMessage(error) {
    if (error.status === 0) {
      return `The embed code could not be sent. ${error.message}`;
    }

    const reason = error.detail ? `: ${error.detail}` : ".";
    return `The embed code was not accepted${reason} (HTTP ${error.status})`;
  }

  // Tell the embedding page that this frame is ready, and resolve to the first
  // embed code that the parent window on `parent` posts back, or to null after
  // CODE_TIMEOUT_MS.
  function receiveCode(parent) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(null), CODE_TIMEOUT_MS);

      function finish(code) {
        clearTimeout(timer);
        window.removeEventListener("message", onMessage);
        resolve(code);
      }

      function onMessage(event) {
        // Any window may post to this frame. Only the parent, on the origin
        // that the page URL names, is listened to.
        if (event.origin !== parent || event.source !== window.parent) {
          return;
        }

        const data = event.data;
        if (data === null || typeof data !== "object" || data.type !== CODE_MESSAGE) {
          return;
        }

        if (typeof data.code === "string" && data.code !== "") {
          finish(data.code);
        }
      }

      window.addEventListener("message", onMessage);
      window.parent.postMessage({ type: READY_MESSAGE }, parent);
    });
  }

  function showSessionInfo(session) {
    const parts = [];
    if (typeof session.service_user === "string") {
      parts.push(`Service user ${session.service_user}`);
    }

    if (typeof session.origin === "string") {
      parts.push(`embedded by ${session.origin}`);
    }

    if (typeof session.expires_at === "string") {
      parts.push(`until ${formatTime(session.expires_at)}`);
    }

    const info = byId("session-info");
    info.textContent = parts.join(", ");
    info.hidden = parts.length === 0;
  }

  // ---- Scope ----------------------------------------------------------------

  // Show what the session's scope covers: one chat, one contact, or, without
  // a scope, the list of the session's chats.
  async function showScope(scope) {
    if (scope === null || scope === undefined) {
      await showChatList();
      return;
    }

    const kinds = typeof scope === "object" ? Object.keys(scope) : [];
    const id = kinds.length === 1 ? pathId(scope[kinds[0]]) : null;
    if (kinds[0] === "chat" && id !== null) {
      await openChat(id, false);
      return;
    }

    if (kinds[0] === "contact" && id !== null) {
      await showContact(id);
      return;
    }

    showError("This view does not support the session's scope.");
  }

  // ---- Chat list ------------------------------------------------------------

  async function showChatList() {
    view.generation += 1;
    view.chatId = null;
    document.title = "Chats";
    showSection("chat-list-view");
    byId("chat-list").replaceChildren();
    await loadChats(`${API}/chats/?page_size=${PAGE_SIZE}`);
  }

  async function loadChats(url) {
    const more = byId("chat-list-more");
    more.hidden = true;
    showNotice("Loading chats…");

    let page;
    try {
      page = await request("GET", url);
    } catch (error) {
      report(error);
      return;
    }

    const list = byId("chat-list");
    list.append(...results(page).map(chatListItem).filter((item) => item !== null));
    view.moreChatsUrl = pageLink(page.next, `${API}/chats/`);
    more.hidden = view.moreChatsUrl === null;

    if (list.childElementCount === 0) {
      showNotice("There are no chats.");
    } else {
      clearStatus();
    }
  }

  function chatListItem(chat) {
    const id = chat !== null && typeof chat === "object" ? pathId(chat.id) : null;
    if (id === null) {
      return null;
    }

    const button = element("button", { type: "button", className: "chat-link" }, [
      element("span", { className: "chat-link-title", text: chatTitle(chat, id) }),
      element("span", { className: "muted", text: textOf(chat.last_message) }),
    ]);
    button.addEventListener("click", () => openChat(id, true));

    return element("li", { "data-testid": "chat-list-item", "data-chat-id": id }, [
      button,
    ]);
  }

  // ---- Chat -----------------------------------------------------------------

  async function openChat(id, fromList) {
    view.generation += 1;
    const generation = view.generation;
    showNotice("Loading the chat…");

    let chat;
    try {
      chat = await request("GET", `${API}/chats/${id}/`);
    } catch (error) {
      if (generation === view.generation) {
        report(error);
      }
      return;
    }

    if (generation !== view.generation) {
      return;
    }

    view.chatId = id;
    view.shownMessageIds = new Set();
    view.earlierMessagesUrl = null;
    byId("message-list").replaceChildren();
    byId("earlier-messages").hidden = true;
    byId("back-to-list").hidden = !fromList;
    byId("chat-title").textContent = chatTitle(chat, id);
    byId("chat-details").textContent = chatDetails(chat);
    document.title = chatTitle(chat, id);
    showSection("chat-view");

    await loadLatestMessages(id, generation);
  }

  function chatTitle(chat, id) {
    return textOf(chat.title) || `Chat ${id}`;
  }

  function chatDetails(chat) {
    const parts = [];
    if (chat.contact_id !== null && chat.contact_id !== undefined) {
      parts.push(`Contact ${textOf(chat.contact_id)}`);
    }

    if (typeof chat.status === "string" && chat.status !== "") {
      parts.push(chat.status);
    }

    return parts.join(" · ");
  }

  function messagesPath(chatId) {
    return `${API}/chats/${chatId}/messages/`;
  }

  // Show the newest page of the chat's messages. Pages run oldest first, so
  // when there is more than one, the count from page 1 gives the last one.
  async function loadLatestMessages(chatId, generation) {
    const path = messagesPath(chatId);
    let page;
    try {
      page = await request("GET", `${path}?page_size=${PAGE_SIZE}`);
      const pageSize = results(page).length;
      if (page.next && pageSize > 0 && Number.isSafeInteger(page.count)) {
        const last = Math.ceil(page.count / pageSize);
        page = await request("GET", `${path}?page_size=${pageSize}&page=${last}`);
      }
    } catch (error) {
      if (generation === view.generation) {
        report(error);
      }
      return;
    }

    if (generation !== view.generation) {
      return;
    }

    addMessages(results(page), "end");
    setEarlierMessages(pageLink(page.previous, path));
    if (view.shownMessageIds.size === 0) {
      showNotice("There are no messages in this chat yet.");
    } else {
      clearStatus();
    }
  }

  async function loadEarlierMessages() {
    const url = view.earlierMessagesUrl;
    const generation = view.generation;
    if (url === null) {
      return;
    }

    byId("earlier-messages").disabled = true;
    let page;
    try {
      page = await request("GET", url);
    } catch (error) {
      report(error);
      return;
    } finally {
      byId("earlier-messages").disabled = false;
    }

    if (generation !== view.generation) {
      return;
    }

    addMessages(results(page), "start");
    setEarlierMessages(pageLink(page.previous, messagesPath(view.chatId)));
    clearStatus();
  }

  function setEarlierMessages(url) {
    view.earlierMessagesUrl = url;
    byId("earlier-messages").hidden = url === null;
  }

  // Add messages to the list at its "start" or "end", skipping those already
  // shown: pages shift when messages arrive, and a sent message may reappear.
  function addMessages(messages, position) {
    const items = [];
    for (const message of messages) {
      if (message === null || typeof message !== "object") {
        continue;
      }

      const key = textOf(message.id);
      if (key !== "" && view.shownMessageIds.has(key)) {
        continue;
      }

      view.shownMessageIds.add(key);
      items.push(messageItem(message, key));
    }

    const list = byId("message-list");
    if (position === "start") {
      list.prepend(...items);
    } else {
      list.append(...items);
    }
  }

  function messageItem(message, key) {
    const direction = message.direction === "out" ? "out" : "in";
    const sender =
      direction === "in" ? "Contact" : textOf(message.sent_by) || "Sent by the team";
    const meta = element("p", { className: "message-meta muted" }, [sender]);
    if (typeof message.created_at === "string") {
      const time = element("time", { text: formatTime(message.created_at) });
      time.dateTime = message.created_at;
      meta.append(" · ", time);
    }

    return element(
      "li",
      {
        className: `message message-${direction}`,
        "data-testid": "message",
        "data-message-id": key,
        "data-direction": direction,
      },
      [
        element("p", {
          className: "message-text",
          "data-testid": "message-text",
          text: textOf(message.text),
        }),
        meta,
      ],
    );
  }

  async function sendMessage(event) {
    event.preventDefault();
    const input = byId("message-input");
    const button = byId("send-button");
    const text = input.value.trim();
    if (view.chatId === null) {
      return;
    }

    if (text === "") {
      showNotice("Write a message first.");
      input.focus();
      return;
    }

    const generation = view.generation;
    button.disabled = true;
    try {
      const message = await request("POST", messagesPath(view.chatId), { text });
      if (generation === view.generation) {
        addMessages([message], "end");
        input.value = "";
        clearStatus();
      }
    } catch (error) {
      report(error);
    } finally {
      button.disabled = false;
    }
  }

  // Enter sends the message, as in other chat apps, and Shift+Enter starts a
  // new line.
  function sendOnEnter(event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      byId("message-form").requestSubmit();
    }
  }

  // ---- Contact --------------------------------------------------------------

  async function showContact(id) {
    view.generation += 1;
    showNotice("Loading the contact…");

    let contact;
    try {
      contact = await request("GET", `${API}/contacts/${id}/`);
    } catch (error) {
      report(error);
      return;
    }

    const name = [textOf(contact.first_name), textOf(contact.last_name)]
      .filter((part) => part !== "")
      .join(" ");
    byId("contact-name").textContent = name || `Contact ${id}`;
    byId("contact-phone").textContent = textOf(contact.phone) || "—";
    byId("contact-email").textContent = textOf(contact.email) || "—";
    document.title = name || `Contact ${id}`;
    showSection("contact-view");
    clearStatus();
  }

  // ---- Page -----------------------------------------------------------------

  function element(tag, properties = {}, children = []) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(properties)) {
      if (name === "text") {
        node.textContent = value;
      } else if (name === "className") {
        node.className = value;
      } else {
        node.setAttribute(name, value);
      }
    }

    node.append(...children);
    return node;
  }

  // Return a string or number from the API as text, and anything else as "".
  function textOf(value) {
    if (typeof value === "string") {
      return value;
    }

    return typeof value === "number" && Number.isFinite(value) ? String(value) : "";
  }

  function formatTime(value) {
    const moment = new Date(value);
    if (Number.isNaN(moment.getTime())) {
      return value;
    }

    return moment.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  function showSection(id) {
    for (const section of SECTIONS) {
      byId(section).hidden = section !== id;
    }
  }

  function showStatus(message, kind) {
    const status = byId("status");
    status.textContent = message;
    status.dataset.kind = kind;
    status.hidden = message === "";
  }

  function showNotice(message) {
    showStatus(message, "notice");
  }

  function showError(message) {
    showStatus(message, "error");
  }

  function clearStatus() {
    showStatus("", "notice");
  }

  function showEmbedRequired(reason) {
    view.generation += 1;
    showSection("embed-required");
    if (reason) {
      showError(reason);
    } else {
      clearStatus();
    }
  }

  // Show a failed request's message. A 401 means the session is over, so the
  // view also hides everything it showed.
  function report(error) {
    if (error.status === 401) {
      showSection(null);
      byId("session-info").hidden = true;
    }

    showError(error.message);
  }

  async function start() {
    byId("message-form").addEventListener("submit", sendMessage);
    byId("message-input").addEventListener("keydown", sendOnEnter);
    byId("earlier-messages").addEventListener("click", loadEarlierMessages);
    byId("chat-list-more").addEventListener("click", () => loadChats(view.moreChatsUrl));
    byId("back-to-list").addEventListener("click", showChatList);

    const session = await openSession();
    if (session === null) {
      return;
    }

    showSessionInfo(session);
    await showScope(session.scope);
  }

  start();
})();
