"""Baselines scored on the same held-out test subjects as a sweep's winner.

Ray-free and torch-free. Each baseline sees only the training subjects (every fold of the
split, never the test subjects); Ridge's alpha and the gradient-boosting settings are chosen
by cross-validation over exactly the split's folds, then refit on all training subjects.
Predictions are clamped to the task's score range, as the network's are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmse_model.data import Split, TaskData
from mmse_model.evaluate import held_out_rows, score_predictions

RIDGE_ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0)
HGB_GRID = {
    "max_depth": (2, 3),
    "learning_rate": (0.05, 0.1),
    "max_iter": (100,),
    "min_samples_leaf": (10,),
}
BASELINES = ("train_mean", "ridge", "hist_gradient_boosting")


def training_folds(data: TaskData, split: Split) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the training subjects and the fold of each (the split's own folds)."""
    fold = np.array([split.fold_of_subject.get(s, -1) for s in data.subject_ids])
    rows = fold >= 0
    return rows, fold[rows]


def score_baselines(
    data: TaskData, split: Split, score_range: tuple[float, float], seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Test metrics of each baseline (in points), plus the settings CV chose."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV, PredefinedSplit
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, folds = training_folds(data, split)
    test = held_out_rows(data.subject_ids, split)
    X_train, y_train = data.X[train], data.y[train]
    X_test, y_test = data.X[test], data.y[test]
    low, high = score_range
    cv = PredefinedSplit(folds)

    def scored(predictions: np.ndarray, **chosen: Any) -> dict[str, Any]:
        return {**score_predictions(y_test, np.clip(predictions, low, high), score_range), **chosen}

    out: dict[str, dict[str, Any]] = {}
    out["train_mean"] = scored(np.full(len(y_test), y_train.mean()))

    ridge = GridSearchCV(
        make_pipeline(StandardScaler(), Ridge()),
        {"ridge__alpha": list(RIDGE_ALPHAS)},
        cv=cv,
        scoring="neg_mean_squared_error",
    ).fit(X_train, y_train)
    out["ridge"] = scored(ridge.predict(X_test), alpha=float(ridge.best_params_["ridge__alpha"]))

    hgb = GridSearchCV(
        HistGradientBoostingRegressor(random_state=seed),
        {k: list(v) for k, v in HGB_GRID.items()},
        cv=cv,
        scoring="neg_mean_squared_error",
    ).fit(X_train, y_train)
    out["hist_gradient_boosting"] = scored(hgb.predict(X_test), **{
        k: (float(v) if isinstance(v, float) else int(v)) for k, v in hgb.best_params_.items()
    })
    return out
