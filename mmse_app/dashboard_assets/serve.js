// Served by `mmse dashboard --serve`: reload when the sweep's page changes, keeping the view.

function restoreView() {
  try {
    const saved = JSON.parse(sessionStorage.getItem("mmse-dashboard-view") || "null");
    if (!saved || saved.name !== DATA.meta.name) return;
    if (saved.task && DATA.tasks.indexOf(saved.task) >= 0) setTask(saved.task);
    if (saved.cell) selectCell(saved.cell.signature, saved.cell.task);
    window.scrollTo(0, saved.scrollY || 0);
  } catch (err) { /* a view that cannot be restored is simply not restored */ }
}
function watchForUpdates() {
  if (!/^https?:$/.test(location.protocol) || DATA.meta.finished) return;
  setInterval(function () {
    fetch("version.json", { cache: "no-store" }).then(function (r) { return r.ok ? r.json() : null; }).then(function (v) {
      if (v && v.version && v.version !== DATA.version) {
        sessionStorage.setItem("mmse-dashboard-view", JSON.stringify({ name: DATA.meta.name, task: state.task, cell: state.cell, scrollY: window.scrollY }));
        location.reload();
      }
    }).catch(function () { /* the server has stopped: keep the page as it is */ });
  }, (DATA.refresh_s || 5) * 1000);
}
