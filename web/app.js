// app.js — rift's dashboard: login, views, polling with ETags; plain DOM, no framework.
"use strict";

const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);

const state = {
  csrf: "",
  netErrors: 0,      // polls in a row that got no answer at all
  branches: [],      // the last /v1/branches answer
  byName: new Map(),
  etags: new Map(),  // path -> [etag, data] of the last 200 answer
  view: "",
  timer: 0,
  revealed: new Map(), // branch -> full URL with password, once asked for
};

// Timings the browser test reads (and anyone curious, in the console).
window.riftStats = { loads: 0, lastFetchMs: 0, lastRenderMs: 0, rows: 0, renderedAt: 0,
  appStart: performance.now() };

// ---- helpers ----

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) =>
    ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function bytes(n) {
  if (n == null) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0, v = n;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return (i ? v.toFixed(v < 10 ? 1 : 0) : v) + " " + u[i];
}

function ago(iso) {
  if (!iso) return "–";
  const s = (Date.now() - Date.parse(iso)) / 1000;
  if (s < 0) return "in " + dur(-s);
  return dur(s) + " ago";
}

function until(iso) {
  if (!iso) return "never";
  const s = (Date.parse(iso) - Date.now()) / 1000;
  return s <= 0 ? "now" : "in " + dur(s);
}

function dur(s) {
  if (s < 90) return Math.round(s) + " s";
  if (s < 5400) return Math.round(s / 60) + " min";
  if (s < 172800) return Math.round(s / 3600) + " h";
  return Math.round(s / 86400) + " d";
}

function showError(msg) {
  const e = $("error");
  e.textContent = msg || "";
  e.hidden = !msg;
}

// state as the dashboard shows it: a running branch whose only server sessions are the router's
// kept ones is "pooled"
function shownState(b) {
  if (b.state === "running" && (b.connections || 0) === 0 && (b.pooled || 0) > 0) return "pooled";
  return b.state;
}

// ---- the API ----

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const opt = { method, credentials: "same-origin", cache: "no-store", headers: {} };
  if (method !== "GET") {
    opt.headers["X-Rift-CSRF"] = state.csrf;
    opt.headers["Content-Type"] = "application/json";
    opt.body = JSON.stringify(body ?? {});
  }
  const r = await fetch(path, opt);
  const data = await r.json().catch(() => null);
  if (r.status === 401 && path !== "/v1/dashboard/login") loggedOut();
  if (!r.ok) throw new HttpError(r.status, data?.error?.message || r.status + " " + r.statusText);
  return data;
}

// GET with If-None-Match: [data, changed]; unchanged answers cost a 304 and no rendering.
async function poll(path, prefetched) {
  const prev = state.etags.get(path);
  const headers = prev ? { "If-None-Match": prev[0] } : {};
  let r = prefetched ? await prefetched.catch(() => null) : null;
  if (!r || !r.ok) r = await fetch(path, { credentials: "same-origin", cache: "no-store", headers });
  if (r.status === 304 && prev) return [prev[1], false];
  const data = await r.json().catch(() => null);
  if (r.status === 401) loggedOut();
  if (!r.ok) throw new HttpError(r.status, data?.error?.message || String(r.status));
  const tag = r.headers.get("ETag");
  if (tag) state.etags.set(path, [tag, data]);
  return [data, true];
}

// ---- login ----

function loggedOut() {
  state.csrf = "";
  clearTimeout(state.timer);
  document.querySelectorAll(".view").forEach((v) => (v.hidden = true));
  $("nav").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
}

