"""Do the shipped models' prediction intervals hold on new subjects, and where clinicians look?
A check on a fresh draw of a SYNTHETIC population.

What it checks (issue "Prediction intervals that hold for the whole procedure, and where
clinicians look"). A bundle's per-subject intervals are now calibrated on the repeated nested
cross-validation's outer folds (Mondrian split conformal by band of the prediction,
mmse_model/evaluation/intervals.py) and placed around the SHIPPED models' predictions. Those
models learnt from every subject with the full selection, so no theorem covers them: only new
subjects can say whether the intervals hold. Today's intervals (CV+ on the shipped fold-models'
out-of-fold residuals, mmse_model/evaluation/conformal.py) are the comparison, made from the
same bundle's weights: `predict` makes them whenever a task's `calibration` is null, so the
bundle is applied once as written and once with every calibration removed. Same models, same
point predictions; only the intervals differ.

Why a simulation: only on a population we draw from can new subjects be had at will. Two
SYNTHETIC populations (tests/fixtures/toy_data.py, planted signal; no real subject), a clear
signal and a weak one, with planted strengths chosen so that the network's R^2 on the fresh
draw is about 0.6 and about 0.4 (found by `--search-strengths`, a quick search that trains the
shipped models alone; the main run prints the R^2 reached per task). Per population:

1. a training data root of 300 subjects (seed `--seed`) and a fresh one of `--subjects-fresh`
   (default 3,000) of the same population (seed `--seed` + 1), all five tasks, two signatures
   (one with the planted signal, one without) as tests/fixtures/trained_sweep.py makes them;
2. the sweep made in process as that fixture makes it (one trial per task, its OVERRIDES with
   `split.test_fraction=0`, so the shipped models learn from every subject, and `--epochs`),
   scored by `summarise_sweep` with the nested cross-validation at the sweep config's minimums:
   2 repeats x 5 outer folds, 1 sample per outer fold (the search space is empty, as the
   fixture's: the nested search re-chooses the signature and the early-stopping epoch, not
   hyper-parameters); then `write_bundle`;
3. the fresh draw predicted through the bundle (`load_bundle`, `features_for`, `predict`),
   with the new intervals and with today's CV+.

How to read the output. Per task and for the subtotal (0-21, the sum of the five), a table of
coverage cells, each with its n, the coverage with a 95 % Wilson interval and the mean width,
new method first, CV+ second: all subjects; each third of the predictions (cut at the fresh
predictions' terciles, the same cuts for both methods); each true score (the subtotal: each
third of the true scores); the lowest and highest 10 % of true scores (score <= the 10th
percentile, >= the 90th, as the summary's report counts them; with whole-number scores these
can hold more than 10 % of subjects, and n says how many). Then whether the summary's estimate
(the network's RMSE over the outer folds with its corrected-t 95 % interval; it estimates the
procedure trained on 4/5 of the subjects) holds the shipped models' RMSE on the fresh draw,
beside the outer folds' own cross-fitted coverage of the new intervals.

The targets, at the nominal level 0.9, PASS or FAIL with their numbers (nothing is tuned to
pass them: strengths are chosen for R^2 alone, before any coverage is looked at):

- T1: coverage within [0.85, 0.95] for every task and the subtotal;
- T2: the mean of those six coverages within [0.88, 0.92];
- T3: coverage >= 0.80 within every third of the predictions (six x three cells);
- T4: mean width no wider than today's CV+, for every task and the subtotal;
- T5: the five tasks' mean width, averaged, no wider than CV+'s;
- T6 (the weak population only): the worst coverage among the lowest and highest 10 % of true
  scores (tasks and subtotal) >= 0.75, with every mean width at most 1.10 x CV+'s.

The tails are printed beside today's for both populations. The last lines, one per
population, are for grepping:

    clear: new coverage mean 0.90 [min 0.87, max 0.93], width 2.31 vs CV+ 2.55 (0.91x); ...

"width" there is the mean over the five tasks of each task's mean width, in item points.

One training draw is one calibration: the coverage and width of the shipped models' intervals
vary from draw to draw, and a target missed or met by a hair (a width ratio of 1.01) says
little. `--draws K` repeats everything over K training draws (seeds seed, seed + 2, ...; each
with its own fresh draw), prints each draw's line and, per population, how often each target
passed and the spread of the headline numbers.

    python benchmarks/coverage_fresh.py [--subjects-fresh 3000] [--seed 0] [--epochs 30]
    python benchmarks/coverage_fresh.py --draws 5          # the spread over training draws
    python benchmarks/coverage_fresh.py --quick            # a fast smoke run, numbers rough
    python benchmarks/coverage_fresh.py --search-strengths 0.6 0.8 1.0 1.2 1.4

Runtime: stages are timed as they print; a full run (one draw) takes about 2 minutes on
2 cores, most of it the nested cross-validation with its baselines; each draw adds as much.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmse_model.bundle.apply import SUBTOTAL, Bundle, features_for, load_bundle, predict
from mmse_model.bundle.write import write_bundle
from mmse_model.core.config import Config
from mmse_model.core.domain import SCORE_RANGES, TASKS
from mmse_model.data.dataset import dataset_path
from mmse_model.evaluation.conformal import wilson_interval
from mmse_model.sweeps.nested import NestedSearch
from mmse_model.sweeps.report import format_summary
from mmse_model.sweeps.results import signature_rows
from mmse_model.sweeps.summary import summarise_sweep, write_results
from mmse_model.sweeps.summary_schema import Estimate, IntervalReport, Summary
from mmse_model.training.callbacks import NullReporter
from mmse_model.training.checkpoint import FoldEnsemble, load_checkpoint, save_checkpoint
from mmse_model.training.loop import RunSpec, train_run
from tests.fixtures.toy_data import write_planted_root
from tests.fixtures.trained_sweep import OVERRIDES, STRONG, WEAK

# --- the populations and the study -----------------------------------------------------------
SIGNAL, NULL = STRONG, WEAK  # the fixture's names: one signature carries the signal, one none
# Planted strength -> network R^2 on a fresh draw (--search-strengths, seeds 0/1, 30 epochs,
# mean of the five tasks): 0.8 -> 0.40, 1.2 -> 0.60. Chosen for R^2 alone, before any coverage.
POPULATIONS = {"clear": 1.2, "weak": 0.8}
N_TRAIN = 300
N_FRESH = 3000
EPOCHS = 30
LEVEL = 0.9  # the bundle's nominal level (evaluation.interval_level's default)
REPEATS, OUTER_FOLDS, SAMPLES = 2, 5, 1  # the sweep config's minimums; empty search space

# --- the targets ----------------------------------------------------------------------
COVERAGE_BAND = (0.85, 0.95)
MEAN_BAND = (0.88, 0.92)
THIRD_FLOOR = 0.80
TAIL_FLOOR = 0.75
TAIL_WIDTH_RATIO = 1.10
TOLERANCE = 1e-9  # a bound equal to the truth holds it (as intervals.Held counts)

NEW, CVPLUS = "new", "CV+"


def training_config(epochs: int) -> Config:
    """The fixture's config with every subject in the shipped models' folds."""
    kept = [o for o in OVERRIDES if not o.startswith("training.epochs=")]
    return Config().with_overrides([*kept, f"training.epochs={epochs}", "split.test_fraction=0"])


def write_population(folder: Path, strength: float, n_subjects: int, seed: int) -> Path:
    return write_planted_root(
        folder, {SIGNAL: strength, NULL: 0.0}, tasks=TASKS, n_subjects=n_subjects, seed=seed
    )


def run_sweep(folder: Path, root: Path, config: Config) -> tuple[Summary, Path]:
    """The fixture's in-process sweep (one trial per task, both signatures packed), scored
    with the nested cross-validation; (summary, bundle folder)."""
    experiment = folder / "runs" / "fresh"
    rows = []
    started = time.time()
    for task in TASKS:
        outcome = train_run(RunSpec(str(root), (SIGNAL, NULL), task, config), NullReporter())
        checkpoint = (
            experiment / "train_runs" / f"t_{task}" / f"checkpoint_{outcome.checkpoint.epoch:06d}"
        )
        save_checkpoint(checkpoint, outcome.checkpoint)
        rows += signature_rows(
            f"t_{task}",
            task,
            "all",
            [SIGNAL, NULL],
            0,
            {"training.lr": config.training.lr},
            outcome.fit.history,
            (str(checkpoint), outcome.checkpoint),
            max_epochs=config.training.epochs,
        )
    print(f"  shipped models trained: {time.time() - started:.0f} s", flush=True)
    started = time.time()
    nested = NestedSearch(config, {}, SAMPLES, REPEATS, OUTER_FOLDS)
    provenance = {"data_root": str(root), "git_commit": None, "versions": {"python": "bench"}}
    summary, predictions = summarise_sweep(
        "fresh", rows, root, load_checkpoint, provenance=provenance, nested=nested
    )
    write_results(str(experiment), rows, summary, format_summary(summary), predictions)
    print(
        f"  nested cross-validation ({REPEATS} repeats x {OUTER_FOLDS} outer folds x "
        f"{SAMPLES} sample, baselines included) and summary: {time.time() - started:.0f} s",
        flush=True,
    )
    bundle = folder / "bundle"
    write_bundle(summary, root, load_checkpoint, str(bundle), source=str(experiment))
    return summary, bundle


def without_calibration(bundle: Bundle) -> Bundle:
    """The same bundle as one written before the new intervals: `predict` then gives CV+."""
    manifest = bundle.manifest
    tasks = {t: m.model_copy(update={"calibration": None}) for t, m in manifest.tasks.items()}
    subtotal = (
        None
        if manifest.subtotal is None
        else manifest.subtotal.model_copy(update={"calibration": None})
    )
    copy = manifest.model_copy(update={"tasks": tasks, "subtotal": subtotal})
    return dataclasses.replace(bundle, manifest=copy)


@dataclasses.dataclass(frozen=True)
class Fresh:
    """One task's (or the subtotal's) fresh subjects: truth, point prediction, both methods'
    intervals."""

    name: str
    truth: np.ndarray
    predicted: np.ndarray
    bounds: dict[str, tuple[np.ndarray, np.ndarray]]  # method -> (lower, upper)
    item_scale: bool

    def covered(self, method: str) -> np.ndarray:
        lower, upper = self.bounds[method]
        return (self.truth >= lower - TOLERANCE) & (self.truth <= upper + TOLERANCE)

    def width(self, method: str) -> np.ndarray:
        lower, upper = self.bounds[method]
        return upper - lower


def fresh_results(bundle_folder: Path, fresh_root: Path) -> dict[str, Fresh]:
    """Every task and the subtotal on the fresh draw, through the bundle both ways."""
    bundle = load_bundle(bundle_folder)
    if bundle.manifest.interval_level != LEVEL:
        raise SystemExit(f"the bundle's level is {bundle.manifest.interval_level}, not {LEVEL}")
    missing = [t for t, m in bundle.manifest.tasks.items() if m.calibration is None]
    if missing or bundle.manifest.subtotal is None or bundle.manifest.subtotal.calibration is None:
        raise SystemExit(f"the bundle has no outer-fold calibration for {missing or 'subtotal'}")
    features = features_for(bundle, fresh_root)
    made = {NEW: predict(bundle, features), CVPLUS: predict(without_calibration(bundle), features)}
    subjects = made[NEW].subject_ids
    if made[CVPLUS].subject_ids != subjects:
        raise RuntimeError("the two predictions list the subjects in different orders")
    truth = {}
    for task, predictor in bundle.tasks.items():
        with np.load(dataset_path(fresh_root, predictor.model.signature, task)) as npz:
            truth[task] = dict(zip(npz["subject_id"].tolist(), npz["y"].astype(float).tolist()))
    truth[SUBTOTAL] = {s: sum(truth[t][s] for t in TASKS) for s in subjects}
    out = {}
    for name in (*TASKS, SUBTOTAL):
        values = {m: made[m].values for m in made}
        points = np.array(values[NEW][name], dtype=float)
        if not np.allclose(points, np.array(values[CVPLUS][name], dtype=float)):
            raise RuntimeError(f"{name}: the two methods' point predictions differ")
        out[name] = Fresh(
            name,
            np.array([truth[name][s] for s in subjects]),
            points,
            {
                m: (
                    np.array(values[m][f"{name}_lo"], dtype=float),
                    np.array(values[m][f"{name}_hi"], dtype=float),
                )
                for m in made
            },
            item_scale=name != SUBTOTAL,
        )
    return out


@dataclasses.dataclass(frozen=True)
class Cell:
    label: str
    n: int
    coverage: dict[str, float]  # method -> share covered
    ci: dict[str, list[float]]  # method -> Wilson 95 %
    width: dict[str, float]  # method -> mean width


def cell(fresh: Fresh, label: str, rows: np.ndarray) -> Cell:
    n = int(rows.sum())
    coverage, ci, width = {}, {}, {}
    for method in fresh.bounds:
        hits = int(fresh.covered(method)[rows].sum())
        coverage[method] = hits / n if n else math.nan
        ci[method] = wilson_interval(hits, n)
        width[method] = float(fresh.width(method)[rows].mean()) if n else math.nan
    return Cell(label, n, coverage, ci, width)


def thirds(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cut points at the terciles, each value's third 0-2), as the summary's report cuts."""
    cuts = np.quantile(values, [1 / 3, 2 / 3])
    return cuts, np.searchsorted(cuts, values, side="right")


