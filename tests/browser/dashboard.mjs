// Drives the wpaas dashboard in a real Chromium (Debian's, not Playwright's
// download) the way a person would: sign in, scale, set a config var,
// roll back, tail logs, watch metrics, use a phone-sized window and the
// keyboard, sign out. One line per step; on the first failure a message,
// SCREENSHOTS/failure.png and exit code 1.
//
// Env: WPAAS_DASHBOARD (the API's base URL, ending in /), WPAAS_TOKEN,
// WPAAS_ROUTER (http://HOST:PORT), WPAAS_APP (deployed, at v1, GREETING
// unset), SCREENSHOTS (a directory), CHROMIUM (default /usr/bin/chromium).
// DASHBOARD_APP_JS (optional): a file served in place of
// /dashboard/app.js, to try a changed script against a built server.
import { chromium } from "playwright-core";
import http from "node:http";
import fs from "node:fs";
import path from "node:path";

const need = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`FAIL: ${name} is not set`);
    process.exit(1);
  }
  return value;
};
const base = need("WPAAS_DASHBOARD").replace(/\/?$/, "/");
const token = need("WPAAS_TOKEN");
const router = new URL(need("WPAAS_ROUTER"));
const app = need("WPAAS_APP");
const shots = need("SCREENSHOTS");
fs.mkdirSync(shots, { recursive: true });
fs.rmSync(path.join(shots, "failure.png"), { force: true });

const STEP_MS = 10_000;
const TOTAL_MS = 100_000;

let browser = null;
let page = null;

async function fail(message) {
  // Playwright colours its call logs; a test log wants plain text.
  console.error(`FAIL: ${message.replace(/\x1b\[[0-9;]*m/g, "")}`);
  if (page) {
    try { await page.screenshot({ path: path.join(shots, "failure.png"), fullPage: true, timeout: 3000 }); }
    catch (err) { console.error(`(no failure.png: ${err.message})`); }
    try { console.error(`page at ${page.url()}:\n${(await page.locator("body").innerText({ timeout: 1000 })).slice(0, 2000)}`); }
    catch { /* the page is gone */ }
  }
  process.exit(1);
}

// The whole run is bounded even if a step's own timeout does not fire
// (a hung browser): the caller gets an answer, not a stuck test.
const overall = setTimeout(() => fail(`the whole run took over ${TOTAL_MS} ms`), TOTAL_MS);

async function step(name, body) {
  const started = Date.now();
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${STEP_MS} ms`)), STEP_MS);
  });
  try {
    const note = await Promise.race([body(), timeout]);
    console.log(`ok   ${name} (${Date.now() - started} ms)${note ? `: ${note}` : ""}`);
  } catch (err) {
    await fail(`${name}: ${err.message}`);
  } finally {
    clearTimeout(timer);
  }
}

// Polls `probe` until it returns a truthy value; throws `what` with the
// last value seen (what was there explains a failure).
async function until(what, probe, ms = 8000, every = 50) {
  const deadline = Date.now() + ms;
  let seen;
  for (;;) {
    seen = await probe();
    if (seen && seen.ok !== false) return seen;
    if (Date.now() > deadline) throw new Error(`${what}; last seen: ${JSON.stringify(seen)}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

// A GET through the router. Node's fetch refuses to set Host, so
// node:http; the app is chosen by `Host: APP.localhost`.
function routerGet(pathAndQuery) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: router.hostname, port: router.port, path: pathAndQuery, method: "GET",
      headers: { host: `${app}.localhost` }, timeout: 5000,
    }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => { body += chunk; });
      res.on("end", () => resolve({ status: res.statusCode, body }));
    });
    req.on("timeout", () => req.destroy(new Error(`router GET ${pathAndQuery} timed out`)));
    req.on("error", reject);
    req.end();
  });
}

const greeting = (want) => until(`the router answers GREETING=${want}`, async () => {
  const got = await routerGet("/");
  return { ok: got.status === 200 && got.body.includes(`GREETING=${want}`), ...got };
});

// A fetch from inside the page: same origin, with the session cookie.
const pageFetch = (url) => page.evaluate(async (url) => {
  const response = await fetch(url, { credentials: "same-origin" });
  return { status: response.status, body: await response.text() };
}, url);

