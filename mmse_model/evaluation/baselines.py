"""Baselines scored on the same held-out test subjects as a sweep's winner, trained the same way.

Ray-free and torch-free. The network's test prediction is the mean of its K fold-models,
each trained on the other K-1 folds; the baselines are built the same way (the fair
comparison, docs/design.md "Results and evaluation"): their settings (Ridge's alpha, the
gradient-boosting grid) are chosen by cross-validation over exactly the split's folds,
then one model per fold is fitted on the other folds with those settings, each prediction
clamped to the task's score range, and the K averaged. No baseline sees a test subject.
Each baseline also chooses its signature by that cross-validation, as the network does.
"""

from __future__ import annotations

import math
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
# Gradient boosting picks its signature with this one setting, then tunes the grid on that
# signature only: the whole grid under every signature costs 4x the fits, about 5 CPU-minutes
# per sweep at 36 signatures x 5 tasks, paid again in every nested outer fold. Both stages see
# the training folds only. The screen is the grid's deepest trees with 30 rounds at a rate of
# 0.3 rather than 100 at 0.1: a boosting round costs the same whatever its rate, and on 20
# outer folds of planted data (36 signatures, 300 subjects) it chose a signature of the
# strongest signal every time, as the 100-round screen did, at 0.48 of the baselines' CPU
# time, with a test RMSE of the tuned model 0.011 points lower on average (sd 0.049): no
# weaker a comparator (docs/sweep_overhead.md, "The baselines' screens").
HGB_SCREEN = {"max_depth": 3, "learning_rate": 0.3, "max_iter": 30, "min_samples_leaf": 10}
# The screen itself halves, as the network's nested search does: every signature's fold
# models boost HGB_SCREEN_RUNGS[0] rounds, the best third of the signatures by CV MSE boost on
# to the next rung, and so on to HGB_SCREEN's 30; warm starts add rounds to the same trees, so a
# signature that reaches 30 has the very CV MSE of the whole screen (tests/test_baselines.py).
HGB_SCREEN_RUNGS = (10,)
HGB_SCREEN_KEEP = 3