def cells(fresh: Fresh) -> dict[str, list[Cell]]:
    """overall, by third of the prediction, by true score, tails."""
    everyone = np.ones(len(fresh.truth), dtype=bool)
    cuts, third = thirds(fresh.predicted)
    edges = [None, *cuts, None]
    by_band = []
    for b in range(3):
        low, high = edges[b], edges[b + 1]
        where = (
            f"below {high:.2f}"
            if low is None
            else f"{low:.2f} or more"
            if high is None
            else f"{low:.2f} to {high:.2f}"
        )
        by_band.append(cell(fresh, f"predicted third {b + 1}: {where}", third == b))
    by_score = []
    if fresh.item_scale:
        scores = np.rint(fresh.truth)
        for score in sorted(set(scores.tolist())):
            by_score.append(cell(fresh, f"true score {score:g}", scores == score))
    else:
        _, true_third = thirds(fresh.truth)
        for i, name in enumerate(("lowest", "middle", "highest")):
            by_score.append(cell(fresh, f"{name} third of true scores", true_third == i))
    low, high = np.quantile(fresh.truth, [0.1, 0.9])
    tails = [
        cell(fresh, f"lowest 10 % of true scores (<= {low:g})", fresh.truth <= low),
        cell(fresh, f"highest 10 % of true scores (>= {high:g})", fresh.truth >= high),
    ]
    return {
        "overall": [cell(fresh, "all subjects", everyone)],
        "thirds": by_band,
        "score": by_score,
        "tails": tails,
    }


