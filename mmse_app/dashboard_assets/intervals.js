// 2. The prediction intervals calibrated on the estimate's outer folds: per task and for the
// subtotal their method, level and guarantee, their coverage over the outer folds (overall,
// by band, by true score, by group) with the cells the data marks short, and a plot of the
// coverage per true score, task by task; or the data's sentence saying why there are none.

function intervalTasks() { return DATA.tasks.filter(function (t) { return DATA.intervals.tasks[t]; }); }
function intervalBlocks() {
  const view = DATA.intervals;
  return intervalTasks().map(function (t) { return view.tasks[t]; }).concat(view.subtotal ? [view.subtotal] : []);
}
function renderIntervals() {
  const view = DATA.intervals;
  $("intervals-note").textContent = view.note;
  $("intervals-plot-note").textContent = view.plot_note;
  $("intervals-missing").textContent = view.missing.map(function (m) { return m.label + ": " + m.text; }).join(" ");
  $("intervals-subtotal-note").textContent = view.subtotal_note;
  $("intervals-held-out-note").textContent = view.held_out_note;
  const blocks = intervalBlocks();
  const plotted = blocks.filter(function (b) { return b.points.length; });
  if (!plotted.length) empty("intervals-plot");
  else guard("intervals-plot", function () { plotIntervalScores(plotted); });
  if (!blocks.length) return;
  const table = $("intervals-table");
  table.append(headRow(view.summary_columns));
  table.append(el("tbody", {}, blocks.map(function (b) {
    const o = b.overall.cell;
    return el("tr", { "data-task": b.task, "data-short": b.short.length ? "true" : "false" }, [
      cell(b.task), cell(b.method), cell(b.level_text, true), cell(coverageText(o), true),
      cell(fmt(o.covered) + " / " + fmt(o.n), true), cell(fixed(o.mean_width, 2), true),
      el("td", { className: b.short.length ? "warn short-cells" : "short-cells", text: b.short_text })]);
  })));
  const box = $("intervals-blocks");
  blocks.forEach(function (b) { box.append(intervalBlock(b, view)); });
}

function intervalRow(c, part) {
  const v = c.cell;
  return el("tr", { className: c.mark ? "short" : null, "data-part": part, "data-label": v.label,
    "data-short": c.mark ? "true" : "false" }, [
    cell(v.label), cell(c.absent || coverageText(v), true), cell(fmt(v.covered) + " / " + fmt(v.n), true),
    cell(fixed(v.mean_width, 2), true), el("td", { className: c.mark ? "warn mark-short" : "mark-short", text: c.mark })]);
}

function intervalBlock(b, view) {
  const box = el("div", { className: "interval-block", "data-task": b.task });
  box.append(el("h3", { text: b.title }));
  box.append(el("p", { className: "method", text: b.method + ", " + b.nominal_label }));
  box.append(el("p", { className: "note guarantee" }, [el("strong", { text: view.guarantee_label }),
    document.createTextNode(" " + b.guarantee)]));
  box.append(el("p", { className: "note calibration", text: b.calibration }));
  const table = el("table", { className: "grid interval-cells", "data-task": b.task });
  table.append(headRow(view.columns));
  const body = el("tbody", {}, [intervalRow(b.overall, "overall")]);
  b.parts.forEach(function (p) {
    body.append(el("tr", { className: "part" }, [el("th", { colspan: String(view.columns.length), text: p.title })]));
    p.cells.forEach(function (c) { body.append(intervalRow(c, p.key)); });
  });
  table.append(body);
  box.append(el("div", { className: "scroll" }, [table]));
  return box;
}

// Small multiples: per block, its per-score cells' coverage with their intervals as error bars
// (the cells the data marks short in the warning colour) and the block's level dashed.
function plotIntervalScores(blocks) {
  const view = DATA.intervals, traces = [], annotations = [], layout = {};
  const width = 1 / blocks.length, gap = blocks.length > 1 ? 0.04 : 0;
  const shown = {};
  blocks.forEach(function (b, i) {
    const suffix = i === 0 ? "" : String(i + 1);
    const xa = "x" + suffix, ya = "y" + suffix;
    const scores = b.points.map(function (c) { return c.score; });
    const low = Math.min.apply(null, scores) - 0.5, high = Math.max.apply(null, scores) + 0.5;
    [false, true].forEach(function (short) {
      const cells = b.points.filter(function (c) { return Boolean(c.mark) === short; });
      if (!cells.length) return;
      const name = short ? b.short_label : view.covered_label;
      traces.push({ type: "scatter", mode: "markers", xaxis: xa, yaxis: ya, name: name, legendgroup: name,
        showlegend: !shown[name], meta: { task: b.task, short: short },
        x: cells.map(function (c) { return c.score; }),
        y: cells.map(function (c) { return isNum(c.cell.coverage) ? c.cell.coverage : null; }),
        text: cells.map(function (c) { return c.cell.label + ": " + coverageText(c.cell) + ", n " + fmt(c.cell.n) + (c.mark ? " (" + c.mark + ")" : ""); }),
        marker: { size: 9, color: short ? WARN_COLOR : MODEL_PALETTE[0], symbol: short ? "diamond" : "circle" },
        error_y: { type: "data", symmetric: false, thickness: 1.2, width: 4, color: short ? WARN_COLOR : "#24292f",
          array: cells.map(function (c) { const ci = c.cell.coverage_ci, v = c.cell.coverage; return ci && isNum(v) ? ci[1] - v : 0; }),
          arrayminus: cells.map(function (c) { const ci = c.cell.coverage_ci, v = c.cell.coverage; return ci && isNum(v) ? v - ci[0] : 0; }) },
        hovertemplate: "%{text}<extra></extra>" });
      shown[name] = true;
    });
    traces.push({ type: "scatter", mode: "lines", xaxis: xa, yaxis: ya, name: b.nominal_label, legendgroup: b.nominal_label,
      showlegend: !shown[b.nominal_label], meta: { task: b.task, nominal: true }, x: [low, high], y: [b.level, b.level],
      line: { dash: "dash", color: "#59636e", width: 1.5 }, hoverinfo: "skip" });
    shown[b.nominal_label] = true;
    layout["xaxis" + suffix] = { domain: [i * width + (i ? gap / 2 : 0), (i + 1) * width - (i < blocks.length - 1 ? gap / 2 : 0)],
      anchor: ya, title: { text: view.x_label }, range: [low, high], dtick: 1, zeroline: false };
    layout["yaxis" + suffix] = { anchor: xa, range: [0, 1.05], tickformat: ".0%", title: { text: i === 0 ? view.y_label : "" } };
    annotations.push({ text: b.title, xref: xa + " domain", yref: ya + " domain", x: 0.5, y: 1.02,
      xanchor: "center", yanchor: "bottom", showarrow: false, font: { size: 12 } });
  });
  plot("intervals-plot", traces, Object.assign(layout, { annotations: annotations, height: 380,
    margin: { l: 60, r: 20, t: 40, b: 50 }, legend: { orientation: "h", y: -0.2 } }));
}
