"""What the baselines' signature screens cost in one outer fold of the realistic grid.

One task's data at the grid's size (36 signatures, 300 subjects, planted signal:
SYNTHETIC), one outer fold of the shipped configs/sweep.yaml (5 outer folds, 5 inner), in
this process on one thread, CPU seconds:

- Ridge's search over its alphas under every signature: scikit-learn's GridSearchCV over
  StandardScaler + Ridge (how it ran before), against `ridge_search`'s closed form (one SVD
  per fold for every alpha), with the chosen alpha and signature compared;
- the whole of `baselines_over_signatures` (train mean, Ridge, gradient boosting's screen
  and grid, the fold ensembles);
- gradient boosting's signature screen (`hgb_screen`) whole (every signature boosted its 30
  rounds) against its successive halving (10 rounds, the best third on to 30), in each of the
  5 outer folds of Q1 and of Q3: CPU seconds and the signature each chose.

    python benchmarks/baseline_speed.py [--repeat 3]

Ends with the lines `hgb screen speed-up: <ratio>x, the same signature in <a>/<n> outer
folds` and `ridge search speed-up: <ratio>x`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout: tests

import numpy as np

from mmse_model.core.config import Config
from mmse_model.evaluation.baselines import (
    RIDGE_ALPHAS,
    baselines_over_signatures,
    hgb_screen,
    ridge_search,
    training_folds,
)
from mmse_model.training.loop import RunSpec, load_run_data
from tests.fixtures.toy_data import write_planted_root


def grid_search_ridge(X, y, folds) -> tuple[dict, float]:
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV, PredefinedSplit
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    search = GridSearchCV(
        make_pipeline(StandardScaler(), Ridge()),
        {"ridge__alpha": list(RIDGE_ALPHAS)},
        cv=PredefinedSplit(folds),
        scoring="neg_mean_squared_error",
        refit=False,
    ).fit(X, y)
    return search.best_params_, -float(search.best_score_)


def cpu(fn) -> tuple[float, object]:
    start = time.process_time()
    out = fn()
    return time.process_time() - start, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="timings per method (best kept)")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    with tempfile.TemporaryDirectory() as scratch, threadpool_limits(limits=1):
        signatures = [
            f"m{2 + i % 3}_tau{1 + i // 3 % 3}_eps0.0{4 + i // 9}_lmin2" for i in range(36)
        ]
        strengths = {sig: (1.0, 0.5, 0.0)[i % 3] for i, sig in enumerate(signatures)}
        root = write_planted_root(
            Path(scratch) / "data", strengths, tasks=("Q1", "Q3"), n_subjects=300
        )
        config = Config().with_values(
            {"split.outer_folds": 5, "split.outer_fold": 0, "split.test_fraction": 0.0}
        )
        group, split = load_run_data(RunSpec(str(root), tuple(sorted(signatures)), "Q1", config))
        datas = {sig: group.task_data(sig) for sig in signatures}
        train, folds = training_folds(datas[signatures[0]], split)
        y = datas[signatures[0]].y[train]

        def screen(search):
            found = {sig: search(datas[sig].X[train], y, folds) for sig in sorted(signatures)}
            best = min(found, key=lambda sig: found[sig][1])
            return best, found[best]

        old = [cpu(lambda: screen(grid_search_ridge)) for _ in range(args.repeat)]
        new = [cpu(lambda: screen(ridge_search)) for _ in range(args.repeat)]
        whole = [
            cpu(lambda: baselines_over_signatures(datas, split, config.score_range("Q1")))[0]
            for _ in range(args.repeat)
        ]
        screens = []
        for task in ("Q1", "Q3"):
            for fold in range(5):
                fold_config = config.with_values({"split.outer_fold": fold})
                run = RunSpec(str(root), tuple(sorted(signatures)), task, fold_config)
                group, split_k = load_run_data(run)
                rows, folds_k = training_folds(group.task_data(signatures[0]), split_k)
                X = {sig: group.task_data(sig).X[rows] for sig in signatures}
                y_k = group.task_data(signatures[0]).y[rows]
                screens.append(
                    (
                        cpu(partial(hgb_screen, X, y_k, folds_k, rungs=())),
                        cpu(partial(hgb_screen, X, y_k, folds_k)),
                    )
                )
    (old_s, (old_sig, (old_alpha, old_mse))), (new_s, (new_sig, (new_alpha, new_mse))) = (
        min(old, key=lambda t: t[0]),
        min(new, key=lambda t: t[0]),
    )
    print("SYNTHETIC planted data: 36 signatures, 300 subjects, one outer fold (240 training)")
    print(f"ridge search, GridSearchCV:  {old_s:7.3f} CPU-s  ({old_sig}, {old_alpha})")
    print(f"ridge search, closed form:   {new_s:7.3f} CPU-s  ({new_sig}, {new_alpha})")
    print(
        f"same choice: {old_sig == new_sig and old_alpha == new_alpha}; "
        f"CV MSE difference {abs(old_mse - new_mse):.1e}"
    )
    print(f"baselines_over_signatures, whole: {min(whole):7.3f} CPU-s")
    for (whole_s, (whole_sig, _)), (half_s, (half_sig, _)) in screens:
        print(
            f"hgb screen whole {whole_s:6.2f} CPU-s ({whole_sig}), halving {half_s:6.2f} "
            f"CPU-s ({half_sig})"
        )
    same = sum(w[1][0] == h[1][0] for w, h in screens)
    screen_ratio = sum(w[0] for w, _ in screens) / sum(h[0] for _, h in screens)
    print(f"load average: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    print(
        f"hgb screen speed-up: {screen_ratio:.2f}x, the same signature in {same}/"
        f"{len(screens)} outer folds"
    )
    print(f"ridge search speed-up: {old_s / new_s:.1f}x")
    return 0 if np.isfinite(new_mse) else 1


if __name__ == "__main__":
    sys.exit(main())
