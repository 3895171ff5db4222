"""Does the nested-CV interval hold the truth as often as it says, and is it narrower than the
old single-split bootstrap? A simulation on a SYNTHETIC population.

What it checks (issue "Every subject counts", the item on intervals). The headline estimate
is now repeated nested cross-validation: R repeats x K = 5 outer folds over all N = 300
subjects, the mean of the fold RMSEs with Nadeau & Bengio's corrected resampled t 95 %
interval (`corrected_t`, test fraction 1/5). It estimates the expected RMSE of the procedure
trained on (K-1)/K of such a cohort (240 subjects). The old headline was one 20 % held-out
split (60 subjects) with a percentile bootstrap of the RMSE over those 60 (`bootstrap_intervals`).
Both are checked against that same truth.

Why a simulation: only on a population we draw from can the truth be known. Here it is the
procedure's RMSE on a fresh draw of TRUTH_TEST_SUBJECTS subjects, trained on 240 subjects,
averaged over `--truth-draws` independent training draws (a fresh test draw each time, so the
printed standard error covers both sources of its error).

The population (SYNTHETIC, no real subject in it): 10 features X ~ N(0, Sigma) with
Sigma_ij = 0.3^|i-j|; one 0-5 integer item score y = clip(round(latent), 0, 5) with
latent = 2.5 + 0.7 x0 - 0.5 x2 + 0.4 x5 + 0.4 (x3^2 - 1) + e, e ~ N(0, 0.7^2). The squared
term is invisible to a linear model, so the learner is imperfect (population R^2 about 0.46).

The procedure (a cheap stand-in for the network): standardise on the training subjects, choose
Ridge's alpha from ALPHAS by inner 3-fold CV on the training subjects only (least mean fold
MSE of the clamped predictions; inner folds as the project deals them), refit on all training
subjects, clamp the predictions to [0, 5]. Ridge is solved in closed form with numpy; the
script first checks it against scikit-learn's StandardScaler + Ridge.

Per replicate: draw 300 subjects; nested CV with R = 2 (outer folds from `outer_fold_split`,
seeds 1 and 2) and R = 1 (the demo's setting: the seed-1 repeat of the same replicate, so the
two rows are paired); the old way on the same 300 (`make_split`, 20 % held out, stratified by
score); record whether each interval contains the truth, and its width.

How to read the output: "coverage" is the share of replicates whose interval contains the
truth, with a 95 % Wilson interval for that share; a well-calibrated 95 % interval has coverage
near 0.95 (the Wilson interval should contain 0.95). "misses low/high" says on which side the
truth fell when missed (low: the truth lies below the interval). "bias" is the mean point
estimate minus the truth; "sd" is the replicates' spread of the point estimate, to compare with
the mean width / 3.92 (what a normal 95 % interval would imply). The last lines, one per method,
are for a test to grep.

    python benchmarks/nested_cv_check.py [--replicates 5000] [--truth-draws 2000] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmse_model.data.dataset import make_split, outer_fold_split
from mmse_model.evaluation.cv_estimate import corrected_t
from mmse_model.evaluation.scoring import bootstrap_intervals

# --- the synthetic population ----------------------------------------------------------------
N_FEATURES = 10
CORRELATION = 0.3  # Sigma_ij = CORRELATION ** |i - j|
INTERCEPT = 2.5
LINEAR = {0: 0.7, 2: -0.5, 5: 0.4}  # feature -> weight; every other feature has weight 0
SQUARED_FEATURE, SQUARED_WEIGHT = 3, 0.4  # + SQUARED_WEIGHT * (x3^2 - 1)
NOISE_SD = 0.7
SCORE_RANGE = (0.0, 5.0)

# --- the study and the procedure --------------------------------------------------------------
N_SUBJECTS = 300
OUTER_FOLDS = 5
INNER_FOLDS = 3
OUTER_SEEDS = (1, 2)  # one per repeat; R = 1 uses the first
SINGLE_SPLIT_FRACTION = 0.2
SINGLE_SPLIT_SEED = 0
ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
BOOTSTRAP_REPLICATES = 2000
TRUTH_TEST_SUBJECTS = 20_000
LEVEL = 0.95
Z95 = 1.959963984540054


class Population:
    """Draws (X, y) from the synthetic population."""

    def __init__(self) -> None:
        index = np.arange(N_FEATURES)
        sigma = CORRELATION ** np.abs(np.subtract.outer(index, index))
        self.chol = np.linalg.cholesky(sigma)
        self.weights = np.zeros(N_FEATURES)
        for feature, weight in LINEAR.items():
            self.weights[feature] = weight

    def draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.standard_normal((n, N_FEATURES)) @ self.chol.T
        latent = (
            INTERCEPT
            + x @ self.weights
            + SQUARED_WEIGHT * (x[:, SQUARED_FEATURE] ** 2 - 1.0)
            + NOISE_SD * rng.standard_normal(n)
        )
        return x, np.clip(np.rint(latent), *SCORE_RANGE)


# --- the procedure ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RidgeModel:
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.coef + self.intercept


def ridge_fit(x: np.ndarray, y: np.ndarray, alpha: float) -> RidgeModel:
    """StandardScaler + Ridge(alpha) on (x, y): population-sd scaling, an unpenalised
    intercept, as scikit-learn does."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0.0] = 1.0
    z = (x - mean) / scale
    y_mean = float(y.mean())
    coef = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ (y - y_mean))
    return RidgeModel(mean, scale, coef, y_mean)


