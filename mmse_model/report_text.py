"""Plain-text tables for the terminal."""

from __future__ import annotations

from typing import Any

ROWS = (("rmse", "RMSE"), ("mae", "MAE"), ("r2", "R^2"), ("pearson_r", "Pearson r"),
        ("explained_variance", "expl. var"), ("mape", "MAPE % range"))


def format_metrics_table(
    signature: str, task: str, cv: dict[str, Any], test: dict[str, float] | None, fit: Any = None
) -> str:
    mean = cv["mean"]
    lines = [f"{task} on {signature}: metrics in sub-score points"]
    if fit is not None:
        lines.append(f"  epochs run {fit.final_epoch}, best epoch {fit.best_epoch}, {fit.total_time:.1f} s")
    header = f"  {'metric':<14}{'CV mean':>10}{'CV sd':>9}"
    if test is not None:
        header += f"{'test':>10}"
    lines.append(header)
    for key, label in ROWS:
        line = f"  {label:<14}{mean[key]:>10.3f}{mean[key + '_sd']:>9.3f}"
        if test is not None:
            line += f"{test[key]:>10.3f}"
        lines.append(line)
    if test is not None:
        lines.append(
            f"  test calibration: slope {test['calibration_slope']:.2f}, intercept "
            f"{test['calibration_intercept']:.2f} (n = {test['n']} held-out subjects)"
        )
    return "\n".join(lines)