async function start() {
  const m = location.hash.match(/^#ticket=([0-9a-f]{64})$/);
  // the list is asked for while the session is checked: one round trip less before the table
  if (!m) state.prefetch = fetch("/v1/branches", { credentials: "same-origin", cache: "no-store" });
  if (m) {
    history.replaceState(null, "", location.pathname + "#/branches"); // the ticket works once
    try {
      const s = await api("POST", "/v1/dashboard/login", { ticket: m[1] });
      state.csrf = s.csrf;
    } catch (e) {
      showError(e.message);
    }
  }
  try {
    const s = await api("GET", "/v1/dashboard/session");
    state.csrf = s.csrf;
    $("logout").hidden = !s.logout;
  } catch (e) {
    if (e.status !== 401) showError(e.message);
    loggedOut();
    return;
  }
  loggedIn();
}

function loggedIn() {
  $("login").hidden = true;
  $("nav").hidden = false;
  route();
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const s = await api("POST", "/v1/dashboard/login", { token: $("token").value });
    $("token").value = "";
    state.csrf = s.csrf;
    $("logout").hidden = false;
    showError("");
    if (!location.hash || location.hash === "#") location.hash = "#/branches";
    loggedIn();
  } catch (e) {
    showError(e.message);
  }
});

$("logout").addEventListener("click", async () => {
  await api("POST", "/v1/dashboard/logout").catch(() => {});
  loggedOut();
});

// ---- routing and polling ----

window.addEventListener("hashchange", () => state.csrf && route());

function route() {
  const h = location.hash || "#/branches";
  const [, view, arg] = h.match(/^#\/([a-z]+)(?:\/(.*))?$/) || [null, "branches", null];
  state.view = view;
  state.arg = arg ? decodeURIComponent(arg) : "";
  document.querySelectorAll(".view").forEach((v) => (v.hidden = v.id !== "view-" + view));
  document.querySelectorAll("#nav a").forEach((a) =>
    a.classList.toggle("active", a.dataset.view === view));
  if (view === "branch") {
    state.extrasFor = null;
    $("b-ddl").hidden = true;
    $("b-diff-text").hidden = true;
    $("b-diff-text").textContent = "";
    $("b-url").textContent = "";
    $("b-log").textContent = "";
  }
  refresh();
}

// Fetches what the current view shows and renders what changed; returns the milliseconds taken.
async function refresh() {
  clearTimeout(state.timer);
  const t0 = performance.now();
  try {
    const views = { branches: refreshBranches, branch: refreshBranch, create: refreshCreate,
                    storage: refreshStorage, connections: refreshConnections };
    await (views[state.view] || refreshBranches)();
    $("live").textContent = "updated " + new Date().toLocaleTimeString();
    state.netErrors = 0;
  } catch (e) {
    // no answer at all (fetch's TypeError): `rift dashboard` has exited; polling on would
    // send the cookie to whoever binds that port next
    if (e instanceof TypeError && ++state.netErrors >= 3) {
      loggedOut();
      showError("disconnected — run rift dashboard again");
      return performance.now() - t0;
    }
    if (e.status !== 401 && !(e instanceof TypeError)) showError(e.message);
  }
  if (state.csrf !== "" || !$("nav").hidden) state.timer = setTimeout(refresh, POLL_MS);
  return performance.now() - t0;
}
window.riftRefresh = refresh;

async function loadBranches() {
  const t0 = performance.now();
  const pre = state.prefetch;
  state.prefetch = null;
  const [data, changed] = await poll("/v1/branches", pre);
  window.riftStats.lastFetchMs = performance.now() - t0;
  if (changed) {
    state.branches = data.branches;
    state.byName = new Map(data.branches.map((b) => [b.name, b]));
  }
  return changed;
}

// ---- Branches ----

let lastListKey = "";

async function refreshBranches() {
  const changed = await loadBranches();
  const key = $("filter").value + "|" + $("sort").value;
  if (changed || key !== lastListKey) renderBranches();
  lastListKey = key;
}

$("filter").addEventListener("input", () => renderBranches());
$("sort").addEventListener("change", () => renderBranches());

function matches(b, f) {
  if (!f) return true;
  if (b.name.includes(f)) return true;
  const labels = b.labels || {};
  return Object.entries(labels).some(([k, v]) => (k + "=" + v).includes(f));
}

// parent before children, children by name; a filtered-out parent does not hide its children
function treeOrder(list) {
  const kids = new Map(), roots = [], names = new Set(list.map((b) => b.name));
  for (const b of list) {
    if (b.parent && names.has(b.parent)) {
      if (!kids.has(b.parent)) kids.set(b.parent, []);
      kids.get(b.parent).push(b);
    } else {
      roots.push(b);
    }
  }
  const out = [];
  const walk = (b, depth) => {
    out.push([b, depth]);
    for (const k of kids.get(b.name) || []) walk(k, depth + 1);
  };
  roots.forEach((b) => walk(b, 0));
  return out;
}

// Rows are drawn a chunk at a time: the first CHUNK at once, the next as the last one scrolls
// into view. A table of 1,000 rows would take the browser ~200 ms to lay out on every change.
const CHUNK = 150;
let shownRows = [], drawn = 0;
const more = new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting)) drawMore();
});

