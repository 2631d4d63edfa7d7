// The operator console's script: asks for the admin key once (kept in this tab's sessionStorage),
// polls /console/data every REFRESH_MS, and fills the page. Percentiles are computed from the
// latency histogram's buckets added since the previous poll (Prometheus's histogram_quantile rule:
// linear within the bucket); requests/s from the request count's change.
"use strict";

const REFRESH_MS = 2000;
const KEY = "ainfera-console-key";
let previous = null;

const $ = (id) => document.getElementById(id);

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (cls) td.className = cls;
  return td;
}

function fill(id, rows, columns, empty) {
  const body = $(id);
  body.replaceChildren();
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = cell(empty, "empty");
    td.colSpan = columns.length;
    tr.append(td);
    body.append(tr);
    return;
  }
  for (const row of rows) {
    const tr = document.createElement("tr");
    for (const [get, cls] of columns) tr.append(cell(get(row), cls));
    body.append(tr);
  }
}

// The q-quantile of a cumulative histogram given as [[upper bound (null: +Inf), count], ...].
function quantile(q, buckets) {
  const total = buckets.length ? buckets[buckets.length - 1][1] : 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lower = 0, below = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === null) return lower;  // in the +Inf bucket: the highest finite bound
      const inBucket = count - below;
      return inBucket > 0 ? lower + (le - lower) * ((rank - below) / inBucket) : le;
    }
    if (le !== null) lower = le;
    below = count;
  }
  return lower;
}

function delta(now, before) {
  if (!before) return now;
  return now.map(([le, n], i) => [le, n - (before[i] ? before[i][1] : 0)]);
}

function ms(seconds) {
  return seconds === null ? "–" : (seconds * 1000).toFixed(1);
}

function render(d) {
  const total = d.requests.total;
  const failed = Object.entries(d.requests.by_status)
    .filter(([status]) => Number(status) >= 400).reduce((a, [, n]) => a + n, 0);
  $("requests-total").textContent = String(total);
  $("errors-total").textContent = String(failed);
  let buckets = d.latency.buckets;
  if (previous) {
    const seconds = (Date.parse(d.generated_at) - Date.parse(previous.generated_at)) / 1000;
    $("rps").textContent = seconds > 0 ? ((total - previous.requests.total) / seconds).toFixed(1) : "0.0";
    const window = delta(buckets, previous.latency.buckets);
    if (window.length && window[window.length - 1][1] > 0) buckets = window;
  }
  for (const [id, q] of [["p50", 0.5], ["p95", 0.95], ["p99", 0.99]]) $(id).textContent = ms(quantile(q, buckets));
  fill("queues", Object.entries(d.queues).map(([name, v]) => ({name, ...v})),
       [[(r) => r.name], [(r) => r.depth, "num"], [(r) => (r.oldest_age_s || 0).toFixed(1), "num"]], "no queues");
  fill("upstream-errors", d.upstream_errors,
       [[(r) => r.provider], [(r) => r.code], [(r) => r.calls, "num"]], "none in the last hour");
  fill("spend", d.spend_today, [[(r) => r.model], [(r) => r.calls, "num"], [(r) => r.cost_usd, "num"]],
       "nothing spent today");
  fill("batches", d.batches, [[(r) => r.id], [(r) => r.status], [(r) => r.completed, "num"],
                              [(r) => r.failed, "num"], [(r) => r.total, "num"]], "no open or recent batches");
  fill("decisions", d.decisions, [
    [(r) => r.at.replace("T", " ").slice(0, 19)], [(r) => r.requested],
    [(r) => (r.model ? `${r.model}` : "–")], [(r) => (r.code ? `${r.status} (${r.code})` : r.status)],
    [(r) => r.reason || (r.requested === r.model ? "pinned" : "")], [(r) => r.fallbacks.join(", ")],
  ], "no calls in the last hour");
  for (const tr of $("decisions").children) {
    if (tr.children[3] && tr.children[3].textContent.startsWith("failed")) tr.classList.add("failed");
  }
  $("status").textContent = `updated ${new Date(d.generated_at).toLocaleTimeString()}`;
  previous = d;
}

async function poll() {
  const key = sessionStorage.getItem(KEY);
  if (!key) return showLogin();
  try {
    const r = await fetch("/console/data", {headers: {Authorization: `Bearer ${key}`}, cache: "no-store"});
    if (r.status === 401 || r.status === 403) {
      sessionStorage.removeItem(KEY);
      $("status").textContent = "the admin key was refused";
      return showLogin();
    }
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    render(await r.json());
  } catch (e) {
    $("status").textContent = `not updated: ${e.message}`;
  }
  setTimeout(poll, REFRESH_MS);
}

function showLogin() {
  $("console").hidden = true;
  $("login").hidden = false;
  $("key").focus();
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY, $("key").value);
  $("login").hidden = true;
  $("console").hidden = false;
  poll();
});

if (sessionStorage.getItem(KEY)) {
  $("console").hidden = false;
  poll();
} else {
  showLogin();
}
