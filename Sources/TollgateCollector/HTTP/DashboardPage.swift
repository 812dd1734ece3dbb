/// The dashboard page: one self-contained HTML document with inline CSS and vanilla JavaScript.
///
/// It loads nothing from any other origin (the `Content-Security-Policy` `Dashboard` sends forbids
/// it too), so it works where there is no internet. It polls `/v1/dashboard/state` every 1.5 s and
/// builds the DOM with `textContent` only, so a key name can never inject markup. Money arrives as
/// strings of atomic units and is formatted by string arithmetic, never through floating point.
enum DashboardPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tollgate dashboard</title>
<style>
  :root { --bg:#f5f6f8; --card:#fff; --ink:#1d2430; --mute:#6b7585; --line:#e3e6eb;
          --ok:#2f6fde; --warn:#e08a00; --alert:#d63a3a; --good:#1f9d55; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background:var(--bg); color:var(--ink); }
  header { display:flex; align-items:center; gap:12px; padding:14px 24px; background:#1d2430; color:#fff; }
  header h1 { font-size:17px; margin:0; font-weight:600; }
  header .sub { color:#aab3c2; font-size:13px; }
  header .spacer { flex:1; }
  .pill { padding:3px 10px; border-radius:999px; font-size:12px; font-weight:600; background:#48505e; }
  .pill.live { background:var(--good); } .pill.stale { background:var(--warn); } .pill.error { background:var(--alert); }
  main { padding:18px 24px 32px; display:grid; grid-template-columns:minmax(0, 1fr); gap:18px; }
  .tiles { display:grid; grid-template-columns:repeat(5, minmax(0, 1fr)); gap:12px; }
  .tile, section { background:var(--card); border:1px solid var(--line); border-radius:8px; }
  section { overflow-x:auto; }
  .tile { padding:12px 14px; }
  .tile .label { color:var(--mute); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
  .tile .value { font-size:24px; font-weight:600; margin-top:2px; font-variant-numeric:tabular-nums; }
  .tile .note { color:var(--mute); font-size:12px; }
  .tile svg { display:block; width:100%; height:34px; margin-top:4px; }
  section h2 { font-size:14px; margin:0; padding:11px 14px; border-bottom:1px solid var(--line); display:flex; gap:8px; }
  section h2 .count { color:var(--mute); font-weight:400; }
  .grid2 { display:grid; grid-template-columns:minmax(0, 1fr) minmax(0, 1fr); gap:18px; }
  table { width:100%; border-collapse:collapse; }
  th, td { text-align:left; padding:7px 14px; border-bottom:1px solid var(--line); white-space:nowrap; }
  th { color:var(--mute); font-weight:500; font-size:12px; }
  td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
  tr:last-child td { border-bottom:none; }
  .mute { color:var(--mute); } .mono { font-family:ui-monospace, SFMono-Regular, Menlo, monospace; font-size:12px; }
  .empty { padding:14px; color:var(--mute); }
  .barcell { width:38%; min-width:220px; }
  .bar { position:relative; height:10px; background:#e9edf3; border-radius:5px; overflow:hidden; }
  .bar .fill { height:100%; background:var(--ok); border-radius:5px; }
  .bar.warn .fill { background:var(--warn); } .bar.alert .fill { background:var(--alert); }
  .bar .mark { position:absolute; top:0; bottom:0; left:80%; width:1px; background:rgba(0,0,0,.25); }
  .barlabel { font-size:12px; margin-top:3px; font-variant-numeric:tabular-nums; }
  .barlabel.warn { color:#a86400; } .barlabel.alert { color:var(--alert); font-weight:600; }
  .dot { display:inline-block; width:8px; height:8px; border-radius:50%; margin-right:6px; background:var(--alert); }
  .dot.on { background:var(--good); }
  .tag { font-size:11px; padding:1px 6px; border-radius:4px; background:#eef1f5; color:var(--mute); margin-left:6px; }
  .tag.revoked { background:#fde8e8; color:var(--alert); }
  #banner { display:none; background:#fde8e8; color:var(--alert); padding:8px 24px; }
  footer { color:var(--mute); font-size:12px; padding:0 24px 18px; }
</style>
</head>
<body>
<header>
  <h1>Tollgate</h1><span class="sub" id="collector">collector</span>
  <span class="spacer"></span>
  <span class="sub" id="asof">waiting for data</span>
  <span class="pill" id="status">connecting</span>
</header>
<div id="banner"></div>
<main>
  <div class="tiles">
    <div class="tile"><div class="label">Ingest calls/s</div><div class="value" id="calls-rate">–</div><svg id="spark" viewBox="0 0 100 34" preserveAspectRatio="none"></svg></div>
    <div class="tile"><div class="label">Batches/s</div><div class="value" id="batches-rate">–</div><div class="note" id="rate-window"></div></div>
    <div class="tile"><div class="label">Calls applied</div><div class="value" id="calls-total">–</div><div class="note" id="batches-total"></div></div>
    <div class="tile"><div class="label">Sidecars connected</div><div class="value" id="sidecars-connected">–</div><div class="note" id="sidecars-lag"></div></div>
    <div class="tile"><div class="label">Keys at ≥ 80%</div><div class="value" id="keys-hot">–</div><div class="note" id="keys-count"></div></div>
  </div>
  <section>
    <h2>Usage against included quota <span class="count" id="keys-note"></span></h2>
    <div id="keys"><div class="empty">No data yet.</div></div>
  </section>
  <div class="grid2">
    <section>
      <h2>Sidecars <span class="count" id="sidecars-note"></span></h2>
      <div id="sidecars"><div class="empty">No sidecar has spoken to this collector yet.</div></div>
    </section>
    <section>
      <h2>Recent settlements <span class="count" id="settlements-note"></span></h2>
      <div id="settlements"><div class="empty">No settlements.</div></div>
    </section>
  </div>
</main>
<footer>Updates every 1.5 s from <span class="mono">/v1/dashboard/state</span>. Sidecars and ingest rate are this collector's; keys and settlements come from Redis.</footer>
<script>
"use strict";
const POLL_MS = 1500, STALE_MS = 5000;
let lastOk = 0;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "class") node.className = value; else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
function group(digits) { return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ","); }
function count(n) { return typeof n === "number" ? n.toLocaleString("en-US") : "–"; }
function rate(n) { return typeof n === "number" ? n.toLocaleString("en-US", {minimumFractionDigits: 1, maximumFractionDigits: 1}) : "–"; }
// Atomic units (a string of digits) as a decimal amount, exactly: string arithmetic only.
function money(atomic, decimals) {
  const digits = String(atomic ?? "").replace(/^0+(?=\d)/, "");
  if (!/^\d+$/.test(digits)) return "?";
  if (!(decimals > 0)) return group(digits);
  const padded = digits.padStart(decimals + 1, "0");
  const whole = padded.slice(0, padded.length - decimals);
  let fraction = padded.slice(padded.length - decimals).replace(/0+$/, "");
  if (fraction.length < 2) fraction = fraction.padEnd(Math.min(2, decimals), "0");
  return group(whole) + "." + fraction;
}
function bytes(n) {
  if (typeof n !== "number") return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n, i = 0;
  while (value >= 1024 && i < units.length - 1) { value /= 1024; i++; }
  return (i === 0 ? String(value) : value.toFixed(1)) + " " + units[i];
}
function ago(ms) { return ms < 1000 ? ms + " ms" : ms < 120000 ? (ms / 1000).toFixed(1) + " s" : Math.round(ms / 60000) + " min"; }
function level(percent) { return percent >= 100 ? "alert" : percent >= 80 ? "warn" : ""; }
function short(text, n) { text = String(text || ""); return text.length > n ? text.slice(0, n) + "…" : text; }
function table(headers, rows) {
  const head = el("tr", {}, ...headers.map(h => el("th", h.startsWith("#") ? {class: "num"} : {}, h.replace(/^#/, ""))));
  return el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows));
}
function replace(id, node) { const box = document.getElementById(id); box.replaceChildren(node); }
function text(id, value) { document.getElementById(id).textContent = value; }

function renderKeys(state) {
  const asset = state.asset || {decimals: 6};
  const rows = [];
  for (const key of state.keys) {
    key.features.forEach((f, index) => {
      const lv = level(f.percent);
      const bar = el("div", {class: "bar " + lv}, el("div", {class: "fill", style: "width:" + Math.min(100, f.percent) + "%"}), el("div", {class: "mark"}));
      const label = el("div", {class: "barlabel " + lv},
        count(f.used) + " / " + count(f.included) + " " + (f.unit || "") + " · " + f.percent.toFixed(1) + "%" +
        (f.credits > 0 ? " (incl. " + count(f.credits) + " credited)" : ""));
      const name = index === 0 ? el("td", {"data-key": key.name}, el("strong", {}, key.name),
        el("span", {class: "tag"}, key.plan), key.revoked ? el("span", {class: "tag revoked"}, "revoked") : null,
        el("div", {class: "mono mute"}, key.id.slice(0, 12))) : el("td", {});
      rows.push(el("tr", {}, name, el("td", {}, f.feature, el("div", {class: "mute"}, (f.policy || "") + " · " + (f.period || ""))),
        el("td", {class: "barcell"}, bar, label),
        el("td", {class: "num"}, count(f.overage_units)),
        el("td", {class: "num"}, money(f.overage_charge, asset.decimals) + (asset.name ? " " + asset.name : ""))));
    });
  }
  replace("keys", rows.length ? table(["Key", "Feature", "Used / included", "#Overage units", "#Overage charge"], rows)
                              : el("div", {class: "empty"}, "No keys in the registry."));
  const hot = state.keys.filter(k => k.max_percent >= 80).length;
  text("keys-hot", count(hot));
  text("keys-count", count(state.keys.length) + " shown of " + count(state.keys_total));
  text("keys-note", state.keys_scanned < state.keys_total
    ? "top " + state.keys.length + " by percent used, of the first " + count(state.keys_scanned) + " read (" + count(state.keys_total) + " keys)"
    : "top " + state.keys.length + " of " + count(state.keys_total) + " keys by percent used");
}

function renderSidecars(state) {
  const rows = state.sidecars.map(s => el("tr", {"data-sidecar": s.id},
    el("td", {}, el("span", {class: "dot" + (s.connected ? " on" : "")}), s.id, el("div", {class: "mute"}, (s.version || "") + (s.connected ? "" : " · not connected"))),
    el("td", {class: "num"}, ago(s.lag_ms) + " ago"),
    el("td", {class: "num"}, count(s.unacked_batches)),
    el("td", {class: "num"}, count(s.spool_records)),
    el("td", {class: "num"}, bytes(s.spool_bytes))));
  if (rows.length) replace("sidecars", table(["Sidecar", "#Last heard", "#Unacked batches", "#Spool records", "#Spool size"], rows));
  const connected = state.sidecars.filter(s => s.connected);
  text("sidecars-connected", connected.length + " / " + state.sidecars_total);
  const worst = connected.reduce((m, s) => Math.max(m, s.lag_ms), 0);
  text("sidecars-lag", connected.length ? "worst lag " + ago(worst) + ", " + count(connected.reduce((m, s) => m + s.unacked_batches, 0)) + " unacked" : "");
  text("sidecars-note", count(state.sidecars_total));
}

function renderSettlements(state) {
  const asset = state.asset || {decimals: 6};
  const rows = state.settlements.map(s => el("tr", {},
    el("td", {title: s.at}, new Date(s.at_ms).toISOString().slice(11, 19)),
    el("td", {}, s.key_name || s.key_id.slice(0, 12)),
    el("td", {class: "num"}, money(s.amount, asset.decimals) + (asset.name ? " " + asset.name : "")),
    el("td", {}, s.grant, el("div", {class: "mute"}, s.feature)),
    el("td", {class: "mono", title: s.payer + " " + s.transaction}, short(s.payer, 8), el("div", {class: "mute"}, short(s.transaction, 10)))));
  if (rows.length) replace("settlements", table(["UTC", "Key", "#Amount", "Bought", "Payer / tx"], rows));
  text("settlements-note", rows.length ? "newest " + rows.length : "");
}

function renderIngest(state) {
  const ingest = state.ingest;
  text("calls-rate", rate(ingest.calls_per_second));
  text("batches-rate", rate(ingest.batches_per_second));
  text("rate-window", "over the last " + ingest.window_seconds.toFixed(1) + " s");
  text("calls-total", count(ingest.calls_total));
  text("batches-total", count(ingest.batches_total) + " batches since start");
  const history = ingest.calls_per_second_history.slice(-60);
  const svg = document.getElementById("spark");
  svg.replaceChildren();
  if (history.length > 1) {
    const max = Math.max(1, ...history);
    const points = history.map((v, i) => (i * 100 / (history.length - 1)).toFixed(2) + "," + (32 - v * 30 / max).toFixed(2)).join(" ");
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", points);
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", "#2f6fde");
    line.setAttribute("stroke-width", "1.5");
    line.setAttribute("vector-effect", "non-scaling-stroke");
    svg.append(line);
  }
}

function render(state) {
  text("collector", state.collector);
  text("asof", "as of " + state.as_of.replace(/\.\d+Z$/, "Z").replace("T", " ").replace("Z", " UTC"));
  renderIngest(state);
  renderKeys(state);
  renderSidecars(state);
  renderSettlements(state);
}

function setStatus(kind, message) {
  const pill = document.getElementById("status");
  pill.className = "pill " + kind;
  pill.textContent = kind === "live" ? "live" : kind === "stale" ? "stale" : "error";
  const banner = document.getElementById("banner");
  banner.style.display = message ? "block" : "none";
  banner.textContent = message || "";
}

async function poll() {
  try {
    const response = await fetch("/v1/dashboard/state", {cache: "no-store", credentials: "same-origin", headers: {Accept: "application/json"}});
    if (!response.ok) {
      let message = "HTTP " + response.status;
      try { const body = await response.json(); message += ": " + (body.message || body.error); } catch (_) {}
      throw new Error(message);
    }
    render(await response.json());
    lastOk = Date.now();
    setStatus("live");
  } catch (error) {
    setStatus("error", "Could not read the state (" + error.message + "); showing the last data.");
  } finally {
    setTimeout(poll, POLL_MS);
  }
}
setInterval(() => {
  if (lastOk && Date.now() - lastOk > STALE_MS && document.getElementById("status").className === "pill live") setStatus("stale");
}, 1000);
poll();
</script>
</body>
</html>
"""#
}
