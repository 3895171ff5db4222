// 11. Provenance: what produced these results, as the data lists it.

function renderProvenance() {
  const p = DATA.provenance;
  const dl = $("provenance");
  $("provenance-note").textContent = p.note;
  [{ label: "experiment", text: DATA.meta.uri }].concat(p.items).forEach(function (item) {
    dl.append(el("dt", { text: item.label }), el("dd", { text: item.text }));
  });
  $("sweep-config").textContent = p.config ? JSON.stringify(p.config, null, 2) : p.config_missing;
}
