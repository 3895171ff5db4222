// The task chosen for views 7 to 9.

function renderTaskSelect() {
  const select = $("task-select");
  DATA.tasks.forEach(function (t) { select.append(el("option", { value: t, text: t + (taskItem(t) ? ": " + taskItem(t) : "") })); });
  select.value = state.task || "";
  select.addEventListener("change", function () { setTask(select.value); });
}
function setTask(task) {
  state.task = task;
  $("task-select").value = task;
  renderTaskViews();
}
function renderTaskViews() {
  guard("curves-view", renderCurves);
  guard("hp-view", renderHyperparameters);
  guard("calibration-view", renderCalibration);
}
