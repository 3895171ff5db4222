// 7. Learning curves (the validation loss ASHA compares) and ASHA's rungs.

function renderCurves() {
  const task = state.task;
  const trials = DATA.trials.filter(function (t) { return t.task === task; });
  const rungs = DATA.asha.rungs;
  const traces = [];
  DATA.statuses.forEach(function (s) {
    const group = trials.filter(function (t) { return t.status === s.status; });
    if (!group.length) return;
    const x = [], y = [], text = [];
    group.forEach(function (t) {
      trialEpochs(t).forEach(function (e, i) { x.push(e); y.push(t.loss[i]); text.push(t.name); });
      x.push(null); y.push(null); text.push(null);
    });
    traces.push({ type: "scatter", mode: "lines", name: s.label + " (" + group.length + ")",
      x: x, y: y, text: text, meta: { status: s.status, trials: group.map(function (t) { return t.trial_id; }) },
      line: { width: s.faint ? 1 : 1.4, color: s.color }, opacity: s.faint ? 0.35 : 0.85,
      hovertemplate: "%{text}<br>epoch %{x}: val loss %{y:.4g}<extra>" + s.label + "</extra>" });
  });
  const stopped = trials.filter(function (t) { return t.stop_epoch !== null && t.loss.length; });
  if (stopped.length) {
    const color = statusColor(stopped[0].status);
    traces.push({ type: "scatter", mode: "markers", name: "where ASHA stopped a trial", showlegend: true,
      x: stopped.map(function (t) { const e = trialEpochs(t); return e[e.length - 1]; }),
      y: stopped.map(function (t) { return t.loss[t.loss.length - 1]; }),
      text: stopped.map(function (t) { return t.name; }), meta: { status: "stop" },
      marker: { symbol: "x-thin-open", size: 7, color: color, line: { width: 1.5, color: color } },
      hovertemplate: "%{text}: stopped at epoch %{x}<extra></extra>" });
  }
  const reached = DATA.asha.reached[task] || { n_trials: trials.length, counts: [] };
  const shapes = rungs.map(function (r) {
    return { type: "line", xref: "x", yref: "paper", x0: r, x1: r, y0: 0, y1: 1, line: { dash: "dot", width: 1.2, color: "#cf222e" } };
  });
  const annotations = rungs.map(function (r, i) {
    return { x: r, xref: "x", y: 1, yref: "paper", yanchor: "bottom", showarrow: false, font: { size: 11, color: "#cf222e" },
      text: "rung " + r + ": " + (reached.counts[i] === undefined ? "?" : reached.counts[i]) + "/" + reached.n_trials };
  });
  const table = $("rung-counts");
  table.replaceChildren();
  if (!traces.length) { empty("curves-plot"); $("curves-note").textContent = task + ": " + DATA.curves_missing; return; }
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
    xaxis: { title: { text: "epoch" } }, yaxis: yaxis, legend: { orientation: "h", y: -0.18 }, height: 480 });
  $("curves-note").textContent = task + ": the validation loss of every trial per epoch (its best signature's; ASHA compares "
    + "trials of one task by it). " + DATA.asha.note;
  if (rungs.length) {
    table.append(headRow(["rung (epoch)", "trials that reached it", "of"]));
    table.append(el("tbody", {}, rungs.map(function (r, i) {
      return el("tr", { "data-rung": String(r) }, [cell(String(r), true), cell(String(reached.counts[i]), true),
        cell(String(reached.n_trials), true)]);
    })));
  }
}
