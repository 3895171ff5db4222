// Draw every view, each behind its guard (a view that fails says so; the others still draw).

guard("top", renderBanner);
guard("top", renderHeader);
guard("estimate-view", renderEstimate);
guard("intervals-view", renderIntervals);
guard("heatmap-view", renderHeatmap);
guard("comparison-view", renderComparison);
guard("subtotal-view", renderSubtotal);
guard("data-view", renderData);
guard("task-bar", renderTaskSelect);
renderTaskViews();
guard("table-view", function () { renderTableControls(); renderTable(); });
guard("provenance-view", renderProvenance);
if (/^https?:$/.test(location.protocol)) restoreView();
watchForUpdates();
window.dashboard = {
  data: DATA, state: state, timings: timings, pending: function () { return Object.keys(lazy.draw); },
  selectCell: selectCell, setTask: setTask, sortBy: sortBy, filteredRows: filteredRows,
};
window.dashboardReady = true;
