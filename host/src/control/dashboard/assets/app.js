// The wpaas dashboard: every view is drawn from the JSON API the CLI uses,
// with this browser's session cookie; changes send the session's CSRF
// token. No framework and no build step: DOM nodes are made with `el`,
// whose text is always text (never parsed as HTML).
"use strict";

let csrf = null;
let stopLive = null;

const main = () => document.getElementById("main");

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function say(message, kind) {
  const status = document.getElementById("status");
  status.replaceChildren(el("p", { class: kind || "" }, message));
  clearTimeout(say.timer);
  say.timer = setTimeout(() => status.replaceChildren(), 6000);
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && csrf) headers["x-csrf-token"] = csrf;
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let value = null;
  try { value = text ? JSON.parse(text) : null; } catch { value = text; }
  if (!response.ok) {
    const message = value && value.error ? value.error : `${response.status} ${text}`;
    if (response.status === 401 && !path.startsWith("/dashboard/session")) {
      csrf = null;
      showSignIn(message);
    }
    throw new ApiError(response.status, message);
  }
  return value;
}

// ---- sign in / out --------------------------------------------------------

function showSignIn(message) {
  if (stopLive) stopLive();
  document.getElementById("signout").hidden = true;
  document.getElementById("nav").replaceChildren();
  const input = el("input", { id: "token", type: "password", autocomplete: "current-password", required: true });
  const error = el("p", { class: "error", id: "signin-error", role: "alert" }, message || "");
  const form = el("form", { class: "signin", onsubmit: async (event) => {
    event.preventDefault();
    try {
      const signed = await api("POST", "/dashboard/session", { token: input.value });
      csrf = signed.csrf;
      route();
    } catch (err) {
      error.textContent = err.message;
    }
  } },
    el("h1", {}, "Sign in to wpaas"),
    el("label", { for: "token" }, "API token"),
    input,
    el("p", { class: "muted" }, "The token is in WPAAS_HOME/token on the server (", el("code", {}, "cat ~/.wpaas/token"), ")."),
    error,
    el("button", { class: "primary", type: "submit" }, "Sign in"));
  main().replaceChildren(form);
  input.focus();
}

async function signOut() {
  try { await api("DELETE", "/dashboard/session"); } catch { /* signed out anyway */ }
  csrf = null;
  showSignIn("Signed out.");
}

// ---- routing --------------------------------------------------------------

const views = {
  overview: ["Overview", overview],
  activity: ["Activity", activity],
  config: ["Config vars", config],
  metrics: ["Metrics", metrics],
  logs: ["Logs", logs],
  builds: ["Builds", builds],
};

async function route() {
  if (stopLive) { stopLive(); stopLive = null; }
  if (!csrf) {
    try { csrf = (await api("GET", "/dashboard/session")).csrf; }
    catch { showSignIn(""); return; }
  }
  document.getElementById("signout").hidden = false;
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const nav = document.getElementById("nav");
  try {
    if (parts[0] === "apps" && parts[1]) {
      const app = parts[1];
      const view = views[parts[2]] ? parts[2] : "overview";
      nav.replaceChildren(...Object.entries(views).map(([key, [label]]) =>
        el("a", { href: `#/apps/${encodeURIComponent(app)}/${key}`, "aria-current": key === view ? "page" : null }, label)));
      document.title = `${app} · ${views[view][0]} · wpaas`;
      await views[view][1](app);
    } else {
      nav.replaceChildren();
      document.title = "Apps · wpaas";
      await appsList();
    }
  } catch (err) {
    if (err.status !== 401) main().replaceChildren(el("p", { class: "error", role: "alert" }, err.message));
  }
  main().focus();
}

// ---- apps -----------------------------------------------------------------

