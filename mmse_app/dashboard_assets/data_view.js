// 6. The data: training N and outcomes per task, excluded recordings, error per group.

function outcomeText(o) {
  return o && o.n ? fixed(o.mean, 2) + " (" + fixed(o.sd, 2) + ") [" + fmt(o.min) + "–" + fmt(o.max) + "]" : "–";
}
function renderData() {
  const view = DATA.data;
  $("data-note").textContent = view.note;
  if (view.training.length) {
    const table = $("training-table");
    table.append(headRow(["task", "n train", "n test", "train outcome", "test outcome"]
      .concat(view.score_columns.map(function (k) { return "score " + k; }))));
    table.append(el("tbody", {}, view.training.map(function (r) {
      return el("tr", { "data-task": r.task }, [cell(r.task), cell(fmt(r.n_train), true), cell(fmt(r.n_test), true),
        cell(outcomeText(r.outcome_train), true), cell(outcomeText(r.outcome_test), true)].concat(r.counts.map(function (c) {
        return cell(c ? c[0] + " / " + c[1] : "", true);
      })));
    })));
  }
  $("groups-note").textContent = view.groups_note;
  if (!view.groups.length) return;
  const table = $("groups-table");
  table.append(headRow(["task", "group", "n subjects", "RMSE", "MAE", "bias"]));
  const body = el("tbody");
  view.groups.forEach(function (r) {
    r.groups.forEach(function (g, i) {
      body.append(el("tr", { "data-task": r.task, "data-group": g.group }, [cell(i === 0 ? r.task : ""), cell(g.group),
        cell(fmt(g.n), true), cell(fixed(g.rmse), true), cell(fixed(g.mae), true), cell(signed(g.bias), true)]));
    });
  });
  table.append(body);
}