def clamp(pred: np.ndarray) -> np.ndarray:
    return np.clip(pred, *SCORE_RANGE)


def fit_procedure(x: np.ndarray, y: np.ndarray, inner_fold: np.ndarray) -> RidgeModel:
    """Alpha by inner CV over the folds in `inner_fold` (one per row), then a refit on all."""
    folds = np.unique(inner_fold)
    mse = np.zeros(len(ALPHAS))
    for fold in folds:
        train, val = inner_fold != fold, inner_fold == fold
        for a, alpha in enumerate(ALPHAS):
            pred = clamp(ridge_fit(x[train], y[train], alpha).predict(x[val]))
            mse[a] += np.mean((pred - y[val]) ** 2) / len(folds)
    return ridge_fit(x, y, ALPHAS[int(np.argmin(mse))])


def rmse(y_true: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - y_true) ** 2)))


def subject_ids(n: int) -> np.ndarray:
    return np.array([f"s{i:05d}" for i in range(n)])


def inner_folds_of(ids: np.ndarray, fold_of_subject: dict[str, int]) -> np.ndarray:
    return np.array([fold_of_subject[s] for s in ids])


def check_against_sklearn(population: Population, rng: np.random.Generator) -> float:
    """Largest |numpy - scikit-learn| prediction over ALPHAS on one draw."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = population.draw(rng, 240)
    x_new, _ = population.draw(rng, 1000)
    worst = 0.0
    for alpha in ALPHAS:
        reference = make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(x, y)
        ours = ridge_fit(x, y, alpha)
        worst = max(worst, float(np.max(np.abs(reference.predict(x_new) - ours.predict(x_new)))))
    return worst


# --- the truth --------------------------------------------------------------------------------
def truth(
    population: Population, rng: np.random.Generator, draws: int, n_train: int
) -> tuple[float, float, float]:
    """(mean RMSE, its standard error, mean R^2) of the procedure trained on `n_train` fresh
    subjects, on a fresh draw of TRUTH_TEST_SUBJECTS, over `draws` training draws."""
    ids = subject_ids(n_train)
    values, r2 = np.empty(draws), np.empty(draws)
    for d in range(draws):
        x, y = population.draw(rng, n_train)
        split = make_split(ids, y, INNER_FOLDS, 0.0, SINGLE_SPLIT_SEED)
        model = fit_procedure(x, y, inner_folds_of(ids, split.fold_of_subject))
        x_test, y_test = population.draw(rng, TRUTH_TEST_SUBJECTS)
        pred = clamp(model.predict(x_test))
        values[d] = rmse(y_test, pred)
        r2[d] = 1.0 - values[d] ** 2 / float(np.var(y_test))
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(draws)), float(r2.mean())


# --- one replicate ----------------------------------------------------------------------------
def held_out_fit(
    x: np.ndarray, y: np.ndarray, ids: np.ndarray, test_subjects: tuple[str, ...], fold_of: dict
) -> tuple[np.ndarray, np.ndarray]:
    """(test mask, clamped predictions on the test subjects) of the procedure fit on the rest."""
    test = np.isin(ids, np.array(test_subjects))
    model = fit_procedure(x[~test], y[~test], inner_folds_of(ids[~test], fold_of))
    return test, clamp(model.predict(x[test]))


def nested_fold_rmses(x: np.ndarray, y: np.ndarray, ids: np.ndarray, seed: int) -> list[float]:
    values = []
    for k in range(OUTER_FOLDS):
        split = outer_fold_split(ids, y, OUTER_FOLDS, k, INNER_FOLDS, seed)
        test, pred = held_out_fit(x, y, ids, split.test_subjects, split.fold_of_subject)
        values.append(rmse(y[test], pred))
    return values


@dataclass
class Tally:
    """Per-replicate point estimates and intervals of one method."""

    name: str
    estimate: list[float] = field(default_factory=list)
    low: list[float] = field(default_factory=list)
    high: list[float] = field(default_factory=list)

    def add(self, estimate: float, low: float, high: float) -> None:
        self.estimate.append(estimate)
        self.low.append(low)
        self.high.append(high)


def replicate(
    population: Population, rng: np.random.Generator, ids: np.ndarray, tallies: dict[str, Tally]
) -> None:
    x, y = population.draw(rng, N_SUBJECTS)
    test_fraction = 1.0 / OUTER_FOLDS
    repeats = [nested_fold_rmses(x, y, ids, seed) for seed in OUTER_SEEDS]
    for r, name in ((2, "nested R=2"), (1, "nested R=1")):
        interval = corrected_t([v for rep in repeats[:r] for v in rep], test_fraction, LEVEL)
        tallies[name].add(interval.mean, interval.low, interval.high)
    split = make_split(ids, y, INNER_FOLDS, SINGLE_SPLIT_FRACTION, SINGLE_SPLIT_SEED)
    test, pred = held_out_fit(x, y, ids, split.test_subjects, split.fold_of_subject)
    seed = int(rng.integers(2**31))
    intervals, _ = bootstrap_intervals(
        y[test], {"ridge": pred}, SCORE_RANGE, "ridge", BOOTSTRAP_REPLICATES, seed
    )
    low, high = intervals["ridge"]["rmse_ci"]
    tallies["single split"].add(rmse(y[test], pred), low, high)


# --- the report -------------------------------------------------------------------------------
def wilson(hits: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion hits / n."""
    p = hits / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Summary:
    name: str
    hits: int
    n: int
    coverage: float
    wilson: tuple[float, float]
    misses_low: int
    misses_high: int
    width: float
    estimate: float
    bias: float
    sd: float