def format_cell(c: Cell) -> str:
    parts = [f"  {c.label:<44} n {c.n:>5}"]
    for method in (NEW, CVPLUS):
        lo, hi = c.ci[method]
        parts.append(
            f"{method:>4} {c.coverage[method]:.3f} [{lo:.3f}, {hi:.3f}] w {c.width[method]:5.2f}"
        )
    return "  ".join(parts)


def estimate_check(name: str, estimate: Estimate | None, fresh: Fresh) -> tuple[str, bool | None]:
    """Whether the summary's network RMSE interval holds the shipped models' fresh RMSE."""
    rmse = float(np.sqrt(np.mean((fresh.truth - fresh.predicted) ** 2)))
    if estimate is None or estimate.network.rmse.ci is None:
        return f"  {name}: fresh RMSE {rmse:.3f}; the summary has no estimate interval", None
    value, (lo, hi) = estimate.network.rmse.value, estimate.network.rmse.ci
    holds = lo <= rmse <= hi
    side = "holds it" if holds else "fresh RMSE below it" if rmse < lo else "fresh RMSE above it"
    line = (
        f"  {name}: estimate RMSE {value:.3f} [{lo:.3f}, {hi:.3f}] (corrected t, "
        f"{estimate.network.rmse.folds} outer folds) vs shipped models' fresh RMSE {rmse:.3f}: "
        f"{side}"
    )
    return line, holds