async function appsList() {
  const [apps, traffic] = await Promise.all([api("GET", "/apps"), api("GET", "/metrics/apps")]);
  const now = Object.fromEntries(traffic.map((t) => [t.app, t]));
  const rows = apps.map((app) => {
    const t = now[app.name] || { requests_per_minute: 0, error_rate: 0, web_replicas: 0 };
    const status = !app.current ? el("span", { class: "muted" }, "not deployed")
      : t.web_replicas === 0 ? el("span", { class: "muted" }, "no web running")
        : t.error_rate > 0.05 ? el("span", { class: "error" }, `${(t.error_rate * 100).toFixed(0)}% errors`)
          : el("span", { class: "ok" }, "up");
    return el("tr", {},
      el("td", {}, el("a", { href: `#/apps/${encodeURIComponent(app.name)}` }, app.name)),
      el("td", {}, status),
      el("td", {}, app.current ? `v${app.current}` : "–"),
      el("td", {}, app.autoscale ? `${t.web_replicas} (autoscaled ${app.autoscale.min}..${app.autoscale.max})` : String(t.web_replicas)),
      el("td", {}, String(t.requests_per_minute)),
      el("td", { class: "optional" }, app.domains.join(", ")));
  });
  main().replaceChildren(
    el("h1", {}, "Apps"),
    el("section", {}, apps.length === 0
      ? el("p", {}, "No apps yet. Deploy one with ", el("code", {}, "wpaas deploy -a NAME"), ".")
      : el("table", {},
        el("thead", {}, el("tr", {}, el("th", {}, "App"), el("th", {}, "Status"), el("th", {}, "Release"),
          el("th", {}, "Web replicas"), el("th", {}, "Requests/min"), el("th", { class: "optional" }, "Domains"))),
        el("tbody", {}, rows))));
}

async function overview(app) {
  const [info, ps] = await Promise.all([
    api("GET", `/apps/${encodeURIComponent(app)}`),
    api("GET", `/apps/${encodeURIComponent(app)}/ps`),
  ]);
  const release = info.release;
  const formation = el("tbody", {}, ps.filter((p) => p.type !== "release" && p.type !== "run").map((p) => {
    const count = el("output", { "aria-live": "polite", id: `count-${p.type}` }, String(p.quantity));
    const scale = async (delta) => {
      const to = Math.max(0, Number(count.textContent) + delta);
      try {
        await api("PATCH", `/apps/${encodeURIComponent(app)}/formation`, { [p.type]: to });
        count.textContent = String(to);
        say(`Scaled ${p.type} to ${to}`, "ok");
      } catch (err) { say(err.message, "error"); }
    };
    const controls = p.autoscale
      ? el("span", { class: "muted" }, `autoscaled ${p.autoscale.min}..${p.autoscale.max}, now ${p.quantity}`)
      : el("span", { class: "stepper" },
        el("button", { type: "button", "aria-label": `Fewer ${p.type} replicas`, onclick: () => scale(-1) }, "−"),
        count,
        el("button", { type: "button", "aria-label": `More ${p.type} replicas`, onclick: () => scale(1) }, "+"));
    const replicas = p.replicas.map((r) => `${r.name}${r.node ? ` (${r.node})` : ""}: ${r.state}`).join(", ");
    return el("tr", {}, el("th", { scope: "row" }, p.type), el("td", {}, el("code", {}, p.command)), el("td", {}, controls),
      el("td", { class: "optional" }, replicas || el("span", { class: "muted" }, "none running")));
  }));
  main().replaceChildren(
    el("h1", {}, app),
    el("section", {},
      el("h2", {}, "Current release"),
      release ? el("p", {}, `v${release.version}: ${release.description} (${release.created_at})`)
        : el("p", {}, "Not deployed yet. From the app's directory:"),
      el("pre", {}, `wpaas deploy -a ${app}\n# or: git remote add wpaas ${location.origin}/git/${app}.git && git push wpaas main`),
      el("p", {}, "Open: ", el("a", { href: info.url }, info.url))),
    el("section", {},
      el("h2", {}, "Formation"),
      el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Type"), el("th", {}, "Command"), el("th", {}, "Replicas"),
        el("th", { class: "optional" }, "Running"))), formation)),
    el("section", {},
      el("h2", {}, "Domains"),
      info.app.domains.length ? el("ul", {}, info.app.domains.map((d) => el("li", {}, d)))
        : el("p", { class: "muted" }, `None; ${app}.localhost always works.`),
      el("h2", {}, "Health check"),
      el("p", {}, info.app.healthcheck.enabled
        ? `GET ${info.app.healthcheck.path} within ${info.app.healthcheck.timeout_ms} ms` : "off")));
}

