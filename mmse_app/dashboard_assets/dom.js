// DOM and plotting helpers, each view's guard, and drawing on sight.

const PLOT_CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
// ms: when this script started (after the page and plotly.js were parsed), then per view;
// for benchmarks/dashboard_load.py.
const timings = { "script start": started, "data parsed": performance.now() - started };

function $(id) { return document.getElementById(id); }
function el(tag, attrs, children) {
  const node = document.createElement(tag);
  Object.entries(attrs || {}).forEach(function (kv) {
    if (kv[1] === null || kv[1] === undefined || kv[1] === false) return;
    if (kv[0] === "text") node.textContent = kv[1];
    else if (kv[0] === "className") node.className = kv[1];
    else node.setAttribute(kv[0], kv[1] === true ? "" : kv[1]);
  });
  (children || []).forEach(function (c) { if (c !== null && c !== undefined) node.append(c); });
  return node;
}
function cell(text, numeric) { return el("td", { className: numeric ? "num" : null, text: text }); }
function headRow(names) { return el("thead", {}, [el("tr", {}, names.map(function (h) { return el("th", { text: h }); }))]); }
function guard(section, fn) {
  const start = performance.now();
  try { fn(); } catch (err) {
    console.error("dashboard: " + section + ": " + (err && err.stack ? err.stack : err));
    const box = $(section);
    if (box) box.append(el("p", { className: "view-error", text: "This view could not be drawn: " + err }));
  }
  timings[section] = (timings[section] || 0) + performance.now() - start;
}
function plot(id, traces, layout) {
  const base = { margin: { l: 60, r: 20, t: 30, b: 50 }, hovermode: "closest", font: { size: 12 } };
  return Plotly.react($(id), traces, Object.assign(base, layout), PLOT_CONFIG);
}
function empty(id) { const n = $(id); Plotly.purge(n); n.replaceChildren(); n.style.minHeight = "0"; }

// Views that need WebGL (parallel coordinates: slow to start in a software renderer) are
// drawn when they come near the screen, not while the page loads.
const lazy = { seen: {}, draw: {} };
const observer = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
  entries.forEach(function (entry) {
    if (!entry.isIntersecting) return;
    const id = entry.target.id, draw = lazy.draw[id];
    lazy.seen[id] = true;
    delete lazy.draw[id];
    if (draw) guard(id, draw);
  });
}, { rootMargin: "400px" }) : null;
function drawWhenVisible(id, fn) {
  if (!observer || lazy.seen[id]) { delete lazy.draw[id]; guard(id, fn); return; }
  lazy.draw[id] = fn;
  observer.observe($(id));
}
