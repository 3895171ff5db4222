// 8. Hyper-parameter effects: parallel coordinates and validation RMSE against each one.
// How to draw each (log, linear, category) is the data's `hp_scale`.

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