async function activity(app) {
  const [releases, builds] = await Promise.all([
    api("GET", `/apps/${encodeURIComponent(app)}/releases`),
    api("GET", `/apps/${encodeURIComponent(app)}/builds`),
  ]);
  const buildOf = Object.fromEntries(builds.filter((b) => b.release).map((b) => [b.release, b]));
  const output = el("pre", { id: "release-build-output", hidden: true, tabindex: "0" });
  const showBuild = async (build) => {
    const got = await api("GET", `/apps/${encodeURIComponent(app)}/builds/${encodeURIComponent(build.id)}/output`);
    output.textContent = got.output;
    output.hidden = false;
    output.focus();
  };
  const current = releases.find((r) => r.status.state === "succeeded");
  const rows = releases.map((r) => el("tr", {},
    el("td", {}, `v${r.version}`),
    el("td", {}, r.description, buildOf[r.version]
      ? [" ", el("button", { type: "button", onclick: () => showBuild(buildOf[r.version]) }, "Build output")] : null),
    el("td", {}, r.status.state),
    el("td", { class: "optional" }, r.by || "–"),
    el("td", { class: "optional" }, r.created_at),
    el("td", {}, r === current || r.status.state !== "succeeded" ? null
      : el("button", { type: "button", class: "danger", onclick: async () => {
        if (!confirm(`Roll ${app} back to v${r.version}?`)) return;
        try {
          const done = await api("POST", `/apps/${encodeURIComponent(app)}/rollback`, { version: r.version });
          say(`Rolled back to v${done.rolled_back_to}: now v${done.release.version}`, "ok");
          route();
        } catch (err) { say(err.message, "error"); }
      } }, `Roll back to v${r.version}`))));
  main().replaceChildren(el("h1", {}, `${app}: activity`),
    el("section", {}, el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "Release"), el("th", {}, "What"), el("th", {}, "Status"),
        el("th", { class: "optional" }, "By"), el("th", { class: "optional" }, "When"), el("th", {}, ""))),
      el("tbody", {}, rows)), output));
}

async function config(app) {
  const path = `/apps/${encodeURIComponent(app)}/config`;
  const vars = await api("GET", path);
  const change = async (changes, what) => {
    try {
      await api("PATCH", path, changes);
      const releases = await api("GET", `/apps/${encodeURIComponent(app)}/releases`);
      say(`${what}: release v${releases[0].version}`, "ok");
      route();
    } catch (err) { say(err.message, "error"); }
  };
  const rows = Object.entries(vars).map(([key, value]) => {
    const shown = el("code", { "data-key": key }, "••••••••");
    let revealed = false;
    return el("tr", {},
      el("th", { scope: "row" }, key),
      el("td", {}, shown),
      el("td", {},
        el("button", { type: "button", onclick: (event) => {
          revealed = !revealed;
          shown.textContent = revealed ? value : "••••••••";
          event.target.textContent = revealed ? "Hide" : "Reveal";
        } }, "Reveal"), " ",
        el("button", { type: "button", onclick: () => {
          const next = prompt(`New value of ${key}`, value);
          if (next !== null) change({ [key]: next }, `Set ${key}`);
        } }, "Edit"), " ",
        el("button", { type: "button", class: "danger", onclick: () => {
          if (confirm(`Remove ${key}?`)) change({ [key]: null }, `Removed ${key}`);
        } }, "Remove")));
  });
  const key = el("input", { id: "new-key", required: true, pattern: "[A-Za-z_][A-Za-z0-9_]*", autocomplete: "off" });
  const value = el("input", { id: "new-value", required: true, autocomplete: "off" });
  main().replaceChildren(el("h1", {}, `${app}: config vars`),
    el("section", {},
      rows.length ? el("table", {}, el("tbody", {}, rows)) : el("p", { class: "muted" }, "No config vars."),
      el("h2", {}, "Add a config var"),
      el("form", { class: "inline", onsubmit: (event) => {
        event.preventDefault();
        change({ [key.value]: value.value }, `Set ${key.value}`);
      } },
        el("div", {}, el("label", { for: "new-key" }, "Key"), key),
        el("div", {}, el("label", { for: "new-value" }, "Value"), value),
        el("button", { class: "primary", type: "submit" }, "Add")),
      el("p", { class: "muted" }, "Each change makes a new release, like wpaas config:set.")));
}

