// The "Users and roles" page: lists the gateway's users and lets the signed-in
// person add, change, deactivate and delete them through /gateway/v1/.
//
// The page offers only what the session's `permissions` allow, but the API
// decides, and the page shows each error it returns next to the control that
// caused it. API data reaches the DOM only as text (textContent, value), never
// as markup.

"use strict";

(function () {
  const API = "/gateway/v1";
  const PAGE_SIZE = 100;
  const ADD_FIELDS = ["name", "email", "role", "type"];
  const TYPE_LABELS = { standard: "Standard", service: "Service" };

  const state = {
    session: null, // the GET /session response while signed in
    users: [], // every user, in the order the API listed them
  };

  const byId = (id) => document.getElementById(id);

  // ---- API --------------------------------------------------------------

  // Error of a failed API request, with the HTTP status (0 when the gateway
  // could not be reached) and the message and field of the RFC 9457 problem.
  class ProblemError extends Error {
    constructor(status, problem) {
      super(problemText(status, problem));
      this.status = status;
      this.field = typeof problem.field === "string" ? problem.field : null;
    }
  }

  function problemText(status, problem) {
    const text =
      nonEmptyString(problem.detail) ||
      nonEmptyString(problem.title) ||
      `The request failed with HTTP status ${status}.`;
    const allowed = Array.isArray(problem.allowed) ? problem.allowed.map(String) : [];
    // The list is left out when the detail already names every allowed value.
    if (allowed.every((value) => text.includes(value))) {
      return text;
    }

    return `${text} Allowed: ${allowed.join(", ")}.`;
  }

  function nonEmptyString(value) {
    return typeof value === "string" && value.trim() !== "" ? value : "";
  }

  // Send one request to the API and return its JSON body, or null for 204.
  // State-changing requests carry the session's CSRF token.
  async function callAPI(method, path, body) {
    const init = {
      method,
      credentials: "same-origin",
      headers: { Accept: "application/json, application/problem+json" },
    };
    if (method !== "GET") {
      init.headers["Content-Type"] = "application/json";
      init.headers["X-CSRF-Token"] = state.session ? state.session.csrf_token : "";
      if (body !== undefined) {
        init.body = JSON.stringify(body);
      }
    }

    let response;
    try {
      response = await fetch(API + path, init);
    } catch (error) {
      throw new ProblemError(0, {
        detail: `The gateway could not be reached (${error.message}).`,
      });
    }

    if (response.status === 204) {
      return null;
    }

    const data = await readJSON(response);
    if (!response.ok) {
      throw new ProblemError(response.status, data || {});
    }

    if (data === null) {
      const status = response.status;
      const detail = `The gateway returned a non-JSON response (HTTP ${status}).`;
      throw new ProblemError(status, { detail });
    }

    return data;
  }

  async function readJSON(response) {
    try {
      return await response.json();
    } catch {
      return null;
    }
  }

  async function fetchAllUsers() {
    const users = [];
    const seen = new Set();
    let cursor = null;
    do {
      let path = `/users?limit=${PAGE_SIZE}`;
      if (cursor !== null) {
        path += `&cursor=${encodeURIComponent(cursor)}`;
      }

      const page = await callAPI("GET", path);
      users.push(...page.items);
      cursor = page.next_cursor ?? null;
      // A cursor that comes back again would loop forever.
      if (cursor !== null && seen.has(cursor)) {
        throw new ProblemError(0, {
          detail: "The gateway returned the same user list cursor twice.",
        });
      }

      seen.add(cursor);
    } while (cursor !== null);

    return users;
  }

  const userPath = (user) => `/users/${encodeURIComponent(user.id)}`;

  // ---- Permissions --------------------------------------------------------

  // The roles of target users the person may `action` on, highest first. For
  // users.create and users.update_role they are also the roles the person may
  // give.
  function rolesFor(action) {
    const listed = state.session.permissions[action];
    if (!Array.isArray(listed)) {
      return [];
    }

    return state.session.roles.filter((role) => listed.includes(role));
  }

  // Actions with a control in each row. A person who may take none of them
  // gets a plain table without controls.
  const ROW_ACTIONS = [
    "users.update_role",
    "users.deactivate",
    "users.activate",
    "users.delete",
    "api_keys.create",
  ];

  function mayChangeAnyUser() {
    return ROW_ACTIONS.some((action) => rolesFor(action).length > 0);
  }

  function mayActOn(action, user) {
    return rolesFor(action).includes(user.role);
  }

  function creatableRoles(type) {
    const standard = rolesFor("users.create");
    if (type === "standard") {
      return standard;
    }

    const service = rolesFor("users.create_service");
    return standard.filter((role) => service.includes(role));
  }

  function creatableTypes() {
    return ["standard", "service"].filter((type) => creatableRoles(type).length > 0);
  }

  function isSelf(user) {
    return user.id === state.session.user.id;
  }

  function roleLabel(role) {
    const words = role.replace(/_/g, " ");
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  // ---- Small DOM helpers ----------------------------------------------------

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

  function fillSelect(select, roles, chosen) {
    select.replaceChildren(
      ...roles.map((role) => element("option", { value: role, text: roleLabel(role) })),
    );
    if (roles.includes(chosen)) {
      select.value = chosen;
    }
  }

  function showError(node, message) {
    node.textContent = message;
    node.hidden = false;
  }

  function clearError(node) {
    node.textContent = "";
    node.hidden = true;
  }

  function announce(message) {
    byId("status").textContent = message;
  }

  // Ask a yes/no question in the page's modal dialog and resolve to true when
  // the person confirms. Escape and Cancel resolve to false.
  function confirmAction(message, acceptLabel) {
    const dialog = byId("confirm");
    byId("confirm-message").textContent = message;
    byId("confirm-accept").textContent = acceptLabel;
    dialog.returnValue = "";
    return new Promise((resolve) => {
      const settle = () => resolve(dialog.returnValue === "confirm");
      dialog.addEventListener("close", settle, { once: true });
      dialog.showModal();
    });
  }

  // ---- Views ----------------------------------------------------------------

  function showSignedOut(reason) {
    state.session = null;
    state.users = [];
    byId("loading").hidden = true;
    byId("account").hidden = true;
    byId("users").hidden = true;
    clearError(byId("page-error"));
    byId("users-table-slot").replaceChildren();
    dismissKey();
    closeAddForm();
    byId("signed-out-reason").textContent = reason;
    byId("signed-out").hidden = false;
  }

  function showPageError(message) {
    byId("loading").hidden = true;
    showError(byId("page-error"), message);
  }

  // Show the error of a failed API call in `node`. A 401 means that the
  // session is over, so the whole page changes to the signed-out view instead.
  function reportFailure(error, node) {
    if (error.status === 401) {
      showSignedOut("Your session has ended.");
      return;
    }

    showError(node, error.message);
  }

  function renderAccount() {
    const user = state.session.user;
    byId("account-name").textContent = user.name;
    byId("account-role").textContent = roleLabel(user.role);
    byId("account").hidden = false;
  }

  function renderUsers() {
    const slot = byId("users-table-slot");
    if (state.users.length === 0) {
      slot.replaceChildren(element("p", { text: "No users yet." }));
      return;
    }

    // Chat managers get only id, name, email and role, so the columns follow
    // the fields the API sent.
    const columns = {
      details: state.users.some((user) => "type" in user || "active" in user),
      controls: mayChangeAnyUser(),
    };
    const headings = ["Name", "Email", "Role"];
    if (columns.details) {
      headings.push("Type", "Active");
    }
    if (columns.controls) {
      headings.push("Actions");
    }

    const head = element("thead", {}, [
      element(
        "tr",
        {},
        headings.map((heading) => element("th", { scope: "col", text: heading })),
      ),
    ]);
    const body = element(
      "tbody",
      {},
      state.users.map((user) => renderUserRow(user, columns)),
    );
    const table = element("table", { className: "users-table" }, [
      element("caption", { className: "visually-hidden", text: "Users" }),
      head,
      body,
    ]);
    slot.replaceChildren(table);
  }

  function renderUserRow(user, columns) {
    const row = element("tr", { "data-user-id": user.id });
    if (user.active === false) {
      row.className = "inactive";
    }

    const name = isSelf(user) ? `${user.name} (you)` : user.name;
    row.append(
      element("th", { scope: "row", text: name }),
      element("td", { text: user.email }),
    );
    if (columns.controls) {
      row.append(renderRoleCell(user));
    } else {
      row.append(element("td", { text: roleLabel(user.role) }));
    }

    if (columns.details) {
      row.append(
        element("td", { text: TYPE_LABELS[user.type] || user.type || "" }),
        element("td", { text: activeLabel(user.active) }),
      );
    }

    if (columns.controls) {
      row.append(renderActionsCell(user));
    }

    return row;
  }

  function activeLabel(active) {
    if (active === undefined) {
      return "";
    }

    return active ? "Yes" : "No";
  }

  function renderRoleCell(user) {
    const changeable = mayActOn("users.update_role", user);
    const select = element("select", {
      className: "role",
      "aria-label": `Role of ${user.name}`,
    });
    const roles = changeable ? rolesFor("users.update_role") : [user.role];
    fillSelect(select, roles, user.role);
    select.disabled = !changeable;

    const error = element("p", { className: "error role-error", role: "alert" });
    error.hidden = true;
    error.id = `role-error-${user.id}`;
    select.setAttribute("aria-describedby", error.id);
    select.addEventListener("change", () => changeRole(user, select, error));
    return element("td", {}, [select, error]);
  }

  function renderActionsCell(user) {
    const error = element("p", { className: "error row-error", role: "alert" });
    error.hidden = true;
    const buttons = [];

    if (user.active !== undefined) {
      const action = user.active ? "deactivate" : "activate";
      const label = user.active ? "Deactivate" : "Activate";
      buttons.push(
        actionButton(label, user, mayActOn(`users.${action}`, user), () =>
          setActive(user, action, error),
        ),
      );
    }

    if (user.type === "service") {
      buttons.push(
        actionButton("New API key", user, mayActOn("api_keys.create", user), () =>
          rotateKey(user, error),
        ),
      );
    }

    buttons.push(
      actionButton("Delete", user, mayActOn("users.delete", user), () =>
        deleteUser(user, error),
      ),
    );
    const group = element("div", { className: "row-actions" }, buttons);
    return element("td", {}, [group, error]);
  }

  function actionButton(label, user, allowed, onClick) {
    const button = element("button", {
      type: "button",
      "aria-label": `${label} ${user.name}`,
      text: label,
    });
    if (label === "Delete") {
      button.className = "danger";
    }

    button.disabled = !allowed;
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await onClick();
      } finally {
        // The row may have been rendered again meanwhile; re-enabling a
        // detached button is harmless.
        button.disabled = !allowed;
      }
    });
    return button;
  }

  // ---- Row actions ------------------------------------------------------------

  // Put `updated` in place of the user with the same id. A change to the
  // signed-in person may change their permissions, so the session and the
  // list are then loaded again.
  async function replaceUser(updated) {
    if (isSelf(updated)) {
      await loadPage();
      return;
    }

    state.users = state.users.map((user) => (user.id === updated.id ? updated : user));
    renderUsers();
  }

  async function changeRole(user, select, error) {
    const chosen = select.value;
    clearError(error);
    if (chosen === user.role) {
      return;
    }

    if (isSelf(user) && isLowerRole(chosen, user.role)) {
      const confirmed = await confirmAction(
        `Change your own role to ${roleLabel(chosen)}? ` +
          "You will lose the permissions of your current role.",
        "Change my role",
      );
      if (!confirmed) {
        select.value = user.role;
        return;
      }
    }

    select.disabled = true;
    try {
      const updated = await callAPI("PUT", `${userPath(user)}/role`, { role: chosen });
      announce(`${user.name} is now ${roleLabel(updated.role)}.`);
      await replaceUser(updated);
    } catch (failure) {
      select.value = user.role;
      select.disabled = false;
      reportFailure(failure, error);
      select.focus();
    }
  }

  function isLowerRole(role, than) {
    const roles = state.session.roles;
    return roles.indexOf(role) > roles.indexOf(than);
  }

  async function setActive(user, action, error) {
    clearError(error);
    if (action === "deactivate" && isSelf(user)) {
      const confirmed = await confirmAction(
        "Deactivate your own account? You will be signed out and cannot sign in " +
          "until someone activates you again.",
        "Deactivate me",
      );
      if (!confirmed) {
        return;
      }
    }

    try {
      const updated = await callAPI("POST", `${userPath(user)}/${action}`, {});
      announce(`${user.name} is ${updated.active ? "active" : "deactivated"}.`);
      await replaceUser(updated);
    } catch (failure) {
      reportFailure(failure, error);
    }
  }

  async function deleteUser(user, error) {
    clearError(error);
    const target = isSelf(user) ? "your own account" : `${user.name} (${user.email})`;
    const confirmed = await confirmAction(
      `Delete ${target}? This cannot be undone.`,
      "Delete",
    );
    if (!confirmed) {
      return;
    }

    try {
      await callAPI("DELETE", userPath(user));
    } catch (failure) {
      reportFailure(failure, error);
      return;
    }

    announce(`${user.name} was deleted.`);
    if (isSelf(user)) {
      await loadPage();
      return;
    }

    state.users = state.users.filter((other) => other.id !== user.id);
    renderUsers();
  }

  async function rotateKey(user, error) {
    clearError(error);
    const confirmed = await confirmAction(
      `Issue a new API key for ${user.name}? Its older keys stop working at once.`,
      "Issue new key",
    );
    if (!confirmed) {
      return;
    }

    try {
      const issued = await callAPI("POST", `${userPath(user)}/keys`, {});
      showKey(user, issued.api_key);
    } catch (failure) {
      reportFailure(failure, error);
    }
  }

  // ---- The API key shown once ---------------------------------------------------

  // Show `apiKey` with a Copy button until the person dismisses it. The key is
  // kept only in this panel's input, so dismissing it removes the key from
  // the page.
  function showKey(user, apiKey) {
    dismissKey();
    const input = element("input", {
      id: "new-key",
      type: "text",
      readonly: "",
      spellcheck: "false",
      autocomplete: "off",
      className: "key",
    });
    input.value = apiKey;
    const feedback = element("p", { className: "key-feedback", role: "status" });
    const copy = element("button", { type: "button", text: "Copy" });
    copy.addEventListener("click", () => copyKey(input, feedback));
    const done = element("button", { type: "button", text: "Done" });
    done.addEventListener("click", () => {
      dismissKey();
      byId("add-open").focus();
    });

    const panel = element(
      "section",
      {
        id: "new-key-panel",
        className: "new-key",
        "aria-labelledby": "new-key-heading",
      },
      [
        element("h3", { id: "new-key-heading", text: `API key for ${user.name}` }),
        element("p", {
          text:
            "Copy the key now. It is shown only this once, and the gateway " +
            "stores only a hash of it.",
        }),
        element("label", { for: "new-key", text: "API key" }),
        element("div", { className: "key-row" }, [input, copy, done]),
        feedback,
      ],
    );
    byId("new-key-slot").replaceChildren(panel);
    input.focus();
    input.select();
  }

  async function copyKey(input, feedback) {
    try {
      await navigator.clipboard.writeText(input.value);
      feedback.textContent = "Copied to the clipboard.";
    } catch {
      // No clipboard API (an insecure context) or no permission: select the
      // key so that the person can copy it with the keyboard.
      input.focus();
      input.select();
      feedback.textContent = "The key is selected. Press Ctrl+C (or ⌘C) to copy it.";
    }
  }

  function dismissKey() {
    const input = byId("new-key");
    if (input) {
      input.value = "";
    }

    byId("new-key-slot").replaceChildren();
  }

  // ---- The add form ---------------------------------------------------------------

  function openAddForm() {
    const form = byId("add-user");
    form.reset();
    clearAddErrors();
    const types = creatableTypes();
    const options = types.map((type) =>
      element("option", { value: type, text: TYPE_LABELS[type] }),
    );
    byId("add-type").replaceChildren(...options);
    updateAddRoles();
    form.hidden = false;
    byId("add-open").setAttribute("aria-expanded", "true");
    byId("add-name").focus();
  }

  function closeAddForm() {
    byId("add-user").hidden = true;
    byId("add-open").setAttribute("aria-expanded", "false");
  }

  function updateAddRoles() {
    const select = byId("add-role");
    const previous = select.value;
    const roles = creatableRoles(byId("add-type").value);
    fillSelect(select, roles, previous);
    // The lowest role is the least surprising default.
    if (!roles.includes(previous) && roles.length > 0) {
      select.value = roles[roles.length - 1];
    }
  }

  function clearAddErrors() {
    for (const field of ADD_FIELDS) {
      clearError(byId(`add-${field}-error`));
      byId(`add-${field}`).removeAttribute("aria-invalid");
    }

    clearError(byId("add-error"));
  }

  function showAddFieldError(field, message) {
    const input = byId(`add-${field}`);
    showError(byId(`add-${field}-error`), message);
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }

  async function submitAddForm(event) {
    event.preventDefault();
    clearAddErrors();
    const body = {
      name: byId("add-name").value.trim(),
      email: byId("add-email").value.trim(),
      role: byId("add-role").value,
      type: byId("add-type").value,
    };
    for (const field of ["name", "email"]) {
      if (body[field] === "") {
        showAddFieldError(field, `The ${field} is missing.`);
        return;
      }
    }

    const submit = byId("add-submit");
    submit.disabled = true;
    let created;
    try {
      created = await callAPI("POST", "/users", body);
    } catch (failure) {
      if (failure.status === 401) {
        reportFailure(failure, byId("add-error"));
      } else if (ADD_FIELDS.includes(failure.field)) {
        showAddFieldError(failure.field, failure.message);
      } else {
        showError(byId("add-error"), failure.message);
      }
      return;
    } finally {
      submit.disabled = false;
    }

    const { api_key: apiKey, ...user } = created;
    state.users.push(user);
    closeAddForm();
    renderUsers();
    announce(`${user.name} was added.`);
    if (apiKey) {
      showKey(user, apiKey);
    } else {
      byId("add-open").focus();
    }
  }

  // ---- Loading and signing out ---------------------------------------------------

  // Load the session and every user, and render the page. A 401 shows the
  // signed-out view with the sign-in instructions.
  async function loadPage() {
    let session;
    try {
      session = await callAPI("GET", "/session");
    } catch (failure) {
      if (failure.status === 401) {
        showSignedOut("You are not signed in.");
      } else {
        showPageError(`The session could not be loaded: ${failure.message}`);
      }
      return;
    }

    state.session = session;
    renderAccount();
    byId("signed-out").hidden = true;
    byId("add-open").hidden = creatableTypes().length === 0;
    if (byId("add-open").hidden) {
      closeAddForm();
    } else if (!byId("add-user").hidden) {
      updateAddRoles();
    }

    if (session.permissions["users.list"] !== true) {
      state.users = [];
      byId("users-table-slot").replaceChildren(
        element("p", { text: "Your role may not list users." }),
      );
    } else {
      await loadUsers();
    }

    byId("loading").hidden = true;
    if (state.session !== null) {
      byId("users").hidden = false;
    }
  }

  async function loadUsers() {
    const error = byId("users-error");
    clearError(error);
    try {
      state.users = await fetchAllUsers();
    } catch (failure) {
      reportFailure(failure, error);
      return;
    }

    renderUsers();
  }

  async function signOut() {
    const button = byId("sign-out");
    const error = byId("sign-out-error");
    clearError(error);
    button.disabled = true;
    try {
      await callAPI("DELETE", "/session");
    } catch (failure) {
      // A 401 means that the session had already ended, which is the
      // requested result.
      if (failure.status !== 401) {
        showError(error, `Signing out failed: ${failure.message}`);
        return;
      }
    } finally {
      button.disabled = false;
    }

    showSignedOut("You are signed out.");
  }

  function bindControls() {
    byId("sign-out").addEventListener("click", signOut);
    byId("add-open").addEventListener("click", openAddForm);
    byId("add-cancel").addEventListener("click", () => {
      closeAddForm();
      byId("add-open").focus();
    });
    byId("add-type").addEventListener("change", updateAddRoles);
    byId("add-user").addEventListener("submit", submitAddForm);
  }

  bindControls();
  loadPage();
})();