def r_squared(fresh: Fresh) -> float:
    residual = np.sum((fresh.truth - fresh.predicted) ** 2)
    return float(1 - residual / np.sum((fresh.truth - fresh.truth.mean()) ** 2))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


@dataclasses.dataclass
class Outcome:
    """One population and training draw: the numbers its summary line and targets need."""

    name: str
    seed: int
    coverage: dict[str, float]  # method -> mean over the tasks and the subtotal
    lowest: float  # the new method's lowest and highest coverage among those six
    highest: float
    width: dict[str, float]  # method -> mean over the five tasks of their mean widths
    tails: dict[str, float]  # method -> worst tail coverage (tasks and subtotal)
    r2: float  # the five tasks' mean
    estimate_holds: tuple[int, int]  # (held, checked)
    targets: dict[str, bool]  # T1.. -> passed

    @property
    def ratio(self) -> float:
        return self.width[NEW] / self.width[CVPLUS]

    def line(self, label: str) -> str:
        passed = sum(self.targets.values())
        return (
            f"{label}: new coverage mean {self.coverage[NEW]:.2f} [min {self.lowest:.2f}, max "
            f"{self.highest:.2f}], width {self.width[NEW]:.2f} vs CV+ {self.width[CVPLUS]:.2f} "
            f"({self.ratio:.2f}x); tails worst {self.tails[NEW]:.2f} vs CV+ "
            f"{self.tails[CVPLUS]:.2f}; CV+ coverage mean {self.coverage[CVPLUS]:.2f}; R^2 mean "
            f"{self.r2:.2f}; estimate holds {self.estimate_holds[0]}/{self.estimate_holds[1]}; "
            f"targets {passed}/{len(self.targets)} PASS"
            + (
                f" (FAIL: {', '.join(t for t, ok in self.targets.items() if not ok)})"
                if passed < len(self.targets)
                else ""
            )
        )


