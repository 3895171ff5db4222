// The Tune results dashboard: it draws the page data embedded in this page
// (mmse_app/page_schema.py; mmse_app/dashboard_data.py builds it). Every rule (verdicts and
// their words, labels, the order of statuses and groups, what each missing number is called)
// is decided there: these files only format numbers and lay them out. No network.
// The files are put together in mmse_app/dashboard.py's SCRIPTS order, in one scope.

const started = performance.now();
const DATA = JSON.parse(document.getElementById("dashboard-data").textContent);
const TABLE_PAGE = 50;
const CELL_TRACES = 150; // above this many trials a cell's curves are drawn as one trace per ending
// Colours of the winner and the baselines, by their place in the data's order (network first).
const MODEL_PALETTE = ["#0969da", "#afb8c1", "#6e7781", "#424a53", "#8c959f"];
// A cell the data marks as falling short (the style's --bad).
const WARN_COLOR = "#cf222e";
const state = {
  task: DATA.tasks[0] || null, cell: null,
  sort: { key: null, dir: 1 }, filter: "", taskFilter: "", statusFilter: "", page: 0,
};
const STATUS = {};
DATA.statuses.forEach(function (s) { STATUS[s.status] = s; });
DATA.rows.forEach(function (row, i) {
  row._i = i;
  row._text = DATA.columns.map(function (c) { return row[c] === null || row[c] === undefined ? "" : String(row[c]); })
    .join(" ").toLowerCase();
});

function statusLabel(status) { return STATUS[status] ? STATUS[status].label : status; }
function statusFaint(status) { return Boolean(STATUS[status] && STATUS[status].faint); }
function statusColor(status) { return STATUS[status] ? STATUS[status].color : "#999999"; }
function taskItem(task) { return DATA.task_items[task] || ""; }
