// The Tune results dashboard: nine views over the JSON document embedded in this page
// (mmse_app/dashboard_data.py writes it). No network: everything is in the file.
(function () {
  "use strict";

  const started = performance.now();
  const DATA = JSON.parse(document.getElementById("dashboard-data").textContent);
  const PLOT_CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
  const STATUS_LABEL = {
    completed: "ran every epoch", early_stopping: "early stopping", asha: "stopped by ASHA at a rung",
    error: "failed", running: "still running",
  };
  const STATUS_COLOR = { completed: "#0969da", early_stopping: "#8250df", asha: "#8c959f", error: "#cf222e", running: "#bf8700" };
  const MODEL_COLOR = { winner: "#0969da", train_mean: "#afb8c1", ridge: "#6e7781", hist_gradient_boosting: "#424a53" };
  // The winner against the declared (primary) baseline, from the paired interval only.
  const VERDICT_CLASS = { better: "yes", level: "level", worse: "no", none: "" };
  const VERDICT_MARK = { better: "✓", level: "≈", worse: "✗", none: "" };
  const TABLE_PAGE = 50;
  const CELL_TRACES = 150; // above this many trials a cell's curves are drawn as one trace per ending
  const state = {
    task: DATA.tasks[0] || null, cell: null,
    sort: { key: null, dir: 1 }, filter: "", taskFilter: "", statusFilter: "", page: 0,
  };
  DATA.rows.forEach(function (row, i) {
    row._i = i;
    row._text = DATA.columns.map(function (c) { return row[c] === null || row[c] === undefined ? "" : String(row[c]); })
      .join(" ").toLowerCase();
  });

  // --- helpers -----------------------------------------------------------------------------
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
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  function fmt(v, digits) {
    if (!isNum(v)) return v === null || v === undefined ? "–" : String(v);
    if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
    const d = digits === undefined ? 3 : digits;
    return Math.abs(v) !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5) ? v.toExponential(2) : v.toFixed(d);
  }
  // An estimate and its interval are written with the same number of decimals.
  function fixed(v, digits) { return isNum(v) ? v.toFixed(digits === undefined ? 3 : digits) : "–"; }
  function fmtCI(ci, digits) { return ci && ci.length === 2 ? "[" + fixed(ci[0], digits) + ", " + fixed(ci[1], digits) + "]" : ""; }
  function withCI(v, ci, digits) { return fixed(v, digits) + (ci && ci.length === 2 ? " " + fmtCI(ci, digits) : ""); }
  function signed(v, digits) { return isNum(v) ? (v > 0 ? "+" : "") + v.toFixed(digits === undefined ? 3 : digits) : "–"; }
  function signedCI(ci, digits) { return ci && ci.length === 2 ? "[" + signed(ci[0], digits) + ", " + signed(ci[1], digits) + "]" : ""; }
  function pct(v) { return isNum(v) ? (100 * v).toFixed(1) : "–"; }
  function coverageText(iv) {
    return pct(iv.coverage) + " %" + (iv.coverage_ci && iv.coverage_ci.length === 2 ? " [" + pct(iv.coverage_ci[0]) + ", " + pct(iv.coverage_ci[1]) + "] %" : "");
  }
  function cell(text, numeric) { return el("td", { className: numeric ? "num" : null, text: text }); }
  function headRow(names) { return el("thead", {}, [el("tr", {}, names.map(function (h) { return el("th", { text: h }); }))]); }
  const NOT_RECORDED = "not recorded (this sweep's summary predates it)";
  function range(n, start) { const out = []; for (let i = 0; i < n; i++) out.push(i + (start || 0)); return out; }
  function trialEpochs(t) { return t.epochs || range(t.loss.length, 1); }
  // ms: when this script started (after the page and plotly.js were parsed), then per view;
  // for benchmarks/dashboard_load.py.
  const timings = { "script start": started, "data parsed": performance.now() - started };
  function guard(section, fn) {
    const start = performance.now();
    try { fn(); } catch (err) {
      console.error("dashboard: " + section + ": " + (err && err.stack ? err.stack : err));
      const box = $(section);
      if (box) box.append(el("p", { className: "error", text: "This view failed: " + err }));
    }
    timings[section] = (timings[section] || 0) + performance.now() - start;
  }
  function plot(id, traces, layout) {
    const base = { margin: { l: 60, r: 20, t: 30, b: 50 }, hovermode: "closest", font: { size: 12 } };
    return Plotly.react($(id), traces, Object.assign(base, layout), PLOT_CONFIG);
  }
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
  function empty(id) { const n = $(id); Plotly.purge(n); n.replaceChildren(); n.style.minHeight = "0"; }
  function taskItem(task) { return (DATA.task_items || {})[task] || ""; }
  function valueText(v) { return typeof v === "boolean" ? String(v) : fmt(v, 4); }

  // --- header ------------------------------------------------------------------------------
  function renderBanner() {
    const s = DATA.synthetic || {};
    const banner = $("synthetic-banner");
    if (s.value !== true) { banner.hidden = true; return; }
    banner.hidden = false;
    banner.textContent = "SYNTHETIC: every number on this page comes from a simulated cohort, not from any person ("
      + s.source + " says so). Nothing here is evidence about patients.";
  }
  function renderHeader() {
    const m = DATA.meta;
    $("sweep-name").textContent = m.name;
    const badge = $("sweep-state");
    badge.textContent = m.finished ? "finished" : (m.has_trials_csv ? "results incomplete" : "running (or interrupted): provisional");
    badge.className = "badge " + (m.finished ? "finished" : "running");
    const counts = Object.entries(m.status_counts).map(function (kv) { return kv[1] + " " + (STATUS_LABEL[kv[0]] || kv[0]); });
    $("sweep-counts").textContent = m.n_trials + " trials, " + m.n_rows + " signature rows (" + counts.join(", ") + "); "
      + DATA.signatures.length + " signatures × " + DATA.tasks.length + " tasks. " + m.uri;
    const b = DATA.builder || {};
    $("builder").textContent = "Page built " + (b.built || "") + " by mmse dashboard (Python " + (b.python || "?")
      + ", plotly.js " + (b.plotlyjs || "?") + "). Self-contained: it loads nothing from the network.";
  }

  // --- 1. heatmap ----------------------------------------------------------------------------
  function cellColor(t) {
    // t in [0, 1]: 0 is the task's lowest RMSE (dark blue), 1 its highest (pale).
    const lo = [8, 69, 148], hi = [222, 235, 247];
    const c = lo.map(function (v, i) { return Math.round(v + (hi[i] - v) * t); });
    return { bg: "rgb(" + c.join(",") + ")", fg: t < 0.55 ? "#ffffff" : "#1f2328" };
  }
  function renderHeatmap() {
    const cells = DATA.heatmap.cells;
    const scale = {};
    DATA.tasks.forEach(function (task) {
      const values = cells.filter(function (c) { return c.task === task && isNum(c.best_val_rmse); })
        .map(function (c) { return c.best_val_rmse; });
      scale[task] = values.length ? [Math.min.apply(null, values), Math.max.apply(null, values)] : null;
    });
    const table = $("heatmap");
    const head = el("tr", {}, [el("th", { text: "signature \\ task" })]);
    DATA.tasks.forEach(function (task) {
      const cmp = DATA.comparison[task];
      const verdict = cmp ? cmp.verdict : null;
      const detail = cmp ? cmp.verdict_detail : null;
      const base = detail ? detail.label : "";
      let mark;
      if (verdict === "better") mark = "✓ better than " + base;
      else if (verdict === "level") mark = "≈ level with " + base;
      else if (verdict === "worse") mark = "✗ " + base + " better";
      else if (cmp) mark = "no paired interval";
      else mark = DATA.meta.finished ? "not scored" : "test after the sweep";
      head.append(el("th", { className: "task", "data-task": task, "data-verdict": verdict || "none", title: taskItem(task) + (verdict
        ? ": the winner against " + base + " (" + detail.source + ") on the held-out test subjects, by the paired "
          + "bootstrap interval of the RMSE difference, " + fixed(detail.rmse_diff) + " " + fmtCI(detail.rmse_diff_ci)
          + " (" + (verdict === "level" ? "it includes 0" : "it excludes 0") + ")"
        : "") }, [
        document.createTextNode(task), el("br"), el("span", { className: "mark " + VERDICT_CLASS[verdict || "none"], text: mark })]));
    });
    table.append(el("thead", {}, [head]));
    const body = el("tbody");
    DATA.signatures.forEach(function (sig) {
      const tr = el("tr", {}, [el("th", { text: sig })]);
      DATA.tasks.forEach(function (task) {
        const c = cells.find(function (x) { return x.signature === sig && x.task === task; });
        const verdict = c.verdict || "none";
        const td = el("td", {
          className: "cell" + (isNum(c.best_val_rmse) ? "" : " empty"), tabindex: "0", role: "button",
          "data-signature": sig, "data-task": task, "data-verdict": verdict, "data-winner": c.winner ? "true" : "false",
          "data-n": String(c.n),
          title: task + " × " + sig + ": " + c.n + " trials; best validation RMSE " + fmt(c.best_val_rmse)
            + (isNum(c.best_val_rmse_sd) ? " (sd " + fmt(c.best_val_rmse_sd) + " over folds)" : "")
            + (c.winner ? "; the task's winner" : "") + ". Click for its trials.",
        }, [document.createTextNode(fmt(c.best_val_rmse))]);
        if (c.winner) td.append(el("span", { className: "star", text: "★" }));
        if (c.winner) td.append(el("span", { className: "mark " + VERDICT_CLASS[verdict], text: VERDICT_MARK[verdict] }));
        if (isNum(c.best_val_rmse) && scale[task]) {
          const s = scale[task], t = s[1] > s[0] ? (c.best_val_rmse - s[0]) / (s[1] - s[0]) : 0;
          const col = cellColor(t);
          td.style.background = col.bg; td.style.color = col.fg;
        }
        td.addEventListener("click", function () { selectCell(sig, task); });
        td.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); selectCell(sig, task); } });
        tr.append(td);
      });
      body.append(tr);
    });
    table.append(body);
    $("heatmap-note").textContent = "Each cell: the lowest validation RMSE (sub-score points, mean over folds at the best epoch; it "
      + "selects, it does not estimate) of that signature on that task over every trial. Colour within each task: darker is "
      + "lower. ★ the task's winner" + (DATA.meta.finished ? "" : " so far") + "; on the winner's cell only (no other signature "
      + "was tested), ✓ it is better than " + DATA.comparator.primary_label + " on the held-out test subjects, ≈ level with it, "
      + "✗ worse (the paired bootstrap interval of the RMSE difference excludes 0 for ✓ and ✗; without a paired interval no "
      + "mark; " + (DATA.comparator.declared ? "the comparison was declared before the sweep ran" : "this sweep declared no "
      + "comparator: Ridge's comparison, the default") + "; the intervals are " + adjustmentText() + ", view 2 says more). "
      + "Click a cell to list and plot its trials.";
  }

  function cellRows(sig, task) {
    return DATA.rows.filter(function (r) { return r.signature === sig && r.task === task; });
  }
  function selectCell(sig, task) {
    state.cell = { signature: sig, task: task };
    document.querySelectorAll("#heatmap td.selected").forEach(function (n) { n.classList.remove("selected"); });
    const td = document.querySelector('#heatmap td[data-signature="' + CSS.escape(sig) + '"][data-task="' + CSS.escape(task) + '"]');
    if (td) td.classList.add("selected");
    const rows = cellRows(sig, task).sort(function (a, b) { return cmpValues(a["val/loss"], b["val/loss"], 1); });
    $("cell-detail").hidden = false;
    $("cell-title").textContent = task + " × " + sig + ": " + rows.length + " trial" + (rows.length === 1 ? "" : "s")
      + ", best first (validation loss)";
    const hp = DATA.hp_keys;
    const table = $("cell-trials");
    table.replaceChildren();
    table.append(el("thead", {}, [el("tr", {}, ["name", "trial id", "ending", "epochs", "best epoch", "val RMSE", "sd", "val MAE"]
      .concat(hp).map(function (h) { return el("th", { text: h }); }))]));
    const body = el("tbody");
    rows.forEach(function (r) {
      const tr = el("tr", { "data-trial-id": r.trial_id, className: "status-" + r.status }, [
        el("td", { text: r.name || "" }), el("td", { text: r.trial_id }), el("td", { text: STATUS_LABEL[r.status] || r.status }),
        el("td", { className: "num", text: fmt(r.epochs_run) }), el("td", { className: "num", text: fmt(r.best_epoch) }),
        el("td", { className: "num", text: fmt(r["val/rmse"]) }), el("td", { className: "num", text: fmt(r["val/rmse_sd"]) }),
        el("td", { className: "num", text: fmt(r["val/mae"]) })]);
      hp.forEach(function (k) { tr.append(el("td", { className: "num", text: valueText(r["hp/" + k]) })); });
      body.append(tr);
    });
    table.append(body);
    guard("cell-detail", function () { plotCell(sig, task, rows); });
  }
  function plotCell(sig, task, rows) {
    const traces = [];
    const drawn = rows.filter(function (r) { return r.trial !== null && r.trial !== undefined; });
    function series(t) { return t.sig_rmse && t.sig_rmse[sig] ? t.sig_rmse[sig] : t.rmse; }
    if (drawn.length <= CELL_TRACES) {
      drawn.forEach(function (r) {
        const t = DATA.trials[r.trial];
        traces.push({
          type: "scatter", mode: "lines", name: r.name || r.trial_id, x: trialEpochs(t), y: series(t),
          meta: { trial_id: r.trial_id }, opacity: t.status === "asha" ? 0.45 : 1,
          line: { width: 1.5, dash: t.status === "asha" ? "dot" : "solid" },
          hovertemplate: (r.name || r.trial_id) + " (" + (STATUS_LABEL[t.status] || t.status) + ")<br>epoch %{x}: val RMSE %{y:.3f}<extra></extra>",
        });
      });
    } else {
      Object.keys(STATUS_COLOR).forEach(function (status) {
        const x = [], y = [], text = [];
        drawn.forEach(function (r) {
          const t = DATA.trials[r.trial];
          if (t.status !== status) return;
          const s = series(t);
          trialEpochs(t).forEach(function (e, i) { x.push(e); y.push(s[i]); text.push(r.name || r.trial_id); });
          x.push(null); y.push(null); text.push(null);
        });
        if (x.length) traces.push({ type: "scatter", mode: "lines", name: STATUS_LABEL[status], x: x, y: y, text: text,
          line: { width: 1, color: STATUS_COLOR[status] }, opacity: status === "asha" ? 0.35 : 0.9,
          hovertemplate: "%{text}<br>epoch %{x}: val RMSE %{y:.3f}<extra></extra>" });
      });
    }
    if (!traces.length) { empty("cell-plot"); return; }
    $("cell-plot").style.minHeight = "";
    plot("cell-plot", traces, { xaxis: { title: { text: "epoch" } },
      yaxis: { title: { text: "validation RMSE of " + sig + " (points)" } }, showlegend: traces.length <= 20, height: 360 });
  }

  // --- 2. winner against baselines ------------------------------------------------------------
  function renderComparison() {
    const tasks = DATA.tasks.filter(function (t) { return DATA.comparison[t]; });
    if (!tasks.length) {
      $("comparison-note").textContent = DATA.meta.finished ? "The summary holds no test results."
        : "Test numbers appear when the sweep has finished: the winners are scored on the held-out subjects then (summary.json).";
      empty("comparison-plot");
      return;
    }
    $("comparator-note").textContent = comparatorText();
    const keys = [];
    tasks.forEach(function (t) { DATA.comparison[t].models.forEach(function (m) { if (keys.indexOf(m.key) < 0) keys.push(m.key); }); });
    let anyCI = false;
    const traces = keys.map(function (key) {
      const y = [], lo = [], hi = [], text = [];
      let label = key;
      tasks.forEach(function (t) {
        const m = DATA.comparison[t].models.find(function (x) { return x.key === key; });
        const v = m ? m.metrics.rmse : null;
        const ci = m ? m.metrics.rmse_ci : null;
        if (m) label = m.label;
        if (ci) anyCI = true;
        y.push(isNum(v) ? v : null);
        hi.push(ci && isNum(v) ? ci[1] - v : 0); lo.push(ci && isNum(v) ? v - ci[0] : 0);
        text.push(m ? withCI(v, ci) : "");
      });
      return { type: "bar", name: label, x: tasks, y: y, text: text, textposition: "none", marker: { color: MODEL_COLOR[key] || "#999" },
        error_y: { type: "data", symmetric: false, array: hi, arrayminus: lo, visible: anyCI, thickness: 1.2, width: 4, color: "#24292f" },
        hovertemplate: label + " on %{x}: test RMSE %{text}<extra></extra>" };
    });
    traces.forEach(function (t) { t.error_y.visible = anyCI; });
    plot("comparison-plot", traces, { barmode: "group", xaxis: { title: { text: "task" } },
      yaxis: { title: { text: "test RMSE (sub-score points, lower is better)" }, rangemode: "tozero" }, height: 380 });
    $("comparison-note").textContent = "Test RMSE on each task's held-out subjects, in sub-score points, for the winner (best "
      + "signature and hyper-parameters by validation loss) and for baselines fitted on the same training subjects: predict the "
      + "training mean, Ridge, HistGradientBoosting (each on the signature it chose by its own cross-validation where the sweep "
      + "records one). " + (anyCI ? "Bars and [brackets]: 95 % bootstrap intervals." : "This sweep recorded no intervals.")
      + " n: test subjects. A constant prediction (the training mean) has no calibration slope: undefined.";
    const table = $("comparison-table");
    table.append(headRow(["task", "model", "RMSE", "95 % CI", "MAE [95 % CI]", "R²", "Pearson r", "cal. slope", "cal. intercept",
      "n", "signature (CV RMSE)", "winner − model (RMSE) [95 % CI]"]));
    const body = el("tbody");
    tasks.forEach(function (t) {
      const c = DATA.comparison[t];
      c.models.forEach(function (m, i) {
        const cmp = c.comparisons[m.key];
        const primary = cmp && (cmp.primary === true || m.key === c.verdict_detail.baseline);
        const result = cmp ? (cmp.better === true ? "winner better" : cmp.worse === true ? "baseline better" : cmp.better === false ? "no difference shown" : "") : "";
        const diffCell = el("td", { text: cmp ? signed(cmp.rmse_diff) + " " + signedCI(cmp.rmse_diff_ci) + " " + result : "" },
          cmp ? [el("span", { className: "tag" + (primary ? " primary" : ""), text: primary ? "primary: the verdict" : "secondary" })] : []);
        const label = m.key === "winner" ? m.label + ": " + (c.winner.signature || "") : m.label;
        const undefinedSlope = "calibration_slope" in m.metrics && m.metrics.calibration_slope === null;
        const sig = m.key === "winner" ? "" : m.signature ? m.signature + (isNum(m.cv_rmse) ? " (" + fixed(m.cv_rmse) + ")" : "")
          : "the winner's";
        body.append(el("tr", { "data-task": t, "data-model": m.key, title: m.key === "winner" && c.winner.name ? "trial " + c.winner.name : null }, [
          cell(i === 0 ? t : ""), cell(label),
          cell(fixed(m.metrics.rmse), true), cell(fmtCI(m.metrics.rmse_ci)),
          cell(withCI(m.metrics.mae, m.metrics.mae_ci), true),
          cell(fixed(m.metrics.r2), true), cell(fixed(m.metrics.pearson_r), true),
          cell(undefinedSlope ? "undefined" : fixed(m.metrics.calibration_slope, 2), true),
          cell(undefinedSlope ? "undefined" : fixed(m.metrics.calibration_intercept, 2), true),
          cell(fmt(m.metrics.n), true), cell(sig), diffCell]));
      });
    });
    table.append(body);
    guard("nested-table", function () { renderNested(tasks); });
    guard("coverage-table", function () { renderCoverage(tasks); });
  }

  function comparatorText() {
    const c = DATA.comparator || {};
    const level = isNum(c.level) ? Math.round(100 * c.level) + " %" : "95 %";
    const others = (c.secondary || []).map(function (b) { return { train_mean: "train mean", ridge: "Ridge", hist_gradient_boosting: "HGB" }[b] || b; });
    return (c.declared ? "Each task's verdict comes from the comparison the sweep declared before it ran: the winner against "
        + c.primary_label + "," : "This sweep declared no comparator: each task's verdict is the winner against Ridge (the "
        + "default newer sweeps declare), labelled as such,")
      + " by the " + level + " paired bootstrap interval of the RMSE difference on the test subjects. "
      + (others.length ? "The other baselines (" + others.join(", ") + ") are secondary: shown, no verdict. " : "")
      + "The intervals are " + adjustmentText() + (c.adjustment === "none" || !c.adjustment ? " (across several tasks, one "
        + "interval in twenty may exclude 0 by chance alone)" : "") + ".";
  }
  function adjustmentText() {
    const c = DATA.comparator || {};
    return c.adjustment === "holm" ? "Holm-adjusted for the " + c.n_tasks + " tasks"
      : c.adjustment === "none" || !c.adjustment ? "unadjusted for the " + c.n_tasks + " tasks" : "adjusted: " + c.adjustment;
  }

  // The nested estimate (or an older sweep's procedure estimate) beside the test numbers.
  function renderNested(tasks) {
    const table = $("nested-table");
    const withEstimate = tasks.filter(function (t) { return DATA.comparison[t].nested; });
    if (!withEstimate.length) { $("nested-note").textContent = "No estimate over fresh splits: " + NOT_RECORDED + "."; return; }
    const labels = Array.from(new Set(withEstimate.map(function (t) { return DATA.comparison[t].nested.label; })));
    $("nested-note").textContent = "Labelled as the results say: " + labels.join("; ") + ". Mean and sd of the test RMSE "
      + "over the outer repeats (points), beside the single test split's RMSE [95 % CI]. With few repeats the sd is rough.";
    table.append(headRow(["task", "model", "test RMSE [95 % CI]", "estimate: mean (sd)", "repeats", "per repeat", "signatures chosen", "search"]));
    const body = el("tbody");
    withEstimate.forEach(function (t) {
      const c = DATA.comparison[t], n = c.nested;
      const search = n.search ? n.search.samples + " hyper-parameter samples × " + n.search.signatures + " signatures, "
        + n.search.folds + " folds" : n.kind === "procedure" ? "none (the winner's hyper-parameters re-used)" : "";
      c.models.forEach(function (m) {
        const est = n.models[m.key === "winner" ? "network" : m.key];
        if (!est && m.key !== "winner") return;
        body.append(el("tr", { "data-task": t, "data-model": m.key, "data-kind": n.kind, title: n.label }, [
          cell(m.key === "winner" ? t : ""), cell(m.label), cell(withCI(m.metrics.rmse, m.metrics.rmse_ci), true),
          cell(est ? fixed(est.rmse_mean) + (isNum(est.rmse_sd) ? " (" + fixed(est.rmse_sd) + ")" : " (one repeat: no sd)") : "not estimated", true),
          cell(fmt(n.repeats), true),
          cell(est && est.rmse_values ? est.rmse_values.map(function (v) { return fixed(v); }).join(", ") : ""),
          cell(est && est.signatures_chosen ? Array.from(new Set(est.signatures_chosen)).join(", ") : ""),
          cell(m.key === "winner" ? search : "")]));
      });
    });
    table.append(body);
  }

  function renderCoverage(tasks) {
    const rows = tasks.filter(function (t) { return DATA.comparison[t].intervals; })
      .map(function (t) { return [t, DATA.comparison[t].intervals]; });
    if (DATA.subtotal && DATA.subtotal.intervals) rows.push(["subtotal", DATA.subtotal.intervals]);
    if (!rows.length) { $("coverage-note").textContent = "No per-subject intervals: " + NOT_RECORDED + "."; return; }
    $("coverage-note").textContent = "How often each test subject's prediction interval held the true score, with its 95 % "
      + "Wilson interval, at the nominal level the sweep asked for; mean width in points.";
    const table = $("coverage-table");
    table.append(headRow(["task", "nominal level", "coverage [95 % Wilson CI]", "covered / n subjects", "mean width (points)"]));
    table.append(el("tbody", {}, rows.map(function (r) {
      const iv = r[1];
      return el("tr", { "data-task": r[0] }, [cell(r[0]), cell(isNum(iv.level) ? Math.round(100 * iv.level) + " %" : "–", true),
        cell(coverageText(iv), true), cell(fmt(iv.covered) + " / " + fmt(iv.n), true), cell(fixed(iv.mean_width, 2), true)]);
    })));
  }

  // --- 3. the subtotal ---------------------------------------------------------------------------
  function renderSubtotal() {
    const s = DATA.subtotal;
    if (!s) {
      $("subtotal-note").textContent = DATA.meta.finished ? "No subtotal: " + NOT_RECORDED + "." : "The subtotal appears when the sweep has finished.";
      empty("subtotal-plot");
      return;
    }
    const m = s.metrics, cal = s.calibration || {};
    const range = s.range ? fmt(s.range[0]) + "–" + fmt(s.range[1]) : "not recorded";
    $("subtotal-note").textContent = "The sum of " + (s.tasks.length ? s.tasks.join(" + ") : "the tasks") + " per test subject "
      + "with a prediction on every one of them (range " + range + (s.all_five_tasks === false ? ": not every task was run" : "")
      + "), in points, 95 % bootstrap intervals.";
    const table = $("subtotal-table");
    table.append(headRow(["n subjects", "RMSE [95 % CI]", "MAE [95 % CI]", "R² [95 % CI]", "Pearson r", "cal. slope", "cal. intercept"]));
    table.append(el("tbody", {}, [el("tr", {}, [cell(fmt(m.n), true), cell(withCI(m.rmse, m.rmse_ci), true),
      cell(withCI(m.mae, m.mae_ci), true), cell(withCI(m.r2, m.r2_ci), true), cell(fixed(m.pearson_r), true),
      cell(cal.source ? (isNum(cal.slope) ? fixed(cal.slope, 2) : "undefined") : "not recorded", true),
      cell(cal.source ? (isNum(cal.intercept) ? fixed(cal.intercept, 2) : "undefined") : "not recorded", true)])]));
    const auc = s.dementia_auc;
    const line = $("auc-line");
    if (auc && isNum(auc.auc)) {
      line.textContent = (auc.synthetic ? "SYNTHETIC cohort: " : "") + "AUC of the predicted subtotal for telling the dementia "
        + "group from the others (" + auc.n_dementia + " vs " + auc.n_other + " subjects" + (auc.n_without_group ? "; "
        + auc.n_without_group + " without a group left out" : "") + "): " + withCI(auc.auc, auc.auc_ci) + " (95 % bootstrap "
        + "interval); no clinical cut-off is implied.";
    } else if (auc) {
      line.textContent = "No AUC: the groups file gave " + auc.n_dementia + " dementia and " + auc.n_other + " other subjects.";
    } else {
      line.textContent = "No AUC: the sweep was given no groups file.";
    }
    if (!cal.predicted || !cal.predicted.length) { empty("subtotal-plot"); return; }
    $("subtotal-plot").style.minHeight = "";
    const all = cal.true.concat(cal.predicted);
    const lo = (s.range ? s.range[0] : Math.min.apply(null, all)) - 0.5, hi = (s.range ? s.range[1] : Math.max.apply(null, all)) + 0.5;
    const traces = [
      { type: "scatter", mode: "markers", name: "test subjects (" + cal.n + ")", x: cal.predicted, y: cal.true, text: cal.subject_id,
        marker: { size: 7, color: "#0969da", opacity: 0.75 }, hovertemplate: "%{text}: predicted %{x:.2f}, true %{y}<extra></extra>" },
      { type: "scatter", mode: "lines", name: "ideal (y = x)", x: [lo, hi], y: [lo, hi], line: { dash: "dash", color: "#8c959f" }, hoverinfo: "skip" },
    ];
    if (isNum(cal.slope) && isNum(cal.intercept)) {
      traces.push({ type: "scatter", mode: "lines", name: "calibration line: true = " + fixed(cal.intercept, 2) + " + " + fixed(cal.slope, 2)
        + " × predicted (" + cal.source + ")", x: [lo, hi], y: [cal.intercept + cal.slope * lo, cal.intercept + cal.slope * hi],
        line: { color: "#cf222e", width: 2 }, hoverinfo: "skip" });
    }
    plot("subtotal-plot", traces, { xaxis: { title: { text: "predicted subtotal (sum of the winners' predictions)" }, range: [lo, hi] },
      yaxis: { title: { text: "true subtotal" }, range: [lo, hi], scaleanchor: "x" }, legend: { orientation: "h", y: -0.2 }, height: 540 });
  }

  // --- 4. the data: training N, outcomes, excluded recordings, groups ------------------------------
  function outcomeText(o) {
    return o ? fixed(o.mean, 2) + " (" + fixed(o.sd, 2) + ") [" + fmt(o.min) + "–" + fmt(o.max) + "]" : "–";
  }
  function renderData() {
    const ex = DATA.excluded_recordings || {};
    const tasks = DATA.tasks.filter(function (t) { return DATA.comparison[t]; });
    $("data-note").textContent = "Recordings the dataset build excluded: " + (isNum(ex.value) ? ex.value + " (from " + ex.source + ")"
      : ex.source ? "not recorded by the data root (" + ex.source + ")" : "not recorded") + ". Per task: the subjects the "
      + "winner was trained on and tested on, and the distribution of the true sub-score in each (mean (sd) [min–max]; "
      + "counts per score, training / test).";
    const withTraining = tasks.filter(function (t) { return DATA.comparison[t].training; });
    const table = $("training-table");
    if (!withTraining.length) {
      if (tasks.length) $("data-note").textContent += " Training N and outcomes: " + NOT_RECORDED + ".";
    } else {
      const scores = [];
      withTraining.forEach(function (t) {
        const o = DATA.comparison[t].training.outcome || {};
        [o.train, o.test].forEach(function (d) {
          Object.keys((d && d.counts) || {}).forEach(function (k) { if (scores.indexOf(k) < 0) scores.push(k); });
        });
      });
      scores.sort(function (a, b) { return +a - +b; });
      table.append(headRow(["task", "n train", "n test", "train outcome", "test outcome"].concat(scores.map(function (k) { return "score " + k; }))));
      table.append(el("tbody", {}, withTraining.map(function (t) {
        const tr = DATA.comparison[t].training, o = tr.outcome || {};
        const counts = function (d, k) { return d && d.counts && d.counts[k] !== undefined ? String(d.counts[k]) : "0"; };
        const range = (DATA.score_ranges || {})[t];
        return el("tr", { "data-task": t }, [cell(t), cell(fmt(tr.n_train), true), cell(fmt(tr.n_test), true),
          cell(outcomeText(o.train), true), cell(outcomeText(o.test), true)].concat(scores.map(function (k) {
          const possible = !range || (+k >= range[0] && +k <= range[1]);
          return cell(possible ? counts(o.train, k) + " / " + counts(o.test, k) : "", true);
        })));
      })));
    }
    const rows = [];
    tasks.forEach(function (t) { if (DATA.comparison[t].per_group) rows.push([t, DATA.comparison[t].per_group]); });
    if (DATA.subtotal && DATA.subtotal.per_group) rows.push(["subtotal", DATA.subtotal.per_group]);
    if (!rows.length) {
      $("groups-note").textContent = "No error per group: the sweep was given no groups file, or " + NOT_RECORDED + ".";
      return;
    }
    $("groups-note").textContent = "The winner's error on the test subjects of each group the groups file names (points; "
      + "bias: mean of predicted − true).";
    const groups = $("groups-table");
    groups.append(headRow(["task", "group", "n subjects", "RMSE", "MAE", "bias"]));
    const body = el("tbody");
    const GROUP_ORDER = ["healthy", "mci", "dementia"];  // by severity; others after, as named
    function rank(g) { const i = GROUP_ORDER.indexOf(g.toLowerCase()); return i < 0 ? GROUP_ORDER.length : i; }
    rows.forEach(function (r) {
      Object.keys(r[1]).sort(function (a, b) { return rank(a) - rank(b) || a.localeCompare(b); }).forEach(function (g, i) {
        const v = r[1][g] || {};
        body.append(el("tr", { "data-task": r[0], "data-group": g }, [cell(i === 0 ? r[0] : ""), cell(g), cell(fmt(v.n), true),
          cell(fixed(v.rmse), true), cell(fixed(v.mae), true), cell(signed(v.bias), true)]));
      });
    });
    groups.append(body);
  }

  // --- task views (5-7) -------------------------------------------------------------------------
  function renderTaskSelect() {
    const select = $("task-select");
    DATA.tasks.forEach(function (t) { select.append(el("option", { value: t, text: t + (taskItem(t) ? ": " + taskItem(t) : "") })); });
    select.value = state.task || "";
    select.addEventListener("change", function () { setTask(select.value); });
  }
  function setTask(task) {
    state.task = task;
    $("task-select").value = task;
    renderTaskViews();
  }
  function renderTaskViews() {
    guard("curves-view", renderCurves);
    guard("hp-view", renderHyperparameters);
    guard("calibration-view", renderCalibration);
  }

  // 5. learning curves and rungs
  function renderCurves() {
    const task = state.task;
    const trials = DATA.trials.filter(function (t) { return t.task === task; });
    const rungs = DATA.asha.rungs || [];
    const traces = [];
    const order = ["completed", "early_stopping", "running", "error", "asha"];
    order.forEach(function (status) {
      const group = trials.filter(function (t) { return t.status === status; });
      if (!group.length) return;
      const x = [], y = [], text = [];
      group.forEach(function (t) {
        trialEpochs(t).forEach(function (e, i) { x.push(e); y.push(t.loss[i]); text.push(t.name); });
        x.push(null); y.push(null); text.push(null);
      });
      traces.push({ type: "scatter", mode: "lines", name: (STATUS_LABEL[status] || status) + " (" + group.length + ")",
        x: x, y: y, text: text, meta: { status: status, trials: group.map(function (t) { return t.trial_id; }) },
        line: { width: status === "asha" ? 1 : 1.4, color: STATUS_COLOR[status] }, opacity: status === "asha" ? 0.35 : 0.85,
        hovertemplate: "%{text}<br>epoch %{x}: val loss %{y:.4g}<extra>" + (STATUS_LABEL[status] || status) + "</extra>" });
    });
    const stopped = trials.filter(function (t) { return t.status === "asha" && t.loss.length; });
    if (stopped.length) {
      traces.push({ type: "scatter", mode: "markers", name: "where ASHA stopped a trial", showlegend: true,
        x: stopped.map(function (t) { const e = trialEpochs(t); return e[e.length - 1]; }),
        y: stopped.map(function (t) { return t.loss[t.loss.length - 1]; }),
        text: stopped.map(function (t) { return t.name; }), meta: { status: "asha-end" },
        marker: { symbol: "x-thin-open", size: 7, color: STATUS_COLOR.asha, line: { width: 1.5, color: STATUS_COLOR.asha } },
        hovertemplate: "%{text}: stopped at epoch %{x}<extra></extra>" });
    }
    const reached = (DATA.asha.reached || {})[task] || { n_trials: trials.length, counts: [] };
    const shapes = rungs.map(function (r) {
      return { type: "line", xref: "x", yref: "paper", x0: r, x1: r, y0: 0, y1: 1, line: { dash: "dot", width: 1.2, color: "#cf222e" } };
    });
    const annotations = rungs.map(function (r, i) {
      return { x: r, xref: "x", y: 1, yref: "paper", yanchor: "bottom", showarrow: false, font: { size: 11, color: "#cf222e" },
        text: "rung " + r + ": " + (reached.counts[i] === undefined ? "?" : reached.counts[i]) + "/" + reached.n_trials };
    });
    if (!traces.length) { empty("curves-plot"); $("curves-note").textContent = "No trial of " + task + " has reported yet."; return; }
    $("curves-plot").style.minHeight = "";
    // A log axis (labels at 1, 2, 5 x 10^k) when the losses span 3x or more; linear below that.
    let lo = Infinity, hi = -Infinity;
    trials.forEach(function (t) { t.loss.forEach(function (v) { if (isNum(v) && v > 0) { lo = Math.min(lo, v); hi = Math.max(hi, v); } }); });
    const yType = hi / lo >= 3 ? "log" : "linear";
    const yaxis = { title: { text: "validation loss (scaled MSE, what ASHA compares)" }, type: yType };
    if (yType === "log") {
      yaxis.tickvals = [];
      for (let k = Math.floor(Math.log10(lo)); k <= Math.ceil(Math.log10(hi)); k++) {
        [1, 2, 5].forEach(function (m) { const v = m * Math.pow(10, k); if (v >= lo / 1.5 && v <= hi * 1.5) yaxis.tickvals.push(v); });
      }
      yaxis.ticktext = yaxis.tickvals.map(function (v) { return String(+v.toPrecision(1)); });
    }
    plot("curves-plot", traces, { shapes: shapes, annotations: annotations, margin: { l: 70, r: 20, t: 40, b: 50 },
      xaxis: { title: { text: "epoch" } }, yaxis: yaxis,
      legend: { orientation: "h", y: -0.18 }, height: 480 });
    const asha = DATA.asha;
    $("curves-note").textContent = task + ": the validation loss of every trial per epoch (its best signature's; ASHA compares "
      + "trials of one task by it). " + (rungs.length ? "Dotted lines: ASHA's rungs (from " + asha.source + "), with how many of "
      + "the task's trials reached each. Trials ASHA stopped end faintly at their rung (×)." : "No ASHA rungs are known for this sweep.");
    const table = $("rung-counts");
    table.replaceChildren();
    if (rungs.length) {
      table.append(el("thead", {}, [el("tr", {}, ["rung (epoch)", "trials that reached it", "of"].map(function (h) { return el("th", { text: h }); }))]));
      table.append(el("tbody", {}, rungs.map(function (r, i) {
        return el("tr", { "data-rung": String(r) }, [el("td", { className: "num", text: String(r) }),
          el("td", { className: "num", text: String(reached.counts[i]) }), el("td", { className: "num", text: String(reached.n_trials) })]);
      })));
    }
  }

  // 6. hyper-parameters
  function hpAxis(key, values) {
    const scale = DATA.hp_scale[key] || "linear";
    if (scale === "category") {
      const cats = Array.from(new Set(values.map(String))).sort();
      return { values: values.map(function (v) { return cats.indexOf(String(v)); }), tickvals: range(cats.length), ticktext: cats };
    }
    if (scale === "log") {
      const logs = values.map(function (v) { return v > 0 ? Math.log10(v) : null; });
      const finite = logs.filter(isNum);
      const lo = Math.floor(Math.min.apply(null, finite)), hi = Math.ceil(Math.max.apply(null, finite));
      const ticks = range(hi - lo + 1, lo);
      return { values: logs, tickvals: ticks, ticktext: ticks.map(function (k) { return "1e" + k; }) };
    }
    return { values: values };
  }
  function renderHyperparameters() {
    const task = state.task;
    const rows = DATA.rows.filter(function (r) { return r.task === task && isNum(r["val/rmse"]); });
    const keys = DATA.hp_keys;
    if (!keys.length || !rows.length) {
      empty("parcoords-plot"); empty("slices-plot");
      $("hp-note").textContent = !keys.length ? "This sweep searched no hyper-parameters." : "No " + task + " trial has a validation RMSE yet.";
      return;
    }
    $("parcoords-plot").style.minHeight = ""; $("slices-plot").style.minHeight = "";
    const rmse = rows.map(function (r) { return r["val/rmse"]; });
    const dims = keys.map(function (k) {
      const axis = hpAxis(k, rows.map(function (r) { return r["hp/" + k]; }));
      const dim = { label: k + (DATA.hp_scale[k] === "log" ? " (log)" : ""), values: axis.values };
      if (axis.tickvals) { dim.tickvals = axis.tickvals; dim.ticktext = axis.ticktext; }
      return dim;
    });
    dims.push({ label: "val RMSE", values: rmse });
    drawWhenVisible("parcoords-plot", function () {
      plot("parcoords-plot", [{ type: "parcoords", dimensions: dims,
        line: { color: rmse, colorscale: "Viridis", reversescale: true, showscale: true, colorbar: { title: { text: "val RMSE" } } } }],
      { margin: { l: 70, r: 70, t: 50, b: 30 }, height: 380 });
    });
    const cols = Math.min(4, keys.length), nrows = Math.ceil(keys.length / cols);
    const traces = [], layout = { grid: { rows: nrows, columns: cols, pattern: "independent", xgap: 0.08, ygap: 0.25 },
      showlegend: false, height: 250 * nrows + 40, margin: { l: 60, r: 20, t: 20, b: 50 } };
    keys.forEach(function (k, i) {
      const n = i === 0 ? "" : String(i + 1);
      const scale = DATA.hp_scale[k];
      const x = rows.map(function (r) { return scale === "category" ? String(r["hp/" + k]) : r["hp/" + k]; });
      traces.push({ type: "scatter", mode: "markers", x: x, y: rmse, xaxis: "x" + n, yaxis: "y" + n,
        text: rows.map(function (r) { return (r.name || r.trial_id) + " " + r.signature; }),
        marker: { size: 5, opacity: 0.55, color: "#0969da" }, hovertemplate: "%{text}<br>" + k + " = %{x}<br>val RMSE %{y:.3f}<extra></extra>" });
      layout["xaxis" + n] = { title: { text: k }, type: scale === "log" ? "log" : scale === "category" ? "category" : "linear" };
      layout["yaxis" + n] = { title: { text: i % cols === 0 ? "val RMSE" : "" } };
    });
    plot("slices-plot", traces, layout);
    $("hp-note").textContent = task + ": every signature row of every trial (" + rows.length + "). Top: parallel coordinates (drag "
      + "along an axis to filter); below: validation RMSE against each hyper-parameter, the others varying.";
  }

  // 7. calibration
  function renderCalibration() {
    const task = state.task;
    const c = (DATA.calibration || {})[task];
    if (!c) {
      empty("calibration-plot");
      $("calibration-note").textContent = DATA.meta.finished
        ? "This sweep saved no per-subject test predictions for " + task + " (test_predictions.csv: newer sweeps write it)."
        : "Test predictions appear when the sweep has finished.";
      return;
    }
    $("calibration-plot").style.minHeight = "";
    const range = (DATA.score_ranges || {})[task] || [Math.min.apply(null, c.true), Math.max.apply(null, c.true)];
    const lo = range[0] - 0.25, hi = range[1] + 0.25;
    const traces = [
      { type: "scatter", mode: "markers", name: "test subjects (" + c.n + ")", x: c.predicted, y: c.true, text: c.subject_id,
        error_x: { type: "data", array: c.fold_sd.map(function (v) { return isNum(v) ? v : 0; }), visible: true, thickness: 1, width: 0, color: "#8c959f" },
        marker: { size: 7, color: "#0969da", opacity: 0.75 }, hovertemplate: "%{text}: predicted %{x:.2f}, true %{y}<extra></extra>" },
      { type: "scatter", mode: "lines", name: "ideal (y = x)", x: [lo, hi], y: [lo, hi], line: { dash: "dash", color: "#8c959f" }, hoverinfo: "skip" },
    ];
    if (isNum(c.slope) && isNum(c.intercept)) {
      traces.push({ type: "scatter", mode: "lines", name: "calibration line: true = " + fixed(c.intercept, 2) + " + " + fixed(c.slope, 2) + " × predicted",
        x: [lo, hi], y: [c.intercept + c.slope * lo, c.intercept + c.slope * hi], line: { color: "#cf222e", width: 2 }, hoverinfo: "skip" });
    }
    plot("calibration-plot", traces, { xaxis: { title: { text: "predicted " + task + " sub-score (mean of the fold-models; bars: sd)" }, range: [lo, hi] },
      yaxis: { title: { text: "true sub-score" }, range: [lo, hi], scaleanchor: "x" }, legend: { orientation: "h", y: -0.2 }, height: 540 });
    $("calibration-note").textContent = task + ": the winner (" + c.signature + ") on its " + c.n + " held-out test subjects. "
      + (isNum(c.slope) ? "The calibration line regresses the true score on the prediction (slope 1, intercept 0 is ideal; line "
        + c.line_source + ")." : "Its prediction is constant: the calibration slope is undefined.");
  }

  // --- 8. trials table -----------------------------------------------------------------------------
  const TABLE_COLUMNS = ["name", "task", "signature", "status", "epochs_run", "best_epoch", "val/rmse", "val/rmse_sd", "val/mae",
    "val/r2", "val/loss"].concat(DATA.hp_keys.map(function (k) { return "hp/" + k; })).concat(["trial_id"])
    .filter(function (c) { return c === "name" || DATA.columns.indexOf(c) >= 0; });
  function cmpValues(a, b, dir) {
    const na = a === null || a === undefined || a === "", nb = b === null || b === undefined || b === "";
    if (na || nb) return na && nb ? 0 : na ? 1 : -1; // blanks last either way
    if (typeof a === "number" && typeof b === "number") return (a - b) * dir;
    return String(a).localeCompare(String(b), undefined, { numeric: true }) * dir;
  }
  function filteredRows() {
    const words = state.filter.toLowerCase().split(/\s+/).filter(Boolean);
    let rows = DATA.rows.filter(function (r) {
      if (state.taskFilter && r.task !== state.taskFilter) return false;
      if (state.statusFilter && r.status !== state.statusFilter) return false;
      return words.every(function (w) { return r._text.indexOf(w) >= 0; });
    });
    if (state.sort.key) {
      const key = state.sort.key, dir = state.sort.dir;
      rows = rows.slice().sort(function (a, b) { return cmpValues(a[key], b[key], dir) || a._i - b._i; });
    }
    return rows;
  }
  function renderTableControls() {
    DATA.tasks.forEach(function (t) { $("table-task").append(el("option", { value: t, text: t })); });
    Object.keys(DATA.meta.status_counts).forEach(function (s) { $("table-status").append(el("option", { value: s, text: STATUS_LABEL[s] || s })); });
    $("table-filter").addEventListener("input", function (e) { state.filter = e.target.value; state.page = 0; renderTable(); });
    $("table-task").addEventListener("change", function (e) { state.taskFilter = e.target.value; state.page = 0; renderTable(); });
    $("table-status").addEventListener("change", function (e) { state.statusFilter = e.target.value; state.page = 0; renderTable(); });
    $("page-prev").addEventListener("click", function () { state.page = Math.max(0, state.page - 1); renderTable(); });
    $("page-next").addEventListener("click", function () { state.page += 1; renderTable(); });
    $("export-csv").addEventListener("click", exportCsv);
    const head = el("tr", {}, TABLE_COLUMNS.map(function (c) {
      const th = el("th", { "data-key": c, title: "sort by " + c, text: c.replace(/^hp\//, "").replace(/^val\//, "val ") });
      th.addEventListener("click", function () { sortBy(c); });
      return th;
    }));
    $("trials-table").append(el("thead", {}, [head]), el("tbody"));
  }
  function sortBy(key) {
    state.sort = { key: key, dir: state.sort.key === key ? -state.sort.dir : 1 };
    state.page = 0;
    renderTable();
  }
  function renderTable() {
    const rows = filteredRows();
    const pages = Math.max(1, Math.ceil(rows.length / TABLE_PAGE));
    state.page = Math.min(state.page, pages - 1);
    const shown = rows.slice(state.page * TABLE_PAGE, (state.page + 1) * TABLE_PAGE);
    document.querySelectorAll("#trials-table th").forEach(function (th) {
      const key = th.getAttribute("data-key");
      if (key === state.sort.key) th.setAttribute("aria-sort", state.sort.dir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    });
    const body = document.querySelector("#trials-table tbody");
    body.replaceChildren.apply(body, shown.map(function (r) {
      return el("tr", { "data-row": String(r._i), "data-trial-id": r.trial_id, className: "status-" + r.status }, TABLE_COLUMNS.map(function (c) {
        const v = r[c];
        return el("td", { className: typeof v === "number" ? "num" : null, "data-key": c,
          text: c === "status" ? (STATUS_LABEL[v] || v) : typeof v === "number" ? fmt(v, 4) : v === null || v === undefined ? "" : String(v) });
      }));
    }));
    $("table-count").textContent = rows.length + " of " + DATA.rows.length + " rows";
    $("page-info").textContent = rows.length ? (state.page * TABLE_PAGE + 1) + "–" + (state.page * TABLE_PAGE + shown.length) + " of " + rows.length : "no rows";
    $("page-prev").disabled = state.page === 0;
    $("page-next").disabled = state.page >= pages - 1;
  }
  function csvField(v) {
    if (v === null || v === undefined) return "";
    const s = typeof v === "boolean" ? (v ? "True" : "False") : String(v);
    return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  function exportCsv() {
    const rows = filteredRows();
    const lines = [DATA.columns.map(csvField).join(",")].concat(rows.map(function (r) {
      return DATA.columns.map(function (c) { return csvField(r[c]); }).join(",");
    }));
    const blob = new Blob([lines.join("\n") + "\n"], { type: "text/csv" });
    const link = el("a", { download: DATA.meta.name + "-trials.csv" });
    link.href = URL.createObjectURL(blob);
    document.body.append(link);
    link.click();
    setTimeout(function () { URL.revokeObjectURL(link.href); link.remove(); }, 0);
  }

  // --- 9. provenance ---------------------------------------------------------------------------------
  function renderProvenance() {
    const p = DATA.provenance || {};
    const dl = $("provenance");
    function item(label, value) { dl.append(el("dt", { text: label }), el("dd", { text: value === null || value === undefined || value === "" ? "not recorded" : value })); }
    $("provenance-note").textContent = p.recorded ? "As the sweep recorded it (summary.json)."
      : "This sweep's results record no provenance (an older sweep, or one still running): what is shown is read from its trials.";
    item("experiment", DATA.meta.uri);
    item("data root", p.data_root);
    item("code version (git commit)", p.git_commit || (p.recorded ? "no git checkout" : null));
    const v = p.versions || {};
    item("Ray", v.ray); item("torch", v.torch); item("Python", v.python);
    item("started", p.started); item("ended", p.ended || (DATA.meta.finished ? null : "still running"));
    if (p.times_from && (p.started || p.ended)) item("times from", p.times_from);
    const a = DATA.asha;
    item("ASHA rungs", a.rungs && a.rungs.length ? a.rungs.join(", ") + " (max_t " + fmt(a.max_t) + "; from " + a.source + ")" : null);
    Object.keys(p).filter(function (k) { return ["recorded", "sweep_config", "base_config", "data_root", "git_commit", "versions", "started", "ended", "times_from"].indexOf(k) < 0; })
      .forEach(function (k) { item(k, typeof p[k] === "object" ? JSON.stringify(p[k]) : String(p[k])); });
    const config = p.sweep_config || (p.base_config ? { "base training config (from the trials)": p.base_config } : null);
    $("sweep-config").textContent = config ? JSON.stringify(config, null, 2) : "not recorded";
  }

  // --- served by `mmse dashboard --serve`: reload when the sweep's page changes --------------------
  function restoreView() {
    try {
      const saved = JSON.parse(sessionStorage.getItem("mmse-dashboard-view") || "null");
      if (!saved || saved.name !== DATA.meta.name) return;
      if (saved.task && DATA.tasks.indexOf(saved.task) >= 0) setTask(saved.task);
      if (saved.cell) selectCell(saved.cell.signature, saved.cell.task);
      window.scrollTo(0, saved.scrollY || 0);
    } catch (err) { /* a view that cannot be restored is simply not restored */ }
  }
  function watchForUpdates() {
    if (!/^https?:$/.test(location.protocol) || DATA.meta.finished) return;
    setInterval(function () {
      fetch("version.json", { cache: "no-store" }).then(function (r) { return r.ok ? r.json() : null; }).then(function (v) {
        if (v && v.version && v.version !== DATA.meta.version) {
          sessionStorage.setItem("mmse-dashboard-view", JSON.stringify({ name: DATA.meta.name, task: state.task, cell: state.cell, scrollY: window.scrollY }));
          location.reload();
        }
      }).catch(function () { /* the server has stopped: keep the page as it is */ });
    }, (DATA.refresh_s || 5) * 1000);
  }

  guard("top", renderBanner);
  guard("top", renderHeader);
  guard("heatmap-view", renderHeatmap);
  guard("comparison-view", renderComparison);
  guard("subtotal-view", renderSubtotal);
  guard("data-view", renderData);
  guard("task-bar", renderTaskSelect);
  renderTaskViews();
  guard("table-view", function () { renderTableControls(); renderTable(); });
  guard("provenance-view", renderProvenance);
  if (/^https?:$/.test(location.protocol)) restoreView();
  watchForUpdates();
  window.dashboard = { data: DATA, state: state, timings: timings, pending: function () { return Object.keys(lazy.draw); }, selectCell: selectCell, setTask: setTask, sortBy: sortBy, filteredRows: filteredRows };
  window.dashboardReady = true;
})();