def population(
    name: str, strength: float, folder: Path, seed: int, args: argparse.Namespace
) -> Outcome:
    """Sweep, bundle and check one population's training draw `seed` (fresh: seed + 1)."""
    started = time.time()
    print(
        f"\n=== {name} signal: planted strength {strength}, training seed {seed}, fresh seed "
        f"{seed + 1} (SYNTHETIC) ===",
        flush=True,
    )
    train = write_population(folder / "train", strength, N_TRAIN, seed)
    fresh_root = write_population(folder / "fresh", strength, args.subjects_fresh, seed + 1)
    summary, bundle = run_sweep(folder, train, training_config(args.epochs))
    t0 = time.time()
    results = fresh_results(bundle, fresh_root)
    print(
        f"  fresh draw ({args.subjects_fresh} subjects) predicted both ways: "
        f"{time.time() - t0:.0f} s",
        flush=True,
    )
    r2 = {t: r_squared(results[t]) for t in TASKS}
    print(
        "  network R^2 on the fresh draw: "
        + ", ".join(f"{t} {r2[t]:.2f}" for t in TASKS)
        + f"; mean {np.mean(list(r2.values())):.2f}; subtotal {r_squared(results[SUBTOTAL]):.2f}"
    )
    print(
        "  signatures shipped: "
        + ", ".join(
            f"{t} {'signal' if summary.tasks[t].winner.signature == SIGNAL else 'NULL'}"
            for t in TASKS
        )
    )
    table, holds = print_tables(summary, results)
    outcome = check_targets(name, seed, table, holds, float(np.mean(list(r2.values()))))
    print(f"  population runtime {time.time() - started:.0f} s", flush=True)
    return outcome


def print_tables(
    summary: Summary, results: dict[str, Fresh]
) -> tuple[dict[str, dict[str, list[Cell]]], list[bool]]:
    """Every task's and the subtotal's coverage cells, and whether the summary's estimate
    interval holds the fresh RMSE (one per task and subtotal that has one)."""
    reports: dict[str, IntervalReport | None] = {
        t: summary.tasks[t].prediction_intervals for t in TASKS
    }
    estimates: dict[str, Estimate | None] = {t: summary.tasks[t].estimate for t in TASKS}
    reports[SUBTOTAL] = None if summary.subtotal is None else summary.subtotal.prediction_intervals
    estimates[SUBTOTAL] = None if summary.subtotal is None else summary.subtotal.estimate
    table: dict[str, dict[str, list[Cell]]] = {}
    holds = []
    for key, fresh in results.items():
        table[key] = cells(fresh)
        scale = f"0-{SCORE_RANGES[key][1]:g}" if key in SCORE_RANGES else "0-21"
        print(f"\n  {key} ({scale}); coverage [Wilson 95 %], mean width w, nominal {LEVEL}")
        for group in ("overall", "thirds", "score", "tails"):
            for c in table[key][group]:
                print(format_cell(c))
        report = reports[key]
        if report is not None:
            lo, hi = report.overall.coverage_ci or (math.nan, math.nan)
            print(
                f"  (the outer folds' own cross-fitted coverage of the new intervals: "
                f"{report.overall.coverage:.3f} [{lo:.3f}, {hi:.3f}], n {report.overall.n})"
            )
        line, held = estimate_check(key, estimates[key], fresh)
        print(line)
        if held is not None:
            holds.append(held)
    return table, holds