function rowHtml([b, depth]) {
  const st = shownState(b);
  const labels = Object.entries(b.labels || {})
    .map(([k, v]) => `<span class="label">${esc(k)}=${esc(v)}</span>`).join("");
  return `<tr data-name="${esc(b.name)}" data-state="${esc(st)}">` +
    `<td class="d${Math.min(depth, 12)}">${depth ? "└ " : ""}` +
    `<a href="#/branch/${encodeURIComponent(b.name)}">${esc(b.name)}</a></td>` +
    `<td><span class="badge ${esc(st)}">${esc(st)}</span></td>` +
    `<td class="num" data-bytes="${b.bytes_own}">${bytes(b.bytes_own)}</td>` +
    `<td class="num" data-bytes="${b.bytes_shared}">${bytes(b.bytes_shared)}</td>` +
    `<td title="${esc(b.created)}">${ago(b.created)}</td>` +
    `<td title="${esc(b.expires || "")}">${until(b.expires)}</td>` +
    `<td>${labels}</td>` +
    `<td class="num conns">${b.connections || 0}</td></tr>`;
}

function drawMore() {
  const body = $("branch-rows");
  const old = body.querySelector("tr.more");
  if (old) { more.unobserve(old); old.remove(); }
  const next = Math.min(shownRows.length, drawn + CHUNK);
  let html = shownRows.slice(drawn, next).map(rowHtml).join("");
  if (next < shownRows.length)
    html += `<tr class="more"><td colspan="8" class="muted">${shownRows.length - next} more below…</td></tr>`;
  body.insertAdjacentHTML("beforeend", html);
  drawn = next;
  const sentinel = body.querySelector("tr.more");
  if (sentinel) more.observe(sentinel);
}

function renderBranches() {
  const t0 = performance.now();
  const f = $("filter").value.trim();
  const sort = $("sort").value;
  const list = state.branches.filter((b) => matches(b, f));
  if (sort === "tree") {
    shownRows = treeOrder(list);
  } else {
    const by = {
      name: (a, b) => a.name.localeCompare(b.name),
      own: (a, b) => b.bytes_own - a.bytes_own,
      created: (a, b) => b.created.localeCompare(a.created),
      connections: (a, b) => (b.connections || 0) - (a.connections || 0),
      state: (a, b) => shownState(a).localeCompare(shownState(b)),
    }[sort];
    shownRows = list.slice().sort(by).map((b) => [b, 0]);
  }
  // keep as many rows drawn as before, so an update does not jump the page back up
  const keep = Math.max(CHUNK, drawn);
  drawn = 0;
  $("branch-rows").textContent = "";
  while (drawn < Math.min(keep, shownRows.length)) drawMore();
  const running = state.branches.filter((b) => b.state === "running").length;
  const conns = state.branches.reduce((s, b) => s + (b.connections || 0), 0);
  $("branch-count").textContent = `(${state.branches.length})`;
  $("summary").textContent = `${shownRows.length} shown · ${running} running · ${conns} connections`;
  window.riftStats.renderedAt = performance.now();
  window.riftStats.lastRenderMs = window.riftStats.renderedAt - t0;
  window.riftStats.rows = shownRows.length;
  window.riftStats.loads++;
}

// ---- one branch ----