const shot = (name) => page.screenshot({ path: path.join(shots, name), fullPage: true });
const nav = (name) => page.getByRole("navigation").getByRole("link", { name, exact: true });
const heading = (name) => page.getByRole("heading", { level: 1, name, exact: true });

try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    // Root (CI) cannot use Chromium's user-namespace sandbox.
    args: ["--no-sandbox"],
    timeout: STEP_MS,
  });
} catch (err) {
  await fail(`launching Chromium: ${err.message}`);
}
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
page = await context.newPage();
// Shorter than a step, so a stuck locator names itself in the failure.
page.setDefaultTimeout(STEP_MS - 2000);
const pageErrors = [];
page.on("pageerror", (err) => pageErrors.push(err.message));
if (process.env.DASHBOARD_APP_JS) {
  const script = fs.readFileSync(process.env.DASHBOARD_APP_JS, "utf8");
  await page.route("**/dashboard/app.js", (route) =>
    route.fulfill({ contentType: "text/javascript", body: script }));
}
console.log(`Chromium ${browser.version()}, dashboard ${base}, router ${router.origin}, app ${app}`);

await step("a. / redirects to the sign-in form; a wrong token is refused; the token signs in", async () => {
  await page.goto(base);
  if (!new URL(page.url()).pathname.startsWith("/dashboard")) throw new Error(`/ led to ${page.url()}`);
  const input = page.getByLabel("API token");
  await input.waitFor();
  await input.fill("not-the-token");
  await page.getByRole("button", { name: "Sign in" }).click();
  const error = page.locator("#signin-error");
  await until("a wrong token shows an error", async () => (await error.textContent()).trim());
  const refused = (await error.textContent()).trim();
  await input.fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await heading("Apps").waitFor().catch(async () => {
    throw new Error(`WPAAS_TOKEN did not sign in; the form says "${(await error.textContent()).trim()}"`);
  });
  await page.getByRole("button", { name: "Sign out" }).waitFor();
  return `wrong token said "${refused}"`;
});

await step("b. the apps list shows the app deployed by the CLI", async () => {
  await page.getByRole("link", { name: app, exact: true }).waitFor();
  await shot("apps.png");
});

await step("c. overview shows v1; More web replicas scales web to 2", async () => {
  await page.getByRole("link", { name: app, exact: true }).click();
  await heading(app).waitFor();
  await page.getByText(/^v1: /).waitFor();
  await shot("overview.png");
  await page.getByRole("button", { name: "More web replicas" }).click();
  await until("#count-web shows 2", async () => (await page.locator("#count-web").textContent()) === "2");
  // What the server now holds, asked with the page's own session.
  const ps = await until("the API lists 2 web replicas", async () => {
    const got = await pageFetch(`${base}apps/${encodeURIComponent(app)}/ps`);
    if (got.status !== 200) return { ok: false, ...got };
    const web = JSON.parse(got.body).find((p) => (p.type ?? p.kind) === "web");
    return { ok: web?.quantity === 2 && web.replicas.length === 2, web };
  });
  return ps.web.replicas.map((r) => `${r.name} ${r.state}`).join(", ");
});

let configVersion = 0;
await step("d. Config vars: adding GREETING=from-chromium makes a release the router serves", async () => {
  await nav("Config vars").click();
  await heading(`${app}: config vars`).waitFor();
  await page.getByLabel("Key", { exact: true }).fill("GREETING");
  await page.getByLabel("Value", { exact: true }).fill("from-chromium");
  await page.getByRole("button", { name: "Add", exact: true }).click();
  const status = await until("#status says Set GREETING: release vN", async () => {
    const text = (await page.locator("#status").textContent()).trim();
    return /^Set GREETING: release v\d+$/.test(text) && text;
  });
  configVersion = Number(status.match(/v(\d+)$/)[1]);
  await greeting("from-chromium");
  const row = page.getByRole("row").filter({ has: page.getByRole("rowheader", { name: "GREETING", exact: true }) });
  await row.getByRole("button", { name: "Reveal" }).click();
  await until("the revealed value shows", async () =>
    (await page.locator('code[data-key="GREETING"]').textContent()) === "from-chromium");
  await shot("config.png");
  return status;
});

