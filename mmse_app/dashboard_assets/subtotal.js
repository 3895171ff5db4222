// 5. The held-out split's subtotal: the sum of the tasks' predictions per test subject.

function renderSubtotal() {
  const s = DATA.subtotal;
  $("subtotal-note").textContent = s.note;
  if (!s.recorded) { empty("subtotal-plot"); return; }
  const m = s.test || {};
  const table = $("subtotal-table");
  table.append(headRow(["n subjects", "RMSE [95 % CI]", "MAE [95 % CI]", "R² [95 % CI]", "Pearson r", "cal. slope", "cal. intercept"]));
  table.append(el("tbody", {}, [el("tr", {}, [cell(fmt(m.n), true), cell(statCI(m, s.absent, "rmse"), true),
    cell(statCI(m, s.absent, "mae"), true), cell(statCI(m, s.absent, "r2"), true), cell(stat(m, s.absent, "pearson_r"), true),
    cell(stat(m, s.absent, "calibration_slope", 2), true), cell(stat(m, s.absent, "calibration_intercept", 2), true)])]));
  $("auc-line").textContent = s.auc;
  $("subtotal-points-note").textContent = s.points_note;
  const p = s.points;
  if (!p || !p.predicted.length) { empty("subtotal-plot"); return; }
  $("subtotal-plot").style.minHeight = "";
  const all = p.true.concat(p.predicted);
  const lo = (s.range ? s.range[0] : Math.min.apply(null, all)) - 0.5, hi = (s.range ? s.range[1] : Math.max.apply(null, all)) + 0.5;
  const traces = [
    { type: "scatter", mode: "markers", name: "test subjects (" + p.subject_id.length + ")", x: p.predicted, y: p.true,
      text: p.subject_id, marker: { size: 7, color: "#0969da", opacity: 0.75 },
      hovertemplate: "%{text}: predicted %{x:.2f}, true %{y}<extra></extra>" },
  ];
  // Each subject's prediction interval for the true subtotal, at its prediction.
  const x = [], y = [];
  p.predicted.forEach(function (v, i) {
    if (isNum(p.lo[i]) && isNum(p.hi[i])) { x.push(v, v, null); y.push(p.lo[i], p.hi[i], null); }
  });
  if (x.length) {
    traces.push({ type: "scatter", mode: "lines", name: "prediction intervals", x: x, y: y,
      line: { color: "#8c959f", width: 1 }, opacity: 0.6, hoverinfo: "skip" });
  }
  traces.push({ type: "scatter", mode: "lines", name: "ideal (y = x)", x: [lo, hi], y: [lo, hi],
    line: { dash: "dash", color: "#8c959f" }, hoverinfo: "skip" });
  if (s.line_label) {
    traces.push({ type: "scatter", mode: "lines", name: s.line_label, x: [lo, hi],
      y: [m.calibration_intercept + m.calibration_slope * lo, m.calibration_intercept + m.calibration_slope * hi],
      line: { color: "#cf222e", width: 2 }, hoverinfo: "skip" });
  }
  plot("subtotal-plot", traces, { xaxis: { title: { text: "predicted subtotal (sum of the winners' predictions)" }, range: [lo, hi] },
    yaxis: { title: { text: "true subtotal" }, range: [lo, hi], scaleanchor: "x" }, legend: { orientation: "h", y: -0.2 }, height: 540 });
}
