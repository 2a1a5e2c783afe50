// The example app's page logic: cookie transport, CSRF header, refresh on 401, live sign-out.
"use strict";

const CSRF_COOKIE = "__Host-ss-csrf";

function csrfToken() {
  const entry = document.cookie.split("; ").find((c) => c.startsWith(CSRF_COOKIE + "="));
  return entry ? entry.slice(CSRF_COOKIE.length + 1) : "";
}

async function send(method, path, body) {
  const headers = { "X-CSRF-Token": csrfToken() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

// A request; on 401 one refresh (the path-scoped refresh cookie goes to /auth/refresh only), then again.
async function api(method, path, body) {
  let response = await send(method, path, body);
  if (response.status === 401) {
    const refreshed = await send("POST", "/auth/refresh");
    if (refreshed.ok) response = await send(method, path, body);
  }
  return response;
}

function show(id, shown) { document.getElementById(id).classList.toggle("hidden", !shown); }

function signedOut(reason) {
  const banner = document.getElementById("signed-out");
  banner.textContent = "You were signed out" + (reason ? " (" + reason + ")" : "") + ".";
  banner.classList.add("shown");
  show("account", false);
  show("login", true);
}

let events = null;
function followSession() {
  if (events) events.close();
  events = new EventSource("/api/events");
  events.addEventListener("revoked", (e) => {
    events.close();
    signedOut(JSON.parse(e.data).reason);
  });
  events.onerror = async () => {  // closed: is the session still valid?
    if (events.readyState === EventSource.CLOSED) {
      const me = await api("GET", "/api/me");
      if (me.status === 401) signedOut("session ended");
    }
  };
}

function cell(row, text) { const td = row.insertCell(); td.textContent = text ?? "—"; return td; }
function when(seconds) { return new Date(seconds * 1000).toLocaleString(); }

async function loadSessions() {
  const response = await api("GET", "/auth/sessions");
  if (!response.ok) return signedOut("session ended");
  const body = document.getElementById("sessions");
  body.replaceChildren();
  for (const s of (await response.json()).sessions) {
    const row = body.insertRow();
    row.dataset.sessionId = s.session_id;
    const device = cell(row, s.device || "unnamed device");
    if (s.current) device.insertAdjacentHTML("beforeend", ' <span class="tag">this device</span>');
    cell(row, s.ip); cell(row, s.user_agent ? s.user_agent.slice(0, 40) : null);
    cell(row, when(s.created)); cell(row, when(s.last_seen));
    const button = document.createElement("button");
    button.textContent = "Sign out";
    button.className = "sign-out-session";
    button.onclick = async () => {
      await api("DELETE", "/auth/sessions/" + encodeURIComponent(s.session_id));
      if (s.current) return signedOut("you signed out");
      loadSessions();
    };
    row.insertCell().append(button);
  }
}

async function start() {
  const page = document.body.dataset.page;
  const me = await api("GET", "/api/me");
  if (!me.ok) { show("login", true); bindLogin(); return; }
  const user = await me.json();
  document.getElementById("who").textContent = user.sub;
  show("account", true);
  followSession();
  if (page === "home") {
    document.getElementById("call-api").onclick = async () => {
      const r = await api("GET", "/api/me");
      document.getElementById("api-result").textContent = r.status + " " + (await r.text());
      if (r.status === 401) signedOut("session ended");
    };
    document.getElementById("sign-out").onclick = async () => {
      await api("POST", "/auth/logout");
      signedOut("you signed out");
    };
  } else {
    await loadSessions();
    document.getElementById("revoke-others").onclick = async () => { await api("POST", "/auth/sessions/revoke-others"); loadSessions(); };
    document.getElementById("sign-out-everywhere").onclick = async () => { await api("POST", "/auth/logout-all"); signedOut("you signed out everywhere"); };
  }
}

function bindLogin() {
  const form = document.getElementById("login-form");
  if (!form) return;
  form.onsubmit = async (e) => {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    const r = await send("POST", "/auth/login", data);
    if (r.ok) { location.reload(); return; }
    document.getElementById("login-error").textContent =
      r.status === 429 ? "Too many attempts: wait " + r.headers.get("Retry-After") + " s." : "Wrong user name or password.";
  };
}

start();