def check_targets(
    name: str,
    seed: int,
    table: dict[str, dict[str, list[Cell]]],
    holds: list[bool],
    r2: float,
) -> Outcome:
    """Print the issue's targets, PASS or FAIL with their numbers."""
    names = (*TASKS, SUBTOTAL)
    methods = (NEW, CVPLUS)
    overall = {k: {m: table[k]["overall"][0].coverage[m] for m in methods} for k in names}
    width = {k: {m: table[k]["overall"][0].width[m] for m in methods} for k in names}
    print(f"\n  targets at nominal {LEVEL} (new method; CV+ beside it for reference):")
    targets: dict[str, bool] = {}

    ok = targets["T1"] = all(COVERAGE_BAND[0] <= overall[k][NEW] <= COVERAGE_BAND[1] for k in names)
    print(
        f"  T1 {verdict(ok)} coverage within {list(COVERAGE_BAND)} for every task and the "
        "subtotal: "
        + ", ".join(f"{k} {overall[k][NEW]:.3f} (CV+ {overall[k][CVPLUS]:.3f})" for k in names)
    )

    mean = {m: float(np.mean([overall[k][m] for k in names])) for m in methods}
    ok = targets["T2"] = MEAN_BAND[0] <= mean[NEW] <= MEAN_BAND[1]
    print(
        f"  T2 {verdict(ok)} mean coverage within {list(MEAN_BAND)}: {mean[NEW]:.3f} "
        f"(CV+ {mean[CVPLUS]:.3f})"
    )

    worst_third = {
        m: min(c.coverage[m] for k in names for c in table[k]["thirds"]) for m in methods
    }
    short = [
        f"{k} third {i + 1} {c.coverage[NEW]:.3f}"
        for k in names
        for i, c in enumerate(table[k]["thirds"])
        if c.coverage[NEW] < THIRD_FLOOR
    ]
    ok = targets["T3"] = not short
    print(
        f"  T3 {verdict(ok)} >= {THIRD_FLOOR} within every third of the predictions: worst "
        f"{worst_third[NEW]:.3f} (CV+ {worst_third[CVPLUS]:.3f})"
        + (f"; below: {', '.join(short)}" if short else "")
    )

    ratio = {k: width[k][NEW] / width[k][CVPLUS] for k in names}
    ok = targets["T4"] = all(ratio[k] <= 1 + TOLERANCE for k in names)
    print(
        f"  T4 {verdict(ok)} mean width no wider than CV+ per task and subtotal: "
        + ", ".join(
            f"{k} {width[k][NEW]:.2f} vs {width[k][CVPLUS]:.2f} ({ratio[k]:.3f}x)" for k in names
        )
    )

    task_width = {m: float(np.mean([width[t][m] for t in TASKS])) for m in methods}
    average = task_width[NEW] / task_width[CVPLUS]
    ok = targets["T5"] = average <= 1 + TOLERANCE
    print(
        f"  T5 {verdict(ok)} the five tasks' mean width on average no wider than CV+: "
        f"{task_width[NEW]:.2f} vs {task_width[CVPLUS]:.2f} ({average:.3f}x)"
    )

    tails = {m: min(c.coverage[m] for k in names for c in table[k]["tails"]) for m in methods}
    print(
        "  tails (lowest / highest 10 % of true scores), new vs CV+: "
        + ", ".join(
            f"{k} {table[k]['tails'][0].coverage[NEW]:.2f}/{table[k]['tails'][1].coverage[NEW]:.2f}"
            f" vs {table[k]['tails'][0].coverage[CVPLUS]:.2f}"
            f"/{table[k]['tails'][1].coverage[CVPLUS]:.2f}"
            for k in names
        )
    )
    if name == "weak":
        widest = max(ratio.values())
        ok = targets["T6"] = tails[NEW] >= TAIL_FLOOR and widest <= TAIL_WIDTH_RATIO + TOLERANCE
        print(
            f"  T6 {verdict(ok)} worst tail >= {TAIL_FLOOR} with every mean width <= "
            f"{TAIL_WIDTH_RATIO}x CV+'s: worst tail {tails[NEW]:.3f} (CV+ {tails[CVPLUS]:.3f}), "
            f"widest {widest:.3f}x"
        )
    print(
        f"  estimate interval holds the fresh RMSE: {sum(holds)}/{len(holds)} "
        "(tasks and subtotal; reported, not a target)"
    )
    covs = [overall[k][NEW] for k in names]
    return Outcome(
        name,
        seed,
        mean,
        min(covs),
        max(covs),
        task_width,
        tails,
        r2,
        (sum(holds), len(holds)),
        targets,
    )