// ---- metrics: SVG plots of the last hour, redrawn every 2 s ----------------

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  for (const child of children.flat(Infinity)) if (child) node.append(child);
  return node;
}

// A plot of `lines` ([{label, values, color, bars?}]) over the points' times.
function plot(id, title, unit, points, lines) {
  const width = 640, height = 180, left = 48, bottom = 22, top = 10;
  const max = Math.max(1e-9, ...lines.flatMap((l) => l.values.filter((v) => v !== null)));
  const x = (i) => left + (i * (width - left - 8)) / Math.max(1, points.length - 1);
  const y = (v) => top + (height - top - bottom) * (1 - v / max);
  const shapes = lines.map((line) => {
    if (line.bars) {
      const w = Math.max(1, (width - left - 8) / points.length - 1);
      return line.values.map((v, i) => v ? svg("rect", { x: x(i) - w / 2, y: y(v + (line.base ? line.base[i] : 0)),
        width: w, height: (height - top - bottom) * (v / max), fill: line.color }) : null);
    }
    const pts = line.values.map((v, i) => (v === null ? null : `${x(i)},${y(v)}`)).filter(Boolean).join(" ");
    // Dots too: a minute with requests between empty ones is a lone point.
    const dots = line.values.map((v, i) => (v === null || v === 0 ? null
      : svg("circle", { cx: x(i), cy: y(v), r: "3", fill: line.color })));
    return [svg("polyline", { points: pts, fill: "none", stroke: line.color, "stroke-width": "2" }), dots];
  });
  const label = (text, attrs) => { const t = svg("text", attrs); t.textContent = text; return t; };
  const first = points.length ? new Date(points[0].t * 1000).toLocaleTimeString() : "";
  const last = points.length ? new Date(points[points.length - 1].t * 1000).toLocaleTimeString() : "";
  const summary = lines.map((l) => `${l.label}: now ${fmt(l.values[l.values.length - 1])} ${unit}`).join("; ");
  const titleNode = svg("title"); titleNode.textContent = `${title}. ${summary}`;
  return el("figure", {},
    el("figcaption", {}, title, " ", lines.map((l) => el("span", { class: "key" }, el("span", { "aria-hidden": "true", "data-color": l.color }, "■ "), l.label, " "))),
    svg("svg", { id, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `${title}. ${summary}`, class: "plot" },
      titleNode,
      svg("line", { x1: left, y1: y(0), x2: width - 8, y2: y(0), stroke: "#9aa3b5" }),
      label(`${fmt(max)} ${unit}`, { x: 2, y: top + 10, "font-size": "11", fill: "#5b6478" }),
      label("0", { x: 2, y: y(0), "font-size": "11", fill: "#5b6478" }),
      label(first, { x: left, y: height - 4, "font-size": "11", fill: "#5b6478" }),
      label(last, { x: width - 70, y: height - 4, "font-size": "11", fill: "#5b6478" }),
      shapes));
}

function fmt(v) {
  if (v === null || v === undefined) return "–";
  return v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2);
}

