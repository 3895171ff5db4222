// 1. The estimate: each task's and the subtotal's repeated nested cross-validation, every
// model with its interval, the network minus each baseline (the verdict's first), the looks;
// or, for a summary without one, the data's sentence saying why.

function measureText(m, digits, sign) {
  if (!m || !isNum(m.value)) return null;
  const ci = m.ci && m.ci.length === 2;
  return sign ? signed(m.value, digits) + (ci ? " " + signedCI(m.ci, digits) : "") : withCI(m.value, m.ci, digits);
}
function pText(v) { return isNum(v) ? (v < 0.001 ? "< 0.001" : v.toFixed(3)) : "–"; }
function estimatedTasks() { return DATA.tasks.filter(function (t) { return DATA.estimate.tasks[t]; }); }
function renderEstimate() {
  const view = DATA.estimate;
  $("estimate-note").textContent = view.note;
  $("estimate-comparator-note").textContent = view.comparator_note;
  const looks = $("looks-line");
  looks.textContent = view.looks;
  looks.className = view.looks_changed ? "warn" : "";
  $("estimate-missing").textContent = view.missing.map(function (m) { return m.label + ": " + m.text; }).join(" ");
  $("estimate-subtotal-note").textContent = view.subtotal_note;
  const tasks = estimatedTasks();
  if (!tasks.length) empty("estimate-plot");
  else guard("estimate-plot", function () { plotEstimate(tasks); });
  const box = $("estimate-blocks");
  tasks.forEach(function (t) { box.append(estimateBlock(view.tasks[t], view)); });
  if (view.subtotal) box.append(estimateBlock(view.subtotal, view));
  // Apart from it, where the sweep made one: the same tables for each held-out group.
  if (view.transfer.length) {
    $("transfer-part").hidden = false;
    $("transfer-title").textContent = view.transfer_title;
    $("transfer-note").textContent = view.transfer_note;
    const part = $("transfer-blocks");
    view.transfer.forEach(function (b) { part.append(estimateBlock(b, view)); });
  }
}

// Per task: each model's RMSE estimate with its interval, grouped as the data orders them.
function plotEstimate(tasks) {
  const view = DATA.estimate, keys = [], labels = {};
  tasks.forEach(function (t) {
    view.tasks[t].models.forEach(function (m) { if (keys.indexOf(m.key) < 0) { keys.push(m.key); labels[m.key] = m.label; } });
  });
  const traces = keys.map(function (key, k) {
    const y = [], lo = [], hi = [], text = [];
    tasks.forEach(function (t) {
      const m = view.tasks[t].models.find(function (x) { return x.key === key; });
      const r = m ? m.scores.rmse : null, v = r ? r.value : null, ci = r ? r.ci : null;
      y.push(isNum(v) ? v : null);
      hi.push(ci && isNum(v) ? ci[1] - v : 0); lo.push(ci && isNum(v) ? v - ci[0] : 0);
      text.push(m ? withCI(v, ci) : "");
    });
    return { type: "bar", name: labels[key], x: tasks, y: y, text: text, textposition: "none", meta: { key: key },
      marker: { color: MODEL_PALETTE[k % MODEL_PALETTE.length] },
      error_y: { type: "data", symmetric: false, array: hi, arrayminus: lo, visible: true, thickness: 1.2, width: 4, color: "#24292f" },
      hovertemplate: labels[key] + " on %{x}: estimated RMSE %{text}<extra></extra>" };
  });
  plot("estimate-plot", traces, { barmode: "group", xaxis: { title: { text: "task" } },
    yaxis: { title: { text: "estimated RMSE (points, lower is better)" }, rangemode: "tozero" }, height: 380 });
}

function estimateBlock(b, view) {
  const box = el("div", { className: "estimate-block", "data-task": b.task });
  const primary = b.differences.find(function (d) { return d.difference.primary; });
  const head = el("h3", { text: b.title });
  if (b.verdict && primary) {
    head.append(el("span", { className: "mark " + (b.verdict.result || "none"), "data-verdict": b.verdict.result || "none",
      text: (primary.mark + " " + b.verdict.words).trim() }));
  }
  box.append(head, el("p", { className: "note design", text: b.design }));
  const chose = b.models.some(function (m) { return m.signatures; });
  const models = el("table", { className: "grid estimate-models", "data-task": b.task });
  models.append(headRow(["model"].concat(b.columns.map(function (c) { return c.label + " [95 % CI]"; }),
    chose ? ["signatures chosen (outer folds)"] : [])));
  models.append(el("tbody", {}, b.models.map(function (m) {
    return el("tr", { "data-model": m.key }, [cell(m.label)].concat(b.columns.map(function (c) {
      const td = cell(measureText(m.scores[c.key], c.digits) || m.absent[c.key] || "–", true);
      if (m.folds[c.key]) td.title = m.folds[c.key];
      td.dataset.metric = c.key;
      return td;
    }), chose ? [cell(m.signatures)] : []));
  })));
  box.append(el("div", { className: "scroll" }, [models]));
  if (b.differences.length) {
    // The first measure (the one the p-values and the result are of), its p-values and
    // result, then the other measures' differences.
    const first = b.columns[0], rest = b.columns.slice(1);
    function diffCell(x, c) {
      const td = cell(measureText(x[c.key], c.digits, true) || "–", true);
      td.dataset.metric = c.key;
      return td;
    }
    const diffs = el("table", { className: "grid estimate-differences", "data-task": b.task });
    diffs.append(headRow(["difference", first.label + " [95 % CI]", view.p_label, view.p_adjusted_label, "result"]
      .concat(rest.map(function (c) { return c.label + " [95 % CI]"; }))));
    diffs.append(el("tbody", {}, b.differences.map(function (d) {
      const x = d.difference;
      const result = el("td", { className: "result" }, [
        d.mark ? el("span", { className: "mark " + (x.result || "none"), text: d.mark }) : null,
        document.createTextNode((d.mark ? " " : "") + x.words),
        el("span", { className: "tag" + (d.mark ? " primary" : ""), text: d.tag })]);
      return el("tr", { "data-baseline": x.baseline, "data-primary": x.primary ? "true" : "false" }, [cell(d.label), diffCell(x, first),
        cell(pText(x.p_value), true), cell(isNum(x.p_holm) ? pText(x.p_holm) : "–", true), result]
        .concat(rest.map(function (c) { return diffCell(x, c); })));
    })));
    box.append(el("div", { className: "scroll" }, [diffs]));
  }
  if (b.auc.length) {
    const auc = el("table", { className: "grid estimate-auc", "data-task": b.task });
    auc.append(headRow(["", "AUC [95 % CI]", view.p_label]));
    auc.append(el("tbody", {}, b.auc.map(function (a) {
      return el("tr", { "data-key": a.key }, [cell(a.label), cell(measureText(a.measure, 3, a.signed) || "–", true),
        cell(isNum(a.p_value) ? pText(a.p_value) : "", true)]);
    })));
    box.append(el("div", { className: "scroll" }, [auc]));
  }
  if (b.auc_note) box.append(el("p", { className: "auc-note", text: b.auc_note }));
  if (b.groups.length) {
    const groups = el("table", { className: "grid held-out-groups", "data-task": b.task });
    groups.append(headRow(b.group_columns));
    groups.append(el("tbody", {}, b.groups.map(function (g) {
      return el("tr", { "data-group": g.label }, [cell(g.label)].concat(g.cells.map(function (c) { return cell(c, true); })));
    })));
    box.append(el("div", { className: "scroll" }, [groups]));
  }
  box.append(el("p", { className: "note what", text: b.what }));
  return box;
}
