// The header: the cohort banner (the data says when, and what), the sweep's state and
// counts, who built the page.

function renderBanner() {
  const banner = $("synthetic-banner");
  banner.hidden = !DATA.banner;
  banner.textContent = DATA.banner || "";
}
function renderHeader() {
  const m = DATA.meta;
  $("sweep-name").textContent = m.name;
  const badge = $("sweep-state");
  badge.textContent = m.state_label;
  badge.className = "badge " + m.state;
  const counts = DATA.statuses.filter(function (s) { return s.n; }).map(function (s) { return s.n + " " + s.label; });
  $("sweep-counts").textContent = m.n_trials + " trials, " + m.n_rows + " signature rows (" + counts.join(", ") + "); "
    + DATA.signatures.length + " signatures × " + DATA.tasks.length + " tasks. " + m.uri;
  const b = DATA.builder || {};
  $("builder").textContent = "Page built " + (b.built || "") + " by mmse dashboard (Python " + (b.python || "?")
    + ", plotly.js " + (b.plotlyjs || "?") + "). Self-contained: it loads nothing from the network.";
}