async function metrics(app) {
  const body = el("div", {}, el("p", {}, "Loading…"));
  main().replaceChildren(el("h1", {}, `${app}: metrics`),
    el("p", { class: "muted" }, "Web requests over the last hour, a point a minute; redrawn every 2 s."), body);
  const draw = async () => {
    const series = await api("GET", `/apps/${encodeURIComponent(app)}/metrics`);
    const p = series.points;
    const total = p.reduce((sum, point) => sum + point.requests, 0);
    const rate = plot("plot-rate", "Requests per second", "req/s", p,
      [{ label: "requests", values: p.map((q) => q.requests / series.slot_seconds), color: "#3b4bd8" }]);
    rate.querySelector("svg").setAttribute("data-total", String(total));
    const ok = p.map((q) => q.by_class[1] + q.by_class[2]);
    const client = p.map((q) => q.by_class[3]);
    const server = p.map((q) => q.by_class[4]);
    body.replaceChildren(
      el("section", {}, rate),
      el("section", {}, plot("plot-latency", "Latency", "ms", p, [
        { label: "p50", values: p.map((q) => q.p50_ms), color: "#1e7b34" },
        { label: "p99", values: p.map((q) => q.p99_ms), color: "#b3261e" }])),
      el("section", {}, plot("plot-status", "Responses by status", "per min", p, [
        { label: "2xx/3xx", values: ok, color: "#1e7b34", bars: true },
        { label: "4xx", values: client, color: "#c77700", bars: true, base: ok },
        { label: "5xx", values: server, color: "#b3261e", bars: true, base: ok.map((v, i) => v + client[i]) }])),
      el("section", {}, plot("plot-replicas", "Web replicas", "", p, [
        { label: "replicas", values: p.map((q) => q.replicas), color: "#5b6478" }])),
      el("p", { class: "muted" }, `${total} requests in the last hour.`));
  };
  await draw();
  const timer = setInterval(() => draw().catch((err) => say(err.message, "error")), 2000);
  stopLive = () => clearInterval(timer);
}

async function logs(app) {
  const kinds = el("select", { id: "ps-filter" },
    el("option", { value: "" }, "all processes"),
    ["web", "worker", "router", "api", "scaler", "release"].map((k) => el("option", { value: k }, k)));
  const out = el("pre", { id: "log", "aria-live": "off", tabindex: "0" });
  const start = () => {
    if (stopLive) stopLive();
    out.replaceChildren();
    const query = new URLSearchParams({ n: "200", tail: "true", format: "sse" });
    if (kinds.value) query.set("ps", kinds.value);
    const source = new EventSource(`/apps/${encodeURIComponent(app)}/logs?${query}`);
    source.onmessage = (event) => {
      out.append(event.data + "\n");
      while (out.childNodes.length > 2000) out.firstChild.remove();
      out.scrollTop = out.scrollHeight;
    };
    stopLive = () => source.close();
  };
  kinds.addEventListener("change", start);
  main().replaceChildren(el("h1", {}, `${app}: logs`),
    el("section", {},
      el("form", { class: "inline", onsubmit: (e) => e.preventDefault() },
        el("div", {}, el("label", { for: "ps-filter" }, "Show"), kinds)),
      out));
  start();
}

async function builds(app) {
  const list = await api("GET", `/apps/${encodeURIComponent(app)}/builds`);
  const output = el("pre", { id: "build-output", hidden: true, tabindex: "0" });
  const rows = list.map((b) => el("tr", {},
    el("td", {}, el("code", {}, b.id.slice(0, 8))),
    el("td", {}, b.status.state),
    el("td", {}, b.release ? `v${b.release}` : ""),
    el("td", { class: "optional" }, b.started_at),
    el("td", {}, el("button", { type: "button", onclick: async () => {
      const got = await api("GET", `/apps/${encodeURIComponent(app)}/builds/${encodeURIComponent(b.id)}/output`);
      output.textContent = got.output;
      output.hidden = false;
      output.focus();
    } }, "Output"))));
  main().replaceChildren(el("h1", {}, `${app}: builds`),
    el("section", {}, list.length
      ? el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Build"), el("th", {}, "Status"), el("th", {}, "Release"),
        el("th", { class: "optional" }, "Started"), el("th", {}, ""))), el("tbody", {}, rows))
      : el("p", { class: "muted" }, "No builds yet."),
      output));
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("signout").addEventListener("click", signOut);
  route();
});
