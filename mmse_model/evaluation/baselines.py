"""Baselines scored on the same held-out test subjects as a sweep's winner, trained the same way.

Ray-free and torch-free. The network's test prediction is the mean of its K fold-models,
each trained on the other K-1 folds; the baselines are built the same way (the fair
comparison, docs/design.md "Results and evaluation"): their settings (Ridge's alpha, the
gradient-boosting grid) are chosen by cross-validation over exactly the split's folds,
then one model per fold is fitted on the other folds with those settings, each prediction
clamped to the task's score range, and the K averaged. No baseline sees a test subject.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmse_model.data.dataset import Split, TaskData
from mmse_model.evaluation.scoring import held_out_rows

RIDGE_ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
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


def baseline_predictions(
    data: TaskData, split: Split, score_range: tuple[float, float], seed: int = 0
) -> dict[str, tuple[np.ndarray, dict[str, Any]]]:
    """Each baseline's test predictions (in points, test rows in data order) and the
    settings cross-validation chose."""
    from sklearn.base import clone
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV, PredefinedSplit
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    train, folds = training_folds(data, split)
    test = held_out_rows(data.subject_ids, split)
    X_train, y_train, X_test = data.X[train], data.y[train], data.X[test]
    low, high = score_range
    cv = PredefinedSplit(folds)

    def fold_ensemble(estimator) -> np.ndarray:
        per_fold = []
        for k in np.unique(folds):
            model = clone(estimator).fit(X_train[folds != k], y_train[folds != k])
            per_fold.append(np.clip(model.predict(X_test), low, high))
        return np.mean(per_fold, axis=0)

    out: dict[str, tuple[np.ndarray, dict[str, Any]]] = {}
    means = [y_train[folds != k].mean() for k in np.unique(folds)]
    out["train_mean"] = (np.full(int(test.sum()), float(np.mean(means))), {})

    ridge = GridSearchCV(make_pipeline(StandardScaler(), Ridge()), {"ridge__alpha": list(RIDGE_ALPHAS)},
                         cv=cv, scoring="neg_mean_squared_error").fit(X_train, y_train)
    out["ridge"] = (fold_ensemble(ridge.best_estimator_), {"alpha": float(ridge.best_params_["ridge__alpha"])})

    # A few hundred rows: OpenMP's threads cost more than they save (seconds per fit on a
    # busy machine instead of milliseconds), so the boosting runs on one thread.
    with threadpool_limits(limits=1, user_api="openmp"):
        hgb = GridSearchCV(HistGradientBoostingRegressor(random_state=seed), {k: list(v) for k, v in HGB_GRID.items()},
                           cv=cv, scoring="neg_mean_squared_error").fit(X_train, y_train)
        chosen = {k: (float(v) if isinstance(v, float) else int(v)) for k, v in hgb.best_params_.items()}
        out["hist_gradient_boosting"] = (fold_ensemble(hgb.best_estimator_), chosen)
    return out
