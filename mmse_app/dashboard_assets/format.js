// Numbers as the page writes them. An estimate and its interval get the same decimals.

function isNum(v) { return typeof v === "number" && isFinite(v); }
function fmt(v, digits) {
  if (!isNum(v)) return v === null || v === undefined ? "–" : String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
  const d = digits === undefined ? 3 : digits;
  return Math.abs(v) !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5) ? v.toExponential(2) : v.toFixed(d);
}
function fixed(v, digits) { return isNum(v) ? v.toFixed(digits === undefined ? 3 : digits) : "–"; }
function fmtCI(ci, digits) { return ci && ci.length === 2 ? "[" + fixed(ci[0], digits) + ", " + fixed(ci[1], digits) + "]" : ""; }
function withCI(v, ci, digits) { return fixed(v, digits) + (ci && ci.length === 2 ? " " + fmtCI(ci, digits) : ""); }
function signed(v, digits) { return isNum(v) ? (v > 0 ? "+" : "") + v.toFixed(digits === undefined ? 3 : digits) : "–"; }
function signedCI(ci, digits) { return ci && ci.length === 2 ? "[" + signed(ci[0], digits) + ", " + signed(ci[1], digits) + "]" : ""; }
function pct(v) { return isNum(v) ? (100 * v).toFixed(1) : "–"; }
function coverageText(iv) {
  return pct(iv.coverage) + " %" + (iv.coverage_ci && iv.coverage_ci.length === 2
    ? " [" + pct(iv.coverage_ci[0]) + ", " + pct(iv.coverage_ci[1]) + "] %" : "");
}
// A statistic of `values` (scores with their `absent` words): the number, else the word the
// data gives for its absence, else a dash.
function stat(values, absent, key, digits) {
  const v = values ? values[key] : null;
  if (isNum(v)) return fixed(v, digits);
  return (absent && absent[key]) || "–";
}
function statCI(values, absent, key, digits) {
  const v = values ? values[key] : null;
  return isNum(v) ? withCI(v, values[key + "_ci"], digits) : stat(values, absent, key, digits);
}
function valueText(v) { return typeof v === "boolean" ? String(v) : fmt(v, 4); }
function range(n, start) { const out = []; for (let i = 0; i < n; i++) out.push(i + (start || 0)); return out; }
function trialEpochs(t) { return t.epochs || range(t.loss.length, 1); }