async function refreshBranch() {
  const name = state.arg;
  const [page, conns] = await Promise.all([
    api("GET", "/v1/dashboard/branches/" + encodeURIComponent(name)),
    api("GET", "/v1/dashboard/connections"),
    loadBranches(),
  ]);
  const b = state.byName.get(name);
  if (!b) {
    showError(`branch "${name}" does not exist (any more)`);
    return;
  }
  showError("");
  const st = shownState(b);
  $("b-name").textContent = name;
  $("b-state").textContent = st;
  $("b-state").className = "badge " + st;
  $("b-parent").textContent = b.parent ? "from " + b.parent : "from the base";
  $("b-url").textContent = state.revealed.get(name) || page.url;
  $("b-reveal").hidden = !page.has_password || state.revealed.has(name);
  $("view-branch").dataset.name = name;
  $("view-branch").dataset.state = st;
  $("b-start").disabled = b.state !== "stopped";
  $("b-stop").disabled = b.state === "stopped";
  const facts = [
    ["Own bytes", bytes(b.bytes_own), b.bytes_own], ["Shared bytes", bytes(b.bytes_shared),
      b.bytes_shared],
    ["Own bytes on disk", `${bytes(b.bytes_own_disk || 0)} compressed (estimate)`,
      b.bytes_own_disk || 0],
    ["Created", `${ago(b.created)} (${b.created})`], ["Expires", b.expires ? `${until(b.expires)} (${b.expires})` : "never"],
    ["Connections", b.connections || 0], ["Kept sessions", b.pooled || 0],
    ["Starts", b.starts || 0], ["Server port", b.port || "–"],
    ["Children", b.children], ["Layers", b.chain_depth],
    ["Size limit", b.max_size ? bytes(b.max_size) : "none"], ["Database", b.database],
  ];
  if (b.labels) facts.push(["Labels", Object.entries(b.labels).map(([k, v]) => k + "=" + v).join(", ")]);
  if (b.last_error) facts.push(["Last error", b.last_error]);
  $("b-facts").innerHTML = facts.map(([k, v, raw]) =>
    `<dt>${esc(k)}</dt><dd${raw != null ? ` data-bytes="${raw}"` : ""}>${esc(v)}</dd>`).join("");
  const h = page.history;
  $("b-chart-own").innerHTML = chart(h ? h.t : [], [{ name: "own", values: h ? h.own : [] }], bytes);
  $("b-chart-conns").innerHTML = chart(h ? h.t : [], [{ name: "connections", values: h ? h.conns : [] }], String);
  $("b-sessions").innerHTML = sessionRows(conns.sessions.filter((s) => s.branch === name), false);
  // the DDL log is asked for once when the page opens; no diff here: it starts servers, so it
  // runs only from its button (a POST with the CSRF token)
  if (state.extrasFor !== name) {
    state.extrasFor = name;
    optionalSection(name, "log", "b-ddl").catch(() => {});
  }
  await serverLog(name);
}

// The DDL log and the diff appear as soon as riftd's API has them (404: not there, hidden).
async function optionalSection(name, what, id) {
  const r = await fetch(`/v1/branches/${encodeURIComponent(name)}/${what}`,
    { credentials: "same-origin", cache: "no-store" });
  if (!r.ok) {
    $(id).hidden = true;
    return;
  }
  const type = r.headers.get("Content-Type") || "";
  const body = type.includes("json") ? await r.json() : await r.text();
  // the branch's own text (its superuser can write anything there): only ever textContent
  $(id + "-text").textContent = what === "log" && typeof body === "object" ? ddlText(body)
    : typeof body === "object" ? JSON.stringify(body, null, 2) : body;
  $(id).hidden = false;
}

// `rift log`'s text: one statement per entry, oldest first, under its time, role and database.
function ddlText(log) {
  const list = Array.isArray(log.entries) ? log.entries : [];
  if (!list.length) return "No DDL since the branch was created.";
  const head = log.dropped ? `(${log.dropped} older statements not shown)\n\n` : "";
  return head + list.map((e) => `-- ${e.time} ${e.role}@${e.database}${e.truncated ? " (cut)" : ""}\n` +
    `${e.statement}`).join("\n\n");
}

async function serverLog(name) {
  const r = await api("GET", `/v1/dashboard/branches/${encodeURIComponent(name)}/serverlog`);
  const pre = $("b-log");
  const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  const text = r.log || "(nothing logged yet: the server has not run)";
  if (pre.textContent !== text) {
    pre.textContent = text; // the server's text: never markup
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }
  $("b-log-note").textContent = r.truncated ? "(last 64 KiB)" : "";
}