def training_folds(data: TaskData, split: Split) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the training subjects and the fold of each (the split's own folds)."""
    fold = np.array([split.fold_of_subject.get(s, -1) for s in data.subject_ids])
    rows = fold >= 0
    return rows, fold[rows]


def baselines_over_signatures(
    datas: dict[str, TaskData], split: Split, score_range: tuple[float, float], seed: int = 0
) -> dict[str, tuple[np.ndarray, dict[str, Any]]]:
    """Each baseline's test predictions (in points, in the test rows' order of the chosen
    signature's data) and its settings, "signature" and "cv_rmse" among them.

    A baseline chooses its signature as the network does: by cross-validation on the split's
    own folds, never on the test subjects. Ridge searches its grid under every signature and
    keeps the signature whose best setting has the lowest CV RMSE (ties: the first in sorted
    order); gradient boosting chooses the signature with one setting (HGB_SCREEN), then searches
    its grid there; the training mean ignores the features, so any signature gives the same
    prediction and it reports the first. Every signature's data holds the same subjects
    in the same order (GroupData.task_data), so the chosen one's test rows are everyone's."""
    from sklearn.base import clone
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV, PredefinedSplit
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    if not datas:
        raise ValueError("baselines need at least one signature's data")
    signatures = sorted(datas)
    first = datas[signatures[0]]
    for sig in signatures[1:]:
        if not (
            np.array_equal(datas[sig].subject_ids, first.subject_ids)
            and np.array_equal(datas[sig].y, first.y)
        ):
            raise ValueError(
                f"{datas[sig].path}: rows differ from {first.path}'s (load the signatures together)"
            )
    train, folds = training_folds(first, split)
    test = held_out_rows(first.subject_ids, split)
    y_train = first.y[train]
    low, high = score_range
    cv = PredefinedSplit(folds)

    def fold_ensemble(estimator, data: TaskData) -> np.ndarray:
        X_train, X_test = data.X[train], data.X[test]
        per_fold = []
        for k in np.unique(folds):
            model = clone(estimator).fit(X_train[folds != k], y_train[folds != k])
            per_fold.append(np.clip(model.predict(X_test), low, high))
        return np.mean(per_fold, axis=0)

    def best_signature(
        searches: dict[str, tuple[dict[str, Any], float]], estimator
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """`searches`: signature -> (its best settings, their CV mean squared error)."""
        # The CV RMSE is the root of the mean over folds of the MSE: a strict order. Ties:
        # the first signature in sorted order, as min keeps the first.
        sig = min(searches, key=lambda s: searches[s][1])
        settings, mse = searches[sig]
        fitted = clone(estimator).set_params(**settings)
        return fold_ensemble(fitted, datas[sig]), {
            **{k.split("__")[-1]: v for k, v in settings.items()},
            "signature": sig,
            "cv_rmse": float(np.sqrt(mse)),
        }

    def grid_search(estimator, params: dict[str, list], sig: str) -> tuple[dict[str, Any], float]:
        # No refit on all training rows: the prediction is the fold ensemble.
        search = GridSearchCV(
            estimator, params, cv=cv, scoring="neg_mean_squared_error", refit=False
        ).fit(datas[sig].X[train], y_train)
        settings = {
            k: (float(v) if isinstance(v, float) else int(v))
            for k, v in search.best_params_.items()
        }
        return settings, -float(search.best_score_)

    out: dict[str, tuple[np.ndarray, dict[str, Any]]] = {}
    ks = np.unique(folds)
    means = [y_train[folds != k].mean() for k in ks]
    cv_mse = np.mean([np.mean((y_train[folds == k] - m) ** 2) for k, m in zip(ks, means)])
    out["train_mean"] = (
        np.full(int(test.sum()), float(np.mean(means))),
        {"signature": signatures[0], "cv_rmse": float(np.sqrt(cv_mse))},
    )

    out["ridge"] = best_signature(
        {sig: ridge_search(datas[sig].X[train], y_train, folds) for sig in signatures},
        make_pipeline(StandardScaler(), Ridge()),
    )
    # A few hundred rows: OpenMP's threads cost more than they save (seconds per fit on a
    # busy machine instead of milliseconds), so the boosting runs on one thread.
    with threadpool_limits(limits=1, user_api="openmp"):
        hgb = HistGradientBoostingRegressor(random_state=seed)
        screened, _ = hgb_screen(
            {sig: datas[sig].X[train] for sig in signatures}, y_train, folds, seed
        )
        full = {k: list(v) for k, v in HGB_GRID.items()}
        out["hist_gradient_boosting"] = best_signature(
            {screened: grid_search(hgb, full, screened)}, hgb
        )
    return out


def hgb_screen(
    X: dict[str, np.ndarray],
    y: np.ndarray,
    folds: np.ndarray,
    seed: int = 0,
    rungs: tuple[int, ...] = HGB_SCREEN_RUNGS,
    keep: float = HGB_SCREEN_KEEP,
) -> tuple[str, float]:
    """Gradient boosting's signature and its CV MSE: the lowest of HGB_SCREEN over `folds`
    (each fold validated on by the model boosted on the others; ties: the first in sorted order), by
    successive halving over the rounds: at each rung (a round count) the best 1/`keep` of the
    signatures still in (rounded up) boost on. Without rungs, the whole screen."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    ks = np.unique(folds)
    models = {
        sig: [
            HistGradientBoostingRegressor(**HGB_SCREEN, random_state=seed, warm_start=True)
            for _ in ks
        ]
        for sig in X
    }
    standing = sorted(X)
    mse: dict[str, float] = {}
    for rounds in (*[r for r in rungs if r < HGB_SCREEN["max_iter"]], HGB_SCREEN["max_iter"]):
        for sig in standing:
            errors = []
            for k, model in zip(ks, models[sig]):
                fit, val = folds != k, folds == k
                model.set_params(max_iter=rounds).fit(X[sig][fit], y[fit])
                errors.append(np.mean((y[val] - model.predict(X[sig][val])) ** 2))
            mse[sig] = float(np.mean(errors))
        if rounds == HGB_SCREEN["max_iter"]:
            break
        ranked = sorted(standing, key=lambda sig: (mse[sig], sig))
        standing = sorted(ranked[: max(1, math.ceil(len(ranked) / keep - 1e-9))])
    best = min(standing, key=lambda sig: (mse[sig], sig))
    return best, mse[best]


def ridge_search(
    X: np.ndarray, y: np.ndarray, folds: np.ndarray, alphas: tuple[float, ...] = RIDGE_ALPHAS
) -> tuple[dict[str, Any], float]:
    """({"ridge__alpha": the best alpha}, its CV mean squared error) of StandardScaler + Ridge
    over `folds` (each fold validated on by the model fitted on the others).

    What scikit-learn's GridSearchCV over that pipeline computes (the mean over folds of each
    fold's MSE; ties: the first alpha), in closed form: one SVD of each fold's standardised,
    centred training rows serves every alpha (w = V diag(s / (s^2 + alpha)) U^T y), where
    GridSearchCV fits the pipeline once per alpha and fold. About 1,000 fits a task's
    signature screen at 36 signatures, in every nested outer fold too; tests/test_baselines.py
    holds it to scikit-learn's search."""
    from sklearn.preprocessing import StandardScaler

    grid = np.asarray(alphas, dtype=float)
    mse = np.zeros(len(grid))
    ks = np.unique(folds)
    for k in ks:
        fit, val = folds != k, folds == k
        scaler = StandardScaler().fit(X[fit])
        X_fit, X_val = scaler.transform(X[fit]), scaler.transform(X[val])
        x_mean, y_mean = X_fit.mean(axis=0), y[fit].mean()
        u, s, vt = np.linalg.svd(X_fit - x_mean, full_matrices=False)
        shrink = s[:, None] / (s[:, None] ** 2 + grid[None, :])  # (features, alphas)
        coef = vt.T @ (shrink * (u.T @ (y[fit] - y_mean))[:, None])
        predicted = (X_val - x_mean) @ coef + y_mean
        mse += np.mean((y[val][:, None] - predicted) ** 2, axis=0)
    mse /= len(ks)
    best = int(np.argmin(mse))
    return {"ridge__alpha": float(grid[best])}, float(mse[best])
