// The example app's page logic: cookie transport, CSRF header, refresh on 401, live sign-out.
"use strict";

const CSRF_COOKIE = document.body.dataset.csrfCookie || "__Host-ss-csrf";  // (the app's setting)

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
  if (events) events.close();
  show("account", false);
  showLogin();
}

// The sign-in form (home page) with its handler: shown at start or after a sign-out, without
// a reload; never submitted by the browser itself (that would put the password in the URL).
function showLogin() {
  show("login", true);
  bindLogin();
}

let events = null;
function followSession() {
  if (events) events.close();
  events = new EventSource("/api/events");
  events.addEventListener("revoked", (e) => {
    events.close();
    signedOut(JSON.parse(e.data).reason);
  });
  const source = events;
  source.onerror = async () => {  // closed (a reconnect refused): is the session still valid?
    if (source.readyState !== EventSource.CLOSED || source !== events) return;
    const me = await api("GET", "/api/me");  // (refreshes an expired access token)
    if (me.status === 401) signedOut("session ended");
    else if (me.ok) setTimeout(() => { if (source === events) followSession(); }, 1000);  // again
  };
}

const COLUMNS = ["Device", "IP", "Browser", "Created", "Last seen", "Actions"];
function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text ?? "—";
  td.dataset.label = COLUMNS[td.cellIndex];  // (the label of a narrow screen's stacked rows)
  if (className) td.className = className;
  return td;
}

const TIME = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
function when(seconds) { return new Date(seconds * 1000).toLocaleString([], TIME); }

// "Chrome 156 on Linux" from a user agent (the whole string is the cell's tooltip).
function browserName(ua) {
  if (!ua) return null;
  const browser = [["Edge", /Edg\/(\d+)/], ["Firefox", /Firefox\/(\d+)/], ["Chrome", /Chrom(?:e|ium)\/(\d+)/],
    ["Safari", /Version\/(\d+).*Safari/]].find(([, re]) => re.test(ua));
  const os = [["Android", /Android/], ["iOS", /iPhone|iPad/], ["Windows", /Windows/],
    ["macOS", /Mac OS X/], ["Linux", /Linux/]].find(([, re]) => re.test(ua));
  if (!browser) return ua.slice(0, 30);
  return browser[0] + " " + ua.match(browser[1])[1] + (os ? " on " + os[0] : "");
}

async function loadSessions() {
  const response = await api("GET", "/auth/sessions");
  if (!response.ok) return signedOut("session ended");
  const body = document.getElementById("sessions");
  body.replaceChildren();
  for (const s of (await response.json()).sessions) {
    const row = body.insertRow();
    row.dataset.sessionId = s.session_id;
    const name = s.device || "unnamed device";
    const device = cell(row, name);
    if (s.current) device.insertAdjacentHTML("beforeend", ' <span class="tag">this device</span>');
    cell(row, s.ip);
    cell(row, browserName(s.user_agent)).title = s.user_agent || "";
    cell(row, when(s.created), "when"); cell(row, when(s.last_seen), "when");
    const button = document.createElement("button");
    button.textContent = "Sign out";
    button.className = "sign-out-session";
    button.setAttribute("aria-label", "Sign out " + name);
    button.onclick = async () => {
      await api("DELETE", "/auth/sessions/" + encodeURIComponent(s.session_id));
      if (s.current) return signedOut("you signed out");
      loadSessions();
    };
    cell(row, "", "actions-cell").append(button);
  }
}

async function start() {
  const page = document.body.dataset.page;
  const me = await api("GET", "/api/me");
  if (!me.ok) { showLogin(); return; }
  const user = await me.json();
  document.getElementById("who").textContent = user.sub;
  show("account", true);
  followSession();
  if (page === "home") {
    document.getElementById("call-api").onclick = async () => {
      const r = await api("GET", "/api/me");
      const text = await r.text();
      let shown = text;
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch { /* not JSON: as is */ }
      document.getElementById("api-result").textContent = r.status + " " + shown;
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
  if (!form || form.onsubmit) return;
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
