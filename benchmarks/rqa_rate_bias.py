"""Do RQA features follow the tracker's sampling rate? Correlations on a SYNTHETIC cohort.

    python benchmarks/rqa_rate_bias.py [--subjects 300] [--seed 0] [--jobs 2]
        [--signature SIG ...] [--cohort DIR] [--theiler-s S] [--markdown]

Simulates a cohort (`mmse data synth`: each subject's tracker runs at 90 or 120 Hz, drawn
independently of the labels), builds its RQA datasets exactly as `mmse data build
--no-ray` does (in a process pool), and prints for every signature and feature, over the
five tasks:

- r(rate): Pearson r of the feature with the subject's sampling rate (90 or 120 Hz);
- r(label): Pearson r of the feature with the task's sub-score;
- rate AUC: how well the 10 features together tell 120 from 90 Hz (5-fold cross-validated
  logistic regression; 0.5 is chance), per task;
- label R^2: how well they predict the sub-score (5-fold cross-validated Ridge), per task.

The figures in docs/rqa.md come from this script (`--subjects 300 --seed 0`, the demo
cohort). `--cohort DIR` reuses a cohort written by `mmse data synth`; `--theiler-s S`
replaces the builder's Theiler window (THEILER_S) for this run, e.g. 0 to see what the
window does.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np

from mmse_model.core.domain import FEATURE_NAMES, TASKS, Signature
from mmse_model.features import build
from mmse_model.features.build import (
    BuildWarning,
    ItemResult,
    WorkItem,
    build_datasets,
    compute_items,
)
from mmse_model.synth import cohort as synth

DEMO_SIGNATURES = ("m2_tau1_eps0.055_lmin2", "m3_tau3_eps0.08_lmin3")


def pool_runner(jobs: int):
    def run(items: list[WorkItem], signatures: list[Signature], mode: str) -> list[ItemResult]:
        batches = [items[i : i + 8] for i in range(0, len(items), 8)]
        with ProcessPoolExecutor(jobs) as pool:
            done = pool.map(
                compute_items, batches, [signatures] * len(batches), [mode] * len(batches)
            )
            return [result for batch in done for result in batch]

    return run


def sampling_rate(path: Path) -> float:
    with path.open() as f:
        f.readline()
        t0 = float(f.readline().split(",")[0])
        t1 = float(f.readline().split(",")[0])
    return round(1.0 / (t1 - t0))


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a @ a) * (b @ b))
    return float(a @ b / denominator) if denominator > 0 else float("nan")


def rate_auc(X: np.ndarray, is_fast: np.ndarray, seed: int) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    return float(cross_val_score(model, X, is_fast, cv=cv, scoring="roc_auc").mean())


def label_r2(X: np.ndarray, y: np.ndarray, seed: int) -> float:
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    cv = KFold(5, shuffle=True, random_state=seed)
    return float(cross_val_score(model, X, y, cv=cv, scoring="r2").mean())


def span(values: list[float]) -> str:
    return f"{min(values):+.2f}..{max(values):+.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjects", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--signature", action="append", dest="signatures")
    parser.add_argument("--cohort", type=Path, help="an existing `mmse data synth` folder")
    parser.add_argument(
        "--theiler-s", type=float, help="Theiler window in seconds (default: the builder's)"
    )
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    args = parser.parse_args()
    if args.theiler_s is not None:
        build.THEILER_S = args.theiler_s  # the pool's workers are forked: they see it too
    signatures = args.signatures or list(DEMO_SIGNATURES)

    with tempfile.TemporaryDirectory() as tmp:
        cohort = args.cohort
        if cohort is None:
            cohort = Path(tmp) / "cohort"
            synth.synthesize(cohort, n_subjects=args.subjects, seed=args.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BuildWarning)
            build_datasets(
                cohort / "recordings",
                cohort / "labels.csv",
                signatures,
                Path(tmp) / "data",
                "trajectory",
                pool_runner(args.jobs),
            )
        data = {}
        for sig in signatures:
            for task in TASKS:
                with np.load(Path(tmp) / "data" / sig / f"{task}.npz", allow_pickle=False) as d:
                    rates = np.array(
                        [
                            sampling_rate(cohort / "recordings" / s / f"{task}.csv")
                            for s in d["subject_id"]
                        ]
                    )
                    data[sig, task] = (d["X"], d["y"], rates)

    n = len(data[signatures[0], TASKS[0]][1])
    fast = int((data[signatures[0], TASKS[0]][2] == 120).sum())
    window = build.theiler_window("trajectory") if hasattr(build, "theiler_window") else 0
    print(
        f"SYNTHETIC cohort: {n} subjects (seed {args.seed}), {fast} at 120 Hz, {n - fast} at 90 Hz;"
        f" Theiler window {window} samples; ranges over the tasks {', '.join(TASKS)}"
    )
    for sig in signatures:
        print(f"\n{sig}")
        if args.markdown:
            print("| feature | r(rate) | max abs r(rate) | r(label) |")
            print("|---|---|---|---|")
        else:
            print(f"  {'feature':22s} {'r(rate)':>14s} {'max|r(rate)|':>13s} {'r(label)':>14s}")
        for f, name in enumerate(FEATURE_NAMES):
            r_rate = [pearson(data[sig, t][0][:, f], data[sig, t][2]) for t in TASKS]
            r_label = [pearson(data[sig, t][0][:, f], data[sig, t][1]) for t in TASKS]
            worst = max(abs(r) for r in r_rate)
            if args.markdown:
                print(f"| {name} | {span(r_rate)} | {worst:.2f} | {span(r_label)} |")
            else:
                print(f"  {name:22s} {span(r_rate):>14s} {worst:13.2f} {span(r_label):>14s}")
        aucs = [rate_auc(data[sig, t][0], data[sig, t][2] == 120, args.seed) for t in TASKS]
        print(
            "  rate AUC from all 10 features: "
            f"{', '.join(f'{t} {a:.2f}' for t, a in zip(TASKS, aucs))}"
        )
        r2 = [label_r2(data[sig, t][0], data[sig, t][1], args.seed) for t in TASKS]
        print(
            "  label R^2 from all 10 features: "
            f"{', '.join(f'{t} {v:.2f}' for t, v in zip(TASKS, r2))}"
        )
        for f, name in enumerate(FEATURE_NAMES):
            if name in ("determinism", "laminarity"):
                values = np.concatenate([data[sig, t][0][:, f] for t in TASKS])
                print(
                    f"  {name}: {values.min():.3f}-{values.max():.3f}"
                    " (5th-95th percentile "
                    f"{np.percentile(values, 5):.3f}-{np.percentile(values, 95):.3f})"
                )


if __name__ == "__main__":
    main()