def across_draws(name: str, outcomes: list[Outcome]) -> str:
    """One population over several training draws: how often each target passed, and the
    spread of the headline numbers."""

    def spread(values: list[float]) -> str:
        return f"{np.mean(values):.2f} (sd {np.std(values, ddof=1):.2f})"

    passed = ", ".join(
        f"{t} {sum(o.targets[t] for o in outcomes)}/{len(outcomes)}" for t in outcomes[0].targets
    )
    return (
        f"{name} over {len(outcomes)} draws: new coverage mean "
        f"{spread([o.coverage[NEW] for o in outcomes])}, width ratio "
        f"{spread([o.ratio for o in outcomes])}x, tails worst "
        f"{spread([o.tails[NEW] for o in outcomes])} vs CV+ "
        f"{spread([o.tails[CVPLUS] for o in outcomes])}; targets passed {passed}"
    )


def search_strengths(strengths: list[float], folder: Path, args: argparse.Namespace) -> None:
    """The network's R^2 on a fresh draw at each planted strength: the shipped models alone
    (no nested cross-validation, no intervals), the signature their validation loss chose."""
    config = training_config(args.epochs)
    for strength in strengths:
        started = time.time()
        train = write_population(folder / f"s{strength}" / "train", strength, N_TRAIN, args.seed)
        fresh = write_population(
            folder / f"s{strength}" / "fresh", strength, args.subjects_fresh, args.seed + 1
        )
        r2 = []
        for task in TASKS:
            outcome = train_run(RunSpec(str(train), (SIGNAL, NULL), task, config), NullReporter())
            best = min(outcome.checkpoint.states, key=lambda s: s.best_val_loss).signature
            ensemble = FoldEnsemble.from_checkpoint(outcome.checkpoint, best)
            with np.load(dataset_path(fresh, best, task)) as npz:
                y, predicted = npz["y"], ensemble.predict_folds(npz["X"]).mean(axis=0)
            r2.append(1 - np.sum((y - predicted) ** 2) / np.sum((y - y.mean()) ** 2))
        print(
            f"strength {strength}: R^2 "
            + ", ".join(f"{t} {v:.2f}" for t, v in zip(TASKS, r2))
            + f"; mean {np.mean(r2):.2f} ({time.time() - started:.0f} s)",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjects-fresh", type=int, default=N_FRESH)
    parser.add_argument("--seed", type=int, default=0, help="training draw; fresh: seed + 1")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument(
        "--draws",
        type=int,
        default=1,
        help="training draws per population (seeds seed, seed + 2, ...): the spread of the "
        "numbers over training draws",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 500 fresh subjects, 8 epochs"
    )
    parser.add_argument(
        "--search-strengths",
        type=float,
        nargs="+",
        metavar="S",
        help="only print the network's fresh R^2 at these planted strengths",
    )
    args = parser.parse_args()
    if args.quick:
        args.subjects_fresh, args.epochs = min(args.subjects_fresh, 500), min(args.epochs, 8)
    started = time.time()
    print(
        f"SYNTHETIC populations (tests/fixtures/toy_data.py); {N_TRAIN} training subjects "
        f"(seed {args.seed}), {args.subjects_fresh} fresh (seed {args.seed + 1}), "
        f"{args.epochs} epochs, nominal level {LEVEL}, {args.draws} training draw(s)"
        + ("; --quick: a smoke run, the numbers are rough" if args.quick else "")
    )
    with tempfile.TemporaryDirectory(prefix="coverage-fresh-") as tmp:
        if args.search_strengths:
            search_strengths(args.search_strengths, Path(tmp), args)
            print(f"total runtime {time.time() - started:.0f} s")
            return
        outcomes: dict[str, list[Outcome]] = {name: [] for name in POPULATIONS}
        for draw in range(args.draws):
            seed = args.seed + 2 * draw  # training seed; the fresh draw's is seed + 1
            for name, strength in POPULATIONS.items():
                folder = Path(tmp) / f"{name}-{draw}"
                outcomes[name].append(population(name, strength, folder, seed, args))
    print(f"\ntotal runtime {time.time() - started:.0f} s")
    for name, found in outcomes.items():
        if len(found) == 1:
            print(found[0].line(name))
        else:
            for o in found:
                print(o.line(f"{name} seed {o.seed}"))
            print(across_draws(name, found))


if __name__ == "__main__":
    main()