async function reveal(name, codeId) {
  const r = await api("POST", `/v1/dashboard/branches/${encodeURIComponent(name)}/password`);
  state.revealed.set(name, r.url);
  $(codeId).textContent = r.url;
  return r.url;
}

async function copyUrl(name, codeId) {
  const url = state.revealed.get(name) || (await reveal(name, codeId));
  await navigator.clipboard.writeText(url).then(
    () => ($("live").textContent = "URL copied"),
    () => showError("the browser refused the clipboard; select the URL and copy it"));
}

function action(verb) {
  return async () => {
    const name = state.arg;
    try {
      await api("POST", `/v1/branches/${encodeURIComponent(name)}/${verb}`);
      if (verb === "reset") state.revealed.delete(name);
      showError("");
    } catch (e) {
      showError(e.message);
    }
    refresh();
  };
}
$("b-diff-run").addEventListener("click", async () => {
  const name = state.arg, btn = $("b-diff-run"), pre = $("b-diff-text");
  btn.disabled = true;
  $("b-diff-note").textContent = "comparing…";
  try {
    const d = await api("POST", `/v1/dashboard/branches/${encodeURIComponent(name)}/diff?rows=20`);
    if (state.arg !== name) return;
    pre.textContent = JSON.stringify(d, null, 2); // the server's text: never markup
    pre.hidden = false;
    $("b-diff-note").textContent = "as of " + new Date().toLocaleTimeString();
  } catch (e) {
    $("b-diff-note").textContent = "";
    showError(e.message);
  } finally {
    btn.disabled = false;
  }
});
$("b-start").addEventListener("click", action("start"));
$("b-stop").addEventListener("click", action("stop"));
$("b-reset").addEventListener("click", action("reset"));
$("b-reveal").addEventListener("click", () => reveal(state.arg, "b-url").then(
  () => ($("b-reveal").hidden = true), (e) => showError(e.message)));
$("b-copy").addEventListener("click", () => copyUrl(state.arg, "b-url").catch((e) => showError(e.message)));

$("b-delete").addEventListener("click", () => {
  $("d-name").textContent = state.arg;
  $("d-confirm").value = "";
  $("d-ok").disabled = true;
  $("delete-dialog").showModal();
  $("d-confirm").focus();
});
$("d-confirm").addEventListener("input", () => ($("d-ok").disabled = $("d-confirm").value !== state.arg));
$("d-cancel").addEventListener("click", () => $("delete-dialog").close());
$("delete-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const name = state.arg;
  if ($("d-confirm").value !== name) return;   // typed the name, or nothing happens
  $("delete-dialog").close();
  try {
    await api("DELETE", "/v1/branches/" + encodeURIComponent(name));
    state.revealed.delete(name);
    location.hash = "#/branches";
  } catch (e) {
    showError(e.message);
  }
});

// ---- Create ----

async function refreshCreate() {
  if (await loadBranches())
    $("c-branches").innerHTML = state.branches.map((b) => `<option value="${esc(b.name)}">`).join("");
}

function parseTtl(s) {
  const m = s.trim().match(/^(\d+)\s*([smhd]?)$/);
  if (!m) return null;
  return Number(m[1]) * { "": 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2]];
}