await step("e. Activity: Roll back to v1 (confirmed) makes a release; GREETING is unset again", async () => {
  await nav("Activity").click();
  await heading(`${app}: activity`).waitFor();
  await page.getByRole("cell", { name: `v${configVersion}`, exact: true }).waitFor();
  let asked = null;
  page.once("dialog", (dialog) => { asked = dialog.message(); dialog.accept(); });
  await page.getByRole("button", { name: "Roll back to v1", exact: true }).click();
  const status = await until("#status says Rolled back to v1", async () => {
    const text = (await page.locator("#status").textContent()).trim();
    return text.startsWith("Rolled back to v1") && text;
  });
  if (!asked) throw new Error("no confirm() was shown before rolling back");
  await page.getByRole("cell", { name: `v${configVersion + 1}`, exact: true }).waitFor();
  await greeting("unset");
  // v1 came from a build: its output opens under the list.
  await page.getByRole("button", { name: "Build output" }).first().click();
  const output = page.locator("#release-build-output");
  await output.waitFor();
  const built = (await output.textContent()).trim();
  if (!built.includes("----->")) throw new Error(`v1's build output is not a build log: ${built.slice(0, 200)}`);
  await shot("activity.png");
  return `confirm said "${asked}"; ${status}; build output ${built.split("\n").length} lines`;
});

await step("f. Logs: a router request appears in #log within 2 s", async () => {
  await nav("Logs").click();
  await heading(`${app}: logs`).waitFor();
  const log = page.locator("#log");
  // The stream's backlog arriving means the EventSource is connected.
  await until("the log backlog arrives", async () => (await log.textContent()).length > 0);
  const unique = `browser-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  const sent = Date.now();
  const got = await routerGet(`/?browser=${unique}`);
  if (got.status !== 200) throw new Error(`router answered ${got.status}`);
  await page.waitForFunction((u) => document.getElementById("log").textContent.includes(u), unique,
    { timeout: 2000, polling: 10 }).catch(() => { throw new Error(`${unique} not in #log after 2000 ms`); });
  const ms = Date.now() - sent;
  await shot("logs.png");
  return `log latency ${ms} ms`;
});

await step("g. Metrics: the request-rate plot counts new requests", async () => {
  if (await nav("Metrics").count() === 0) return "SKIPPED: no Metrics tab in this dashboard yet";
  await nav("Metrics").click();
  const plot = page.locator("#plot-rate");
  await plot.waitFor();
  const before = Number(await plot.getAttribute("data-total"));
  for (let i = 0; i < 20; i++) await routerGet(`/?metrics=${i}`);
  // The tab re-fetches every 2 s.
  const after = await until("data-total of #plot-rate grows", async () => {
    const now = Number(await plot.getAttribute("data-total"));
    return now > before && now;
  }, 9000, 200);
  await shot("metrics.png");
  return `data-total ${before} -> ${after}`;
});

await step("h. a phone-sized window; the keyboard opens an app", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByRole("link", { name: "wpaas", exact: true }).click();
  await heading("Apps").waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await shot("mobile-apps.png");
  // route() focuses <main>; Tab moves on to the first link in it.
  await until(`Tab reaches the ${app} link`, async () => {
    const focused = await page.evaluate(() => {
      const a = document.activeElement;
      return a && a.tagName === "A" && a.closest("main") ? a.textContent : null;
    });
    if (focused === app) return true;
    await page.keyboard.press("Tab");
    return { ok: false, focused };
  }, 3000, 0);
  await page.keyboard.press("Enter");
  await heading(app).waitFor();
  if (!decodeURIComponent(new URL(page.url()).hash).startsWith(`#/apps/${app}`)) throw new Error(`Enter led to ${page.url()}`);
  await shot("mobile-overview.png");
  return overflow > 0 ? `note: the apps page is ${overflow} px wider than the phone` : "no sideways scrolling";
});

await step("i. Sign out: the sign-in form is back and the API answers 401", async () => {
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("API token").waitFor();
  const got = await pageFetch(`${base}apps`);
  if (got.status !== 401) throw new Error(`GET /apps after sign-out answered ${got.status}`);
});

if (pageErrors.length) await fail(`uncaught errors in the page: ${pageErrors.join("; ")}`);
clearTimeout(overall);
await browser.close();
console.log(`all steps passed; screenshots in ${shots}`);
