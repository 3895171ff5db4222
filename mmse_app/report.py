"""Plain-text reports for the terminal."""

from __future__ import annotations

from mmse_model.training.runs import RunResult

ROWS = (
    ("rmse", "RMSE"),
    ("mae", "MAE"),
    ("r2", "R^2"),
    ("pearson_r", "Pearson r"),
    ("explained_variance", "expl. var"),
    ("mape", "MAPE % range"),
)


def format_run(result: RunResult) -> str:
    """One `mmse train` run: validation (selection) metrics beside the test metrics."""
    lines = [
        f"{result.task} on {result.signature} ({result.runner}): metrics in sub-score points",
        (
            f"  epochs run {result.epochs_run}, best epoch {result.best_epoch}, "
            f"{result.train_seconds:.1f} s"
            + (f"; {result.stop_reason}" if result.stop_reason else "")
        ),
        (
            f"  {'metric':<14}{'val mean':>10}{'val sd':>9}{'test':>10}"
            "   (validation selects; test estimates)"
        ),
    ]
    for key, label in ROWS:
        lines.append(
            f"  {label:<14}{result.selection.get(key, float('nan')):>10.3f}"
            f"{result.selection.get(key + '_sd', float('nan')):>9.3f}{result.test[key]:>10.3f}"
        )
    test = result.test
    slope, intercept = test["calibration_slope"], test["calibration_intercept"]
    calibration = (
        "undefined (a constant prediction)"
        if slope is None
        else f"slope {slope:.2f}, intercept {intercept:.2f}"
    )
    lines.append(f"  test calibration: {calibration} (n = {test['n']} held-out subjects)")
    return "\n".join(lines)
