// 4. The held-out split, where the sweep kept one (one split's numbers, apart from the
// estimate): each task's winner against the baselines on its test subjects, an older
// summary's estimate over fresh splits, and the coverage of the per-subject prediction
// intervals. Without a held-out split, only the data's line that says so.

function comparedTasks() { return DATA.tasks.filter(function (t) { return DATA.comparison.tasks[t]; }); }
function renderComparison() {
  const view = DATA.comparison;
  const tasks = comparedTasks();
  $("comparison-note").textContent = view.note;
  $("comparator-note").textContent = view.comparator_note;
  $("held-out-body").hidden = !view.held_out;
  if (!view.held_out) return;
  $("nested-part").hidden = !view.estimate_note;
  guard("nested-table", function () { renderNested(tasks); });
  guard("coverage-table", renderCoverage);
  if (!tasks.length) { empty("comparison-plot"); return; }
  const keys = [], labels = {};
  tasks.forEach(function (t) {
    view.tasks[t].models.forEach(function (m) { if (keys.indexOf(m.key) < 0) { keys.push(m.key); labels[m.key] = m.label; } });
  });
  const traces = keys.map(function (key, k) {
    const y = [], lo = [], hi = [], text = [];
    tasks.forEach(function (t) {
      const m = view.tasks[t].models.find(function (x) { return x.key === key; });
      const test = m && m.test ? m.test : {};
      const v = test.rmse, ci = test.rmse_ci;
      y.push(isNum(v) ? v : null);
      hi.push(ci && isNum(v) ? ci[1] - v : 0); lo.push(ci && isNum(v) ? v - ci[0] : 0);
      text.push(m ? withCI(v, ci) : "");
    });
    return { type: "bar", name: labels[key], x: tasks, y: y, text: text, textposition: "none",
      marker: { color: MODEL_PALETTE[k % MODEL_PALETTE.length] },
      error_y: { type: "data", symmetric: false, array: hi, arrayminus: lo, visible: view.any_interval, thickness: 1.2, width: 4, color: "#24292f" },
      hovertemplate: labels[key] + " on %{x}: test RMSE %{text}<extra></extra>" };
  });
  plot("comparison-plot", traces, { barmode: "group", xaxis: { title: { text: "task" } },
    yaxis: { title: { text: "test RMSE (sub-score points, lower is better)" }, rangemode: "tozero" }, height: 380 });
  const table = $("comparison-table");
  table.append(headRow(["task", "model", "RMSE", "95 % CI", "MAE [95 % CI]", "R²", "Pearson r", "cal. slope", "cal. intercept",
    "n", "signature (CV RMSE)", "winner − model (RMSE) [95 % CI]"]));
  const body = el("tbody");
  tasks.forEach(function (t) {
    const c = view.tasks[t];
    c.models.forEach(function (m, i) {
      const cmp = m.comparison, test = m.test || {};
      const diffCell = el("td", { text: cmp ? signed(cmp.rmse_diff) + " " + signedCI(cmp.rmse_diff_ci) + " " + cmp.words : "" },
        m.tag ? [el("span", { className: "tag" + (cmp && cmp.primary ? " primary" : ""), text: m.tag })] : []);
      body.append(el("tr", { "data-task": t, "data-model": m.key, title: i === 0 && c.winner.name ? "trial " + c.winner.name : null }, [
        cell(i === 0 ? t : ""), cell(m.label),
        cell(stat(test, m.absent, "rmse"), true), cell(fmtCI(test.rmse_ci)),
        cell(statCI(test, m.absent, "mae"), true),
        cell(stat(test, m.absent, "r2"), true), cell(stat(test, m.absent, "pearson_r"), true),
        cell(stat(test, m.absent, "calibration_slope", 2), true),
        cell(stat(test, m.absent, "calibration_intercept", 2), true),
        cell(fmt(test.n), true), cell(m.signature), diffCell]));
    });
  });
  table.append(body);
}

// The nested estimate (or an older sweep's procedure estimate) beside the test numbers.
function renderNested(tasks) {
  $("nested-note").textContent = DATA.comparison.estimate_note;
  const withEstimate = tasks.filter(function (t) { return DATA.comparison.tasks[t].estimate; });
  if (!withEstimate.length) return;
  const table = $("nested-table");
  table.append(headRow(["task", "model", "test RMSE [95 % CI]", "estimate: mean (sd)", "repeats", "per repeat", "signatures chosen", "search"]));
  const body = el("tbody");
  withEstimate.forEach(function (t) {
    const n = DATA.comparison.tasks[t].estimate;
    n.rows.forEach(function (r, i) {
      const est = r.estimate;
      const sd = est && isNum(est.rmse_sd) ? fixed(est.rmse_sd) : r.absent.rmse_sd;
      body.append(el("tr", { "data-task": t, "data-model": r.key, "data-kind": n.kind, title: n.label }, [
        cell(i === 0 ? t : ""), cell(r.label), cell(withCI(r.test_rmse, r.test_rmse_ci), true),
        cell(est ? fixed(est.rmse_mean) + " (" + sd + ")" : r.absent.estimate, true),
        cell(fmt(n.repeats), true),
        cell(est ? est.rmse_values.map(function (v) { return fixed(v); }).join(", ") : ""),
        cell(est ? Array.from(new Set(est.signatures_chosen)).join(", ") : ""),
        cell(i === 0 ? n.search : "")]));
    });
  });
  table.append(body);
}

// The held-out split's coverage (one split's), apart from view 2's over the outer folds.
function renderCoverage() {
  $("coverage-note").textContent = DATA.comparison.coverage_note;
  const rows = DATA.comparison.coverage;
  if (!rows.length) return;
  const table = $("coverage-table");
  table.append(headRow(DATA.comparison.coverage_columns));
  table.append(el("tbody", {}, rows.map(function (r) {
    const iv = r.coverage;
    return el("tr", { "data-task": r.task }, [cell(r.task), cell(iv.method), cell(r.level_text, true),
      cell(coverageText(iv), true), cell(fmt(iv.covered) + " / " + fmt(iv.n), true), cell(fixed(iv.mean_width, 2), true)]);
  })));
}
