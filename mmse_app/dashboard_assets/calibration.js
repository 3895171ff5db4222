// 9. Calibration: the winner's predicted against true sub-score on its test subjects, with
// the summary's calibration line.

function renderCalibration() {
  const task = state.task;
  const c = DATA.calibration[task];
  $("calibration-note").textContent = c ? c.note : "";
  if (!c || !c.predicted.length) { empty("calibration-plot"); return; }
  $("calibration-plot").style.minHeight = "";
  const r = c.score_range || [Math.min.apply(null, c.true), Math.max.apply(null, c.true)];
  const lo = r[0] - 0.25, hi = r[1] + 0.25;
  const traces = [
    { type: "scatter", mode: "markers", name: "test subjects (" + c.n + ")", x: c.predicted, y: c.true, text: c.subject_id,
      error_x: { type: "data", array: c.fold_sd.map(function (v) { return isNum(v) ? v : 0; }), visible: true, thickness: 1, width: 0, color: "#8c959f" },
      marker: { size: 7, color: "#0969da", opacity: 0.75 }, hovertemplate: "%{text}: predicted %{x:.2f}, true %{y}<extra></extra>" },
    { type: "scatter", mode: "lines", name: "ideal (y = x)", x: [lo, hi], y: [lo, hi], line: { dash: "dash", color: "#8c959f" }, hoverinfo: "skip" },
  ];
  if (c.line_label) {
    traces.push({ type: "scatter", mode: "lines", name: c.line_label,
      x: [lo, hi], y: [c.intercept + c.slope * lo, c.intercept + c.slope * hi], line: { color: "#cf222e", width: 2 }, hoverinfo: "skip" });
  }
  plot("calibration-plot", traces, { xaxis: { title: { text: "predicted " + task + " sub-score (mean of the fold-models; bars: sd)" }, range: [lo, hi] },
    yaxis: { title: { text: "true sub-score" }, range: [lo, hi], scaleanchor: "x" }, legend: { orientation: "h", y: -0.2 }, height: 540 });
}
