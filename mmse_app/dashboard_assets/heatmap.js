// 3. signature x task: the best validation RMSE, the winners and (on their cells) verdicts.

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
  DATA.heatmap.heads.forEach(function (h) {
    const verdict = h.verdict || "none";
    head.append(el("th", { className: "task", "data-task": h.task, "data-verdict": verdict, title: h.title }, [
      document.createTextNode(h.task), el("br"), el("span", { className: "mark " + verdict, text: h.text })]));
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
      if (c.winner) td.append(el("span", { className: "mark " + verdict, text: c.mark }));
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
  $("heatmap-note").textContent = DATA.heatmap.note;
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
  table.append(headRow(["name", "trial id", "ending", "epochs", "best epoch", "val RMSE", "sd", "val MAE"].concat(hp)));
  const body = el("tbody");
  rows.forEach(function (r) {
    const tr = el("tr", { "data-trial-id": r.trial_id, className: "status-" + r.status + (statusFaint(r.status) ? " faint" : "") }, [
      el("td", { text: r.name || "" }), el("td", { text: r.trial_id }), el("td", { text: statusLabel(r.status) }),
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
      const t = DATA.trials[r.trial], faint = statusFaint(t.status);
      traces.push({
        type: "scatter", mode: "lines", name: r.name || r.trial_id, x: trialEpochs(t), y: series(t),
        meta: { trial_id: r.trial_id }, opacity: faint ? 0.45 : 1,
        line: { width: 1.5, dash: faint ? "dot" : "solid" },
        hovertemplate: (r.name || r.trial_id) + " (" + statusLabel(t.status) + ")<br>epoch %{x}: val RMSE %{y:.3f}<extra></extra>",
      });
    });
  } else {
    DATA.statuses.forEach(function (s) {
      const x = [], y = [], text = [];
      drawn.forEach(function (r) {
        const t = DATA.trials[r.trial];
        if (t.status !== s.status) return;
        const v = series(t);
        trialEpochs(t).forEach(function (e, i) { x.push(e); y.push(v[i]); text.push(r.name || r.trial_id); });
        x.push(null); y.push(null); text.push(null);
      });
      if (x.length) traces.push({ type: "scatter", mode: "lines", name: s.label, x: x, y: y, text: text,
        line: { width: 1, color: s.color }, opacity: s.faint ? 0.35 : 0.9,
        hovertemplate: "%{text}<br>epoch %{x}: val RMSE %{y:.3f}<extra></extra>" });
    });
  }
  if (!traces.length) { empty("cell-plot"); return; }
  $("cell-plot").style.minHeight = "";
  plot("cell-plot", traces, { xaxis: { title: { text: "epoch" } },
    yaxis: { title: { text: "validation RMSE of " + sig + " (points)" } }, showlegend: traces.length <= 20, height: 360 });
}
