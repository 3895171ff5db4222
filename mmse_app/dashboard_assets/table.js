// 10. Trials: every row of trials.csv (or a running sweep's provisional rows), sortable,
// filterable, 50 a page, exported as CSV.

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
  DATA.statuses.filter(function (s) { return s.n; }).forEach(function (s) { $("table-status").append(el("option", { value: s.status, text: s.label })); });
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
    return el("tr", { "data-row": String(r._i), "data-trial-id": r.trial_id, className: "status-" + r.status + (statusFaint(r.status) ? " faint" : "") }, TABLE_COLUMNS.map(function (c) {
      const v = r[c];
      return el("td", { className: typeof v === "number" ? "num" : null, "data-key": c,
        text: c === "status" ? statusLabel(v) : typeof v === "number" ? fmt(v, 4) : v === null || v === undefined ? "" : String(v) });
    }));
  }));
  $("table-count").textContent = rows.length + " of " + DATA.rows.length + " rows";
  $("page-info").textContent = rows.length ? (state.page * TABLE_PAGE + 1) + "–" + (state.page * TABLE_PAGE + shown.length) + " of " + rows.length : "no rows";
  $("page-prev").disabled = state.page === 0;
  $("page-next").disabled = state.page >= pages - 1;
}
// A text cell a spreadsheet would evaluate (leading =, +, -, @, tab, CR, after any quotes)
// gets a leading ' unless it is a plain decimal number: mmse_model/core/csvsafe.py's rule.
function spreadsheetSafe(s) {
  const core = s.replace(/^'+/, "");
  const risky = core !== "" && "=+-@\t\r".includes(core[0]) &&
    !/^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/.test(core);
  return risky ? "'" + s : s;
}
function csvField(v) {
  if (v === null || v === undefined) return "";
  const s = spreadsheetSafe(typeof v === "boolean" ? (v ? "True" : "False") : String(v));
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