function parseLabels(s) {
  const out = {};
  for (const part of s.split(",").map((p) => p.trim()).filter(Boolean)) {
    const i = part.indexOf("=");
    if (i <= 0) throw new Error(`label "${part}" should look like key=value`);
    out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

$("create-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const name = $("c-name").value.trim();
  const body = { name };
  try {
    if ($("c-from").value.trim()) body.from = $("c-from").value.trim();
    if ($("c-ttl").value.trim()) {
      const ttl = parseTtl($("c-ttl").value);
      if (!ttl) throw new Error("TTL wants a duration like 90s, 30m, 2h or 7d");
      body.ttl_seconds = ttl;
    }
    const labels = parseLabels($("c-labels").value);
    if (Object.keys(labels).length) body.labels = labels;
    await api("POST", "/v1/branches", body);
    const page = await api("GET", "/v1/dashboard/branches/" + encodeURIComponent(name));
    $("c-done").hidden = false;
    $("c-link").textContent = name;
    $("c-link").href = "#/branch/" + encodeURIComponent(name);
    $("c-url").textContent = page.url;
    $("c-reveal").hidden = !page.has_password;
    $("c-done").dataset.name = name;
    showError("");
  } catch (e) {
    showError(e.message);
  }
});
$("c-reveal").addEventListener("click", () => reveal($("c-done").dataset.name, "c-url").then(
  () => ($("c-reveal").hidden = true), (e) => showError(e.message)));
$("c-copy").addEventListener("click", () =>
  copyUrl($("c-done").dataset.name, "c-url").catch((e) => showError(e.message)));

// ---- Storage ----

async function refreshStorage() {
  const [[s], ] = await Promise.all([poll("/v1/dashboard/storage"), loadBranches()]);
  const last = (a) => (a && a.length ? a[a.length - 1] : null);
  const own = state.branches.reduce((n, b) => n + b.bytes_own, 0);
  const cards = [
    ["Disk used (filesystem)", s.fs_size ? bytes(last(s.fs_used)) + " of " + bytes(s.fs_size) : "–", "fs"],
    ["Disk free", bytes(s.fs_free), "free"],
    ["Store (RocksDB) on disk", bytes(last(s.db_bytes)), "db"],
    ["Bases", bytes(s.bases.reduce((n, b) => n + b.bytes, 0)), "bases"],
    ["Branches' own bytes", bytes(own), "own", own],
  ];
  $("s-cards").innerHTML = cards.map(([k, v, id, raw]) =>
    `<div class="card" id="s-card-${id}"${raw != null ? ` data-bytes="${raw}"` : ""}>${esc(k)}<b>${esc(v)}</b></div>`).join("");
  $("s-chart-disk").innerHTML = chart(s.t, [
    { name: "filesystem used", values: s.fs_used }, { name: "RocksDB", values: s.db_bytes },
    { name: "branches own", values: s.own_total }], bytes);
  $("s-chart-top").innerHTML = chart(s.t, s.top.map((b) => ({ name: b.name, values: b.own })), bytes);
  $("s-bases").innerHTML = s.bases.map((b) =>
    `<tr><td>${esc(b.generation)}</td><td class="num" data-bytes="${b.bytes}">${bytes(b.bytes)}</td>` +
    `<td class="num">${b.branches}</td></tr>`).join("");
  const all = state.branches.slice().sort((a, b) => b.bytes_own - a.bytes_own);
  const list = all.slice(0, 200); // the biggest: the rest free little
  $("s-more").textContent = all.length > list.length ? `and ${all.length - list.length} smaller branches` : "";
  $("s-branches").innerHTML = list.map((b) =>
    `<tr data-name="${esc(b.name)}"><td><a href="#/branch/${encodeURIComponent(b.name)}">${esc(b.name)}</a></td>` +
    `<td class="num own" data-bytes="${b.bytes_own}">${bytes(b.bytes_own)}</td>` +
    `<td class="num shared" data-bytes="${b.bytes_shared}">${bytes(b.bytes_shared)}</td>` +
    `<td class="num">${b.children}</td></tr>`).join("");
}

// ---- Connections ----

function sessionRows(list, withBranch) {
  return list.map((s) =>
    `<tr data-branch="${esc(s.branch)}" data-mode="${esc(s.mode)}"><td>${esc(s.client)}</td>` +
    (withBranch ? `<td>${s.branch ? `<a href="#/branch/${encodeURIComponent(s.branch)}">${esc(s.branch)}</a>` : "–"}</td>` : "") +
    `<td>${esc(s.user || "–")}</td><td>${esc(s.database || "–")}</td><td>${dur(s.age_s)}</td>` +
    `<td>${esc(s.mode)}</td><td>${s.tls ? "TLS" : "plain"}</td>` +
    `<td class="num">${bytes(s.bytes_in)} / ${bytes(s.bytes_out)}</td></tr>`).join("");
}

async function refreshConnections() {
  const [k] = await poll("/v1/dashboard/connections");
  const per = new Map();
  for (const s of k.sessions) {
    if (!s.branch) continue;
    const p = per.get(s.branch) || { n: 0, spliced: 0, relayed: 0 };
    p.n++;
    if (s.mode === "spliced") p.spliced++;
    if (s.mode === "relayed") p.relayed++;
    per.set(s.branch, p);
  }
  $("k-count").textContent = `(${k.sessions.length} now)`;
  const c = k.closed;
  $("k-cards").innerHTML = [
    ["Open now", k.sessions.length], ["Spliced now", k.sessions.filter((s) => s.mode === "spliced").length],
    ["Relayed now", k.sessions.filter((s) => s.mode === "relayed").length],
    ["Closed (relayed / spliced)", `${c.relayed_sessions} / ${c.spliced_sessions}`],
    ["Bytes of closed (relayed / spliced)", `${bytes(c.relayed_bytes)} / ${bytes(c.spliced_bytes)}`],
  ].map(([a, b]) => `<div class="card">${esc(a)}<b>${esc(b)}</b></div>`).join("");
  const h = k.history;
  $("k-chart").innerHTML = chart(h.t, [{ name: "all branches", values: h.total }]
    .concat(h.top.map((b) => ({ name: b.name, values: b.conns }))), String);
  $("k-branches").innerHTML = [...per.entries()].sort((a, b) => b[1].n - a[1].n).map(([name, p]) =>
    `<tr data-name="${esc(name)}"><td><a href="#/branch/${encodeURIComponent(name)}">${esc(name)}</a></td>` +
    `<td class="num">${p.n}</td><td class="num">${p.spliced}</td><td class="num">${p.relayed}</td></tr>`).join("");
  $("k-sessions").innerHTML = sessionRows(k.sessions, true);
}

// ---- charts: hand-drawn SVG lines ----

const COLORS = ["#2463b3", "#1c7c3a", "#a86a00", "#b3261e", "#6b3fa0", "#0f7c8c", "#7a5c3e", "#c2185b", "#455a64"];

function chart(t, series, fmt) {
  const W = 520, H = 170, L = 70, R = 10, T = 10, B = 22;
  if (!t || t.length === 0) return `<svg class="chart" width="${W}" height="${H}"><text x="${L}" y="${H / 2}">no samples yet (one every 10 s)</text></svg>`;
  let max = 0;
  for (const s of series) for (const v of s.values) if (v != null && v > max) max = v;
  if (max === 0) max = 1;
  const t0 = t[0], t1 = t[t.length - 1] > t0 ? t[t.length - 1] : t0 + 1;
  const x = (ts) => L + ((ts - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / max) * (H - T - B);
  let out = `<svg class="chart" width="${W}" height="${H + 14 * Math.ceil(series.length / 3)}" viewBox="0 0 ${W} ${H + 14 * Math.ceil(series.length / 3)}">`;
  out += `<line class="axis" x1="${L}" y1="${T}" x2="${L}" y2="${H - B}"/><line class="axis" x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}"/>`;
  out += `<text x="${L - 4}" y="${T + 8}" text-anchor="end">${esc(fmt(max))}</text><text x="${L - 4}" y="${H - B}" text-anchor="end">0</text>`;
  out += `<text x="${L}" y="${H - 6}">${esc(new Date(t0 * 1000).toLocaleTimeString())}</text>`;
  out += `<text x="${W - R}" y="${H - 6}" text-anchor="end">${esc(new Date(t1 * 1000).toLocaleTimeString())}</text>`;
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = [];
    s.values.forEach((v, j) => { if (v != null) pts.push(`${x(t[j]).toFixed(1)},${y(v).toFixed(1)}`); });
    if (pts.length === 1) pts.push(pts[0].replace(/^[\d.]+/, (n) => String(Number(n) + 2)));
    out += `<polyline stroke="${color}" points="${pts.join(" ")}"/>`;
    const lx = L + (i % 3) * 150, ly = H + 10 + 14 * Math.floor(i / 3);
    out += `<rect x="${lx}" y="${ly - 8}" width="10" height="3" fill="${color}"/><text x="${lx + 14}" y="${ly - 4}">${esc(s.name)}</text>`;
  });
  return out + "</svg>";
}

start();