def summarise(tally: Tally, true_rmse: float) -> Summary:
    low, high = np.array(tally.low), np.array(tally.high)
    estimate = np.array(tally.estimate)
    hits = int(np.sum((low <= true_rmse) & (true_rmse <= high)))
    n = len(estimate)
    return Summary(
        name=tally.name,
        hits=hits,
        n=n,
        coverage=hits / n,
        wilson=wilson(hits, n),
        misses_low=int(np.sum(true_rmse < low)),
        misses_high=int(np.sum(true_rmse > high)),
        width=float(np.mean(high - low)),
        estimate=float(estimate.mean()),
        bias=float(estimate.mean() - true_rmse),
        sd=float(estimate.std(ddof=1)),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicates", type=int, default=5000, help="simulated cohorts")
    parser.add_argument(
        "--truth-draws", type=int, default=2000, help="training draws averaged for the truth"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    args = parser.parse_args()
    if args.replicates < 1 or args.truth_draws < 2:
        parser.error("--replicates must be >= 1 and --truth-draws >= 2")

    started = time.perf_counter()
    check_rng, truth_rng, replicate_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(args.seed).spawn(3)
    )
    population = Population()
    n_train = N_SUBJECTS * (OUTER_FOLDS - 1) // OUTER_FOLDS
    print("SYNTHETIC population (simulated data, no real subjects):")
    print(
        f"  X ~ N(0, Sigma), {N_FEATURES} features, Sigma_ij = {CORRELATION}^|i-j|; "
        f"y = clip(round(latent), {SCORE_RANGE[0]:g}, {SCORE_RANGE[1]:g})"
    )
    terms = " ".join(f"{w:+g} x{f}" for f, w in LINEAR.items())
    print(
        f"  latent = {INTERCEPT:g} {terms} {SQUARED_WEIGHT:+g} (x{SQUARED_FEATURE}^2 - 1) + e, "
        f"e ~ N(0, {NOISE_SD:g}^2)"
    )
    print(
        f"procedure: standardise, Ridge alpha in {ALPHAS} by inner {INNER_FOLDS}-fold CV, "
        "refit, clamp to [0, 5]"
    )
    print(
        f"  numpy Ridge vs scikit-learn StandardScaler + Ridge: max |prediction difference| "
        f"{check_against_sklearn(population, check_rng):.1e}"
    )
    print(f"seed {args.seed}, {args.replicates} replicates, {args.truth_draws} truth draws")

    t0 = time.perf_counter()
    true_rmse, true_se, true_r2 = truth(population, truth_rng, args.truth_draws, n_train)
    print(
        f"truth: expected RMSE of the procedure trained on {n_train} subjects = {true_rmse:.4f} "
        f"(SE {true_se:.4f}; {args.truth_draws} training draws, each scored on "
        f"{TRUTH_TEST_SUBJECTS} fresh subjects; mean R^2 {true_r2:.3f}) "
        f"[{time.perf_counter() - t0:.1f} s]",
        flush=True,
    )

    t0 = time.perf_counter()
    ids = subject_ids(N_SUBJECTS)
    tallies = {name: Tally(name) for name in ("nested R=2", "nested R=1", "single split")}
    for _ in range(args.replicates):
        replicate(population, replicate_rng, ids, tallies)
    print(
        f"replicates: {args.replicates} cohorts of {N_SUBJECTS} [{time.perf_counter() - t0:.1f} s]"
    )

    summaries = {name: summarise(t, true_rmse) for name, t in tallies.items()}
    print()
    print(
        f"{'method':<14}{'coverage':>9}  {'Wilson 95 %':<16}{'miss lo/hi':>11}"
        f"{'width':>8}{'estimate':>10}{'bias':>9}{'sd':>8}{'width/3.92':>11}"
    )
    for s in summaries.values():
        print(
            f"{s.name:<14}{s.coverage:>9.3f}  [{s.wilson[0]:.3f}, {s.wilson[1]:.3f}]  "
            f"{s.misses_low:>5}/{s.misses_high:<5}{s.width:>8.4f}{s.estimate:>10.4f}"
            f"{s.bias:>+9.4f}{s.sd:>8.4f}{s.width / (2 * Z95):>11.4f}"
        )
    print(f"(truth {true_rmse:.4f}, SE {true_se:.4f})")
    print()
    single = summaries["single split"]
    for s in summaries.values():
        line = (
            f"{s.name}: coverage {s.coverage:.3f} [{s.wilson[0]:.3f}, {s.wilson[1]:.3f}] "
            f"of {s.n}, mean width {s.width:.4f}, bias {s.bias:+.4f}"
        )
        if s is not single:
            line += f"; width ratio {s.name}/single {s.width / single.width:.3f}"
        print(line)
    print(f"runtime {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
