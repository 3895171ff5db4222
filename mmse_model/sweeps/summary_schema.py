"""`summary.json`: what a finished sweep found, as one typed, versioned document.

Written once by the sweep (`mmse_model/sweeps/summary.py` builds it), read by
`read_summary` alone: the text report, the dashboard, the bundle and its model card all read
this model. Every rule a reader would otherwise re-apply is decided here or by the writer and
stored: labels, verdicts and their words, the order of baselines, comparisons, groups and
statuses, the subtotal, calibration lines. An undefined statistic (the calibration slope of
a constant prediction, a Pearson r with no variance) is null, never 0.

Versions: 0 is every summary written before this contract (no format tag); `_upgrade_0`
turns one into version 1, naming in `not_recorded` what it did not say.

Layout (version 1), the way scikit-learn documents `cv_results_`:

    experiment, metric             the sweep's name; the validation metric that ranked
    synthetic, synthetic_source    SYNTHETIC cohort or not, and which file says so
    n_trials, n_rows               trials, and their rows (one per signature)
    row_status                     [{status, label, n}] in the order every view lists them
    failed_trials                  ids of trials that failed for good (the sweep is INCOMPLETE)
    comparator                     the declared primary baseline, the secondary ones, the
                                   paired intervals' level and adjustment, in words (`note`)
    excluded_recordings            recordings the data build skipped (null: unknown)
    tasks.<Q>                      per task: `winner` (its trial, signature, sample,
                                   hyper-parameters, best epoch, selection metrics,
                                   checkpoint), `test` (the winner on the held-out subjects,
                                   points, 95 % intervals), `baselines` [in BASELINES order],
                                   `comparisons` [network minus each baseline, the primary
                                   first], `verdict` (the primary comparison's), `training`
                                   (N and outcome distribution), `per_group`, `intervals`
                                   (CV+ coverage), `nested_estimate`
    subtotal                       the sum of the tasks per test subject: metrics, coverage,
                                   per group, the dementia AUC
    best_per_signature_task        [{task, signature, trial_id, loss, rmse, rmse_sd}] ranked
                                   within each task (selection, not estimates)
    provenance                     config, data, code and library versions, times
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import Field

from mmse_model.core.contract import Contract, Record, tagged
from mmse_model.core.domain import (
    BASELINE_LABELS,
    BASELINES,
    NETWORK_LABEL,
    SCORE_RANGES,
    TASK_ITEMS,
    ordered_groups,
)
from mmse_model.sweeps import rules
from mmse_model.sweeps.looks import Looks

SUMMARY_NAME = "summary.json"
# A 95 % interval [low, high]; None where none was made.
Interval = tuple[float, float] | None
# A statistic; None where it is undefined (or, per `not_recorded`, not recorded).
Stat = float | None
Result = Literal["better", "level", "worse"]


class Scores(Record):
    """One model's predictions scored on the same subjects, in sub-score points."""

    n: int  # subjects
    rmse: Stat = None
    rmse_ci: Interval = None
    mae: Stat = None
    mae_ci: Interval = None
    r2: Stat = None
    r2_ci: Interval = None
    mse: Stat = None
    explained_variance: Stat = None
    pearson_r: Stat = None
    mape: Stat = None  # percent of the score range
    # True score regressed on the prediction (1 and 0 is ideal); null for a constant prediction.
    calibration_slope: Stat = None
    calibration_intercept: Stat = None


class Baseline(Record):
    key: str
    label: str
    primary: bool  # the declared comparator
    signature: str | None = None  # the signature it chose by its own cross-validation
    cv_rmse: Stat = None  # its cross-validated RMSE there (selection, not an estimate)
    settings: dict[str, Any] = Field(
        default_factory=dict
    )  # what its cross-validation chose (Ridge's alpha, ...)
    test: Scores


class Comparison(Record):
    """The network minus one baseline on the same test subjects (paired bootstrap)."""

    baseline: str
    label: str
    primary: bool
    rmse_diff: Stat = None
    rmse_diff_ci: Interval = None
    mae_diff_ci: Interval = None
    result: Result | None = None  # better/worse where the RMSE interval excludes 0
    words: str  # the result as every output says it


class Verdict(Record):
    baseline: str
    label: str
    result: Result | None
    words: str
    rmse_diff: Stat = None
    rmse_diff_ci: Interval = None
    source: str  # which comparison decided


class Winner(Record):
    trial_id: str
    signature: str
    sample: int | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    best_epoch: int | None = None
    selection: dict[str, Stat] = Field(
        default_factory=dict
    )  # val/* at the best epoch: these selected the winner
    checkpoint_uri: str = ""


class Outcome(Record):
    """The true scores of a set of subjects, one per subject."""

    n: int
    mean: Stat = None
    sd: Stat = None
    min: Stat = None
    max: Stat = None
    counts: dict[str, int] = Field(default_factory=dict)  # score (as printed) -> subjects


class Training(Record):
    n_train: int
    n_test: int
    outcome_train: Outcome
    outcome_test: Outcome


class GroupError(Record):
    group: str
    n: int
    rmse: Stat = None
    mae: Stat = None
    bias: Stat = None  # mean of predicted - true


class Coverage(Record):
    """How often per-subject prediction intervals held the true score (Wilson interval)."""

    method: str = "CV+"  # how the intervals were made (older summaries: CV+)
    level: float
    n: int
    covered: int
    coverage: Stat = None
    coverage_ci: Interval = None
    mean_width: Stat = None


class CoverageCell(Record):
    """Coverage of the intervals in one cell (all subjects, a band of the prediction, a true
    score, a group), counted in subjects, with its Wilson interval."""

    label: str
    n: int  # subjects
    covered: int
    coverage: Stat = None
    coverage_ci: Interval = None
    mean_width: Stat = None
    short: bool = False  # the whole Wilson interval lies below the nominal level
    score: Stat = None  # the true score of a per-score cell (null for every other cell)
    # What the cell is: all, band, score, third (the subtotal's thirds of true scores),
    # low_tail / high_tail (true scores at or below the 10th / at or above the 90th
    # percentile: with ties, more than a tenth of the subjects), group
    kind: str = ""


class Calibration(Record):
    """What a new prediction's interval needs (mmse_model/evaluation/intervals.py): the band
    cut points on the prediction scale and each band's offsets, from `n` residuals each."""

    method: str
    level: float
    cuts: tuple[float, ...]
    lower: tuple[float, ...]  # may be -inf, written null: the range's bound
    upper: tuple[float, ...]
    n: tuple[int, ...]
    integer_sets: bool = False  # predictions also give the item's scores inside the interval


class IntervalReport(Record):
    """The per-subject prediction intervals: how they are made, what they guarantee, and
    how often they held the true score over the outer folds (cross-fitted: each fold's
    intervals calibrated on the other folds of its repeat)."""

    method: str
    level: float
    source: str
    guarantee: str
    calibration: Calibration  # from every outer fold: what the shipped models' intervals use
    overall: CoverageCell
    by_band: tuple[CoverageCell, ...]
    by_score: tuple[CoverageCell, ...]
    by_group: tuple[CoverageCell, ...] | None = None
    short: tuple[str, ...] = ()  # the cells that fall short of nominal, by label


class EstimateModel(Record):
    key: str
    label: str
    rmse_mean: Stat = None
    rmse_sd: Stat = None  # null for one repeat
    rmse_values: tuple[Stat, ...] = ()
    signatures_chosen: tuple[str | None, ...] = ()


class Halving(Record):
    """Successive halving inside the search: at each rung (an epoch) the best
    1/reduction_factor of the (sample, signature) candidates went on."""

    rungs: tuple[int, ...]
    reduction_factor: float

    def words(self) -> str:
        return halving_words(self.rungs, self.reduction_factor)


def halving_words(rungs: tuple[int, ...], reduction_factor: float) -> str:
    """'successive halving at epochs 10, 30, 90 (best 1/3 on)': every output says it so."""
    return (
        f"successive halving at epochs {', '.join(map(str, rungs))} "
        f"(best 1/{reduction_factor:g} on)"
    )


class SearchSize(Record):
    samples: int
    signatures: int
    folds: int
    halving: Halving | None = None  # null: every candidate trained to its end (all before v2)

    def cut_words(self) -> str:
        """How the search cut its candidates short, in the words every view uses."""
        return self.halving.words() if self.halving else "no early cut"


class NestedEstimate(Record):
    kind: Literal["nested", "procedure"]  # procedure: an older sweep's, hyper-parameters re-used
    label: str
    repeats: int
    search: SearchSize | None = None
    models: tuple[EstimateModel, ...]  # the network first
    ran_on: tuple[str, ...] = ()


class Measure(Record):
    """A metric (or a difference) over the outer folds: its mean, the corrected resampled t
    interval, and how many folds it was defined on."""

    value: Stat = None
    ci: Interval = None
    folds: int = 0


class EstimateScores(Record):
    """One model's estimate: in points, and on the item's scale (exact and within-1
    agreement of the rounded prediction, quadratic-weighted kappa; null for the subtotal)."""

    key: str
    label: str
    rmse: Measure
    mae: Measure
    r2: Measure
    exact: Measure | None = None
    within_1: Measure | None = None
    kappa: Measure | None = None
    fold_rmse: tuple[Stat, ...] = ()  # per outer fold, repeat by repeat
    signatures_chosen: dict[str, int] = Field(default_factory=dict)  # signature -> folds


class EstimateDifference(Record):
    """The network minus one baseline, fold by fold (negative RMSE: the network is better)."""

    baseline: str
    label: str
    primary: bool
    rmse: Measure
    mae: Measure
    r2: Measure
    exact: Measure | None = None
    within_1: Measure | None = None
    kappa: Measure | None = None
    p_value: Stat = None  # of the RMSE difference, unadjusted
    p_holm: Stat = None  # Holm-adjusted across the tasks: the primary comparison only
    result: Result | None = None  # the primary's at the Holm level; others unadjusted
    words: str


class AUCEstimate(Record):
    synthetic: bool
    comparator: str
    comparator_label: str
    n_dementia: int
    n_other: int
    network: Measure
    baseline: Measure
    difference: Measure
    p_value: Stat = None


class Estimate(Record):
    """The headline: repeated nested cross-validation over every subject."""

    method: str
    what: str  # what it estimates, in words
    interval: str  # how its intervals are made
    n_subjects: int
    repeats: int
    outer_folds: int
    search: SearchSize | None  # the search inside each outer fold (null for the subtotal)
    network: EstimateScores
    baselines: tuple[EstimateScores, ...]
    differences: tuple[EstimateDifference, ...]  # the primary first
    ran_on: tuple[str, ...] = ()
    dementia_auc: AUCEstimate | None = None  # the subtotal's, with a groups file
    partition: str = ""  # sha256 of the outer folds' subjects (the looks log names it)

    def difference(self, baseline: str) -> EstimateDifference | None:
        return next((d for d in self.differences if d.baseline == baseline), None)


class SiteScores(Record):
    """One held-out site of the transfer estimate."""

    site: str
    n_subjects: int
    n_train: int  # subjects the site's models learnt from (every other site's)
    network_rmse: Stat = None
    comparator_rmse: Stat = None  # the declared comparator's
    network_signature: str | None = None  # the signature its selection chose (null: subtotal)


class Transfer(Estimate):
    """The transfer estimate: each value of the labels' `by` column held out in turn
    (leave-one-site-out), reported apart from the headline; it decides no verdict."""

    by: str
    sites: tuple[SiteScores, ...]


class TaskResult(Record):
    task: str
    item: str
    score_range: tuple[float, float]
    winner: Winner
    test: Scores | None = None
    baselines: tuple[Baseline, ...] = ()
    comparisons: tuple[Comparison, ...] = ()  # the primary first
    verdict: Verdict | None = None
    training: Training | None = None
    per_group: tuple[GroupError, ...] | None = None
    intervals: Coverage | None = None  # the held-out split's CV+ coverage
    estimate: Estimate | None = None  # the headline (repeated nested cross-validation)
    prediction_intervals: IntervalReport | None = None
    transfer: Transfer | None = None  # with evaluation.transfer_by: leave-one-site-out
    # An older summary's estimate over fresh hold-outs (or its procedure estimate)
    nested_estimate: NestedEstimate | None = None

    def baseline(self, key: str) -> Baseline | None:
        return next((b for b in self.baselines if b.key == key), None)


class DementiaAUC(Record):
    synthetic: bool
    n_dementia: int
    n_other: int
    n_without_group: int = 0
    groups_file: str = ""
    auc: Stat = None  # null when one side has no subject
    auc_ci: Interval = None


class SubtotalResult(Record):
    tasks: tuple[str, ...]
    n: int  # test subjects with a prediction on every task
    range: tuple[float, float]
    all_five_tasks: bool
    test: Scores | None = None  # null for fewer than two subjects
    intervals: Coverage | None = None
    per_group: tuple[GroupError, ...] | None = None
    dementia_auc: DementiaAUC | None = None
    estimate: Estimate | None = None
    prediction_intervals: IntervalReport | None = None
    transfer: Transfer | None = None


class Named(Record):
    key: str
    label: str


class Comparator(Record):
    declared: bool  # false: an older sweep that declared none, read against Ridge
    primary: Named
    secondary: tuple[Named, ...]
    level: float
    adjustment: Literal["none", "holm"]
    n_tasks: int
    note: str


class StatusCount(Record):
    status: str
    label: str
    n: int


class BestCell(Record):
    task: str
    signature: str
    trial_id: str
    loss: Stat = None
    rmse: Stat = None
    rmse_sd: Stat = None


class Provenance(Record):
    sweep_config: dict[str, Any] | None = None
    data_root: str | None = None
    data_fingerprint: str | None = None
    git_commit: str | None = None
    versions: dict[str, str] | None = None
    started: str | None = None
    ended: str | None = None
    # Seconds per phase of the sweep's driver until its results were written
    # (sweeps/phases.py: wall seconds, and the nested folds' CPU seconds)
    phases: dict[str, float] | None = None


class Summary(Contract):
    FORMAT: ClassVar[str] = "mmse-sweep-summary"
    # 2: the nested search's successive halving (`search.halving`) and the driver's phases
    # (`provenance.phases`); a version-1 file had neither (no halving: null says so).
    FORMAT_VERSION: ClassVar[int] = 2

    format: Literal["mmse-sweep-summary"] = "mmse-sweep-summary"
    format_version: int = 2
    experiment: str
    metric: str
    synthetic: bool | None = None
    synthetic_source: str | None = None
    n_trials: int
    n_rows: int
    row_status: tuple[StatusCount, ...]
    failed_trials: tuple[str, ...] = ()
    comparator: Comparator | None = None
    excluded_recordings: int | None = None
    tasks: dict[str, TaskResult]
    subtotal: SubtotalResult | None = None
    best_per_signature_task: tuple[BestCell, ...] = ()
    provenance: Provenance | None = None
    looks: Looks | None = None  # how often results were scored on these data

    @classmethod
    def file_kind(cls) -> str:
        return "a sweep's summary.json"

    @classmethod
    def legacy_version(cls, document: dict[str, Any]) -> int | None:
        return 0 if "format" not in document and "tasks" in document else None

    @property
    def finished_whole(self) -> bool:
        return not self.failed_trials


def read_summary(where: str, text: str) -> Summary:
    """The summary of `text` (a summary.json of any version this code reads)."""
    return Summary.read(where, text)


# --- version 0 (before the contract) -> 1 -----------------------------------------------------


def _upgrade_0(old: dict[str, Any]) -> dict[str, Any]:
    """A summary written before the contract, in today's layout. Its keys grew over time;
    what one did not record stays null and is named in `not_recorded`."""
    missing: list[str] = []
    tasks = old.get("tasks") or {}
    declared = isinstance(old.get("comparator"), dict) and bool(old["comparator"].get("primary"))
    comparator = _old_comparator(old.get("comparator"), len(tasks), declared)
    if not declared:
        missing.append("comparator")
    new_tasks = {}
    for task, entry in tasks.items():
        new_tasks[task] = _old_task(task, entry or {}, comparator, declared, missing)
    synthetic, source = _old_synthetic(old)
    if synthetic is None:
        missing.append("synthetic")
    if "excluded_recordings" not in old:
        missing.append("excluded_recordings")
    # The repeated nested cross-validation, its intervals and the looks log came with the
    # contract.
    missing.append("looks")
    for task in tasks:
        missing += [f"tasks.{task}.estimate", f"tasks.{task}.prediction_intervals"]
    if isinstance(old.get("subtotal"), dict):
        missing += ["subtotal.estimate", "subtotal.prediction_intervals"]
    provenance = old.get("provenance")
    if not isinstance(provenance, dict):
        missing.append("provenance")
        provenance = None
    return tagged(
        Summary,
        {
            "experiment": str(old.get("experiment") or ""),
            "metric": str(old.get("metric") or "val/loss"),
            "synthetic": synthetic,
            "synthetic_source": source,
            "n_trials": int(old.get("n_trials") or 0),
            "n_rows": int(old.get("n_rows") or 0),
            "row_status": status_counts(old.get("row_status") or {}),
            "failed_trials": list(old.get("failed_trials") or []),
            "comparator": comparator,
            "excluded_recordings": _count(old.get("excluded_recordings")),
            "tasks": new_tasks,
            # `synthetic` came last: a summary with it records per-group errors wherever
            # there was a groups file.
            "subtotal": _old_subtotal(old.get("subtotal"), missing, "synthetic" in old),
            "best_per_signature_task": [
                {
                    "task": r["task"],
                    "signature": r["signature"],
                    "trial_id": r.get("trial_id", ""),
                    "loss": r.get("val/loss"),
                    "rmse": r.get("val/rmse"),
                    "rmse_sd": r.get("val/rmse_sd"),
                }
                for r in old.get("best_per_signature_task") or []
            ],
            "provenance": provenance,
            "not_recorded": sorted(set(missing)),
        },
        1,
    )


def _upgrade_1(old: dict[str, Any]) -> dict[str, Any]:
    """Version 1 -> 2 adds only optional fields: a version-1 search had no halving, and its
    phases were not measured (null in both)."""
    return tagged(Summary, old, 2)


Summary.UPGRADES = {0: _upgrade_0, 1: _upgrade_1}

OLD_PROCEDURE_LABEL = "procedure estimate (winning hyper-parameters re-used: optimistic)"


def status_counts(counts: dict[str, int]) -> list[dict[str, Any]]:
    """Row counts per status in the order every view lists statuses."""
    return [
        {"status": s, "label": rules.STATUS_WORDS.get(s, s), "n": int(counts[s])}
        for s in rules.ordered_statuses(counts)
    ]


def comparator_record(
    primary: str, n_tasks: int, level: float, declared: bool = True, holm: bool = False
) -> dict:
    """What the verdicts compare with, and what the intervals do (not) correct for. With
    `holm`, the verdicts come from the repeated nested cross-validation's differences at the
    Holm-adjusted level across the tasks; otherwise from the held-out split's paired
    bootstrap intervals, unadjusted (summaries before the nested cross-validation)."""
    secondary = [b for b in BASELINES if b != primary]
    label = BASELINE_LABELS.get(primary, primary)
    percent = f"{level:.0%}".replace("%", " %")
    tasks = f"{n_tasks} task{'s' if n_tasks != 1 else ''}"
    if holm:
        note = (
            f"verdicts: the network minus {label}, fold by fold over the outer folds of the "
            f"repeated nested cross-validation, at the Holm-adjusted 5 % level across the "
            f"{tasks}; every interval shown is unadjusted ({percent}, corrected resampled t); "
            f"the other baselines are secondary (no verdict)"
        )
    elif declared:
        note = (
            f"paired {percent} bootstrap intervals of the winner's RMSE minus each baseline's, on "
            f"the test subjects; unadjusted for the {tasks}; verdicts come from the primary "
            f"comparison ({label}) only"
        )
    else:
        note = (
            f"this sweep declared no comparator: each verdict is the winner against {label} "
            f"(the default later sweeps declare), by the paired {percent} bootstrap interval, "
            f"unadjusted for the {tasks}"
        )
    return {
        "declared": declared,
        "primary": {"key": primary, "label": label},
        "secondary": [{"key": b, "label": BASELINE_LABELS[b]} for b in secondary],
        "level": level,
        "adjustment": "holm" if holm else "none",
        "n_tasks": n_tasks,
        "note": note,
    }


def _old_comparator(old: Any, n_tasks: int, declared: bool) -> dict[str, Any]:
    if declared:
        record = comparator_record(
            str(old["primary"]), int(old.get("n_tasks", n_tasks)), float(old.get("level", 0.95))
        )
        record["adjustment"] = str(old.get("adjustment") or "none")
        record["note"] = str(old.get("note") or record["note"])
        return record
    return comparator_record("ridge", n_tasks, 0.95, declared=False)


def _old_task(
    task: str,
    entry: dict[str, Any],
    comparator: dict[str, Any],
    declared: bool,
    missing: list[str],
) -> dict[str, Any]:
    primary = comparator["primary"]["key"]
    winner = entry.get("winner") or {}
    baselines = entry.get("baselines") or {}
    comparisons = entry.get("comparisons") if isinstance(entry.get("comparisons"), dict) else {}
    out_baselines = [
        old_baseline(key, baselines[key], key == primary)
        for key in [
            *(b for b in BASELINES if b in baselines),
            *sorted(set(baselines) - set(BASELINES)),
        ]
    ]
    out_comparisons = [
        comparison_record(key, comparisons[key], key == primary)
        for key in sorted(comparisons, key=lambda k: (k != primary, _baseline_rank(k)))
        if isinstance(comparisons[key], dict)
    ]
    verdict = _old_verdict(entry.get("verdict"), out_comparisons, primary, declared)
    # Training N and per-group errors came in together: with `training`, no `per_group`
    # means the sweep had no groups file, not that the summary predates it.
    for key in (
        ("training", "intervals") if "training" in entry else ("training", "per_group", "intervals")
    ):
        if entry.get(key) is None:
            missing.append(f"tasks.{task}.{key}")
    if not comparisons:
        missing.append(f"tasks.{task}.comparisons")
    # Baselines chose their own signature from the summary that recorded it; before, each was
    # fitted on the winner's.
    if baselines and not any(isinstance(b, dict) and "signature" in b for b in baselines.values()):
        missing.append(f"tasks.{task}.baselines.signature")
    if entry.get("nested_estimate") is None and entry.get("procedure_estimate") is None:
        missing.append(f"tasks.{task}.nested_estimate")
    training = entry.get("training")
    return {
        "task": task,
        "item": TASK_ITEMS.get(task, ""),
        "score_range": list(SCORE_RANGES.get(task, (math.nan, math.nan))),
        "winner": {
            "trial_id": str(winner.get("trial_id") or ""),
            "signature": str(winner.get("signature") or ""),
            "sample": winner.get("sample"),
            "hyperparameters": winner.get("hyperparameters") or {},
            "best_epoch": winner.get("best_epoch"),
            "selection": winner.get("selection") or winner.get("validation") or {},
            "checkpoint_uri": str(winner.get("checkpoint_uri") or ""),
        },
        "test": old_scores(entry.get("test")) if entry.get("test") else None,
        "baselines": out_baselines,
        "comparisons": out_comparisons,
        "verdict": verdict,
        "training": None
        if not isinstance(training, dict)
        else {
            "n_train": training["n_train"],
            "n_test": training["n_test"],
            "outcome_train": training["outcome"]["train"],
            "outcome_test": training["outcome"]["test"],
        },
        "per_group": group_list(entry.get("per_group")),
        "intervals": entry.get("intervals"),
        "nested_estimate": _old_estimate(entry),
    }


def _baseline_rank(key: str) -> tuple[int, str]:
    return (BASELINES.index(key) if key in BASELINES else len(BASELINES), key)


def old_scores(metrics: dict[str, Any]) -> dict[str, Any]:
    """Scores out of an older flat metrics dict. Older summaries wrote a constant
    prediction's calibration as 0 and its Pearson r as 0: undefined, so null."""
    keys = Scores.model_fields
    out = {k: v for k, v in metrics.items() if k in keys}
    out.setdefault("n", 0)
    # A constant prediction: its slope written as 0 (oldest) or null, its r as 0.
    constant = metrics.get("calibration_slope") in (0, None) and "calibration_slope" in metrics
    if constant and metrics.get("pearson_r") == 0:
        out["calibration_slope"] = out["calibration_intercept"] = out["pearson_r"] = None
    return out


def old_baseline(key: str, fitted: dict[str, Any], primary: bool) -> dict[str, Any]:
    scores = old_scores(fitted)
    settings = {
        k: v
        for k, v in fitted.items()
        if k not in Scores.model_fields and k not in ("signature", "cv_rmse")
    }
    return {
        "key": key,
        "label": BASELINE_LABELS.get(key, key),
        "primary": primary,
        "signature": fitted.get("signature"),
        "cv_rmse": fitted.get("cv_rmse"),
        "settings": settings,
        "test": scores,
    }


def comparison_record(key: str, paired: dict[str, Any], primary: bool) -> dict[str, Any]:
    """One paired comparison, with its result and words (`rules.paired_result`)."""
    label = BASELINE_LABELS.get(key, key)
    result = rules.paired_result(paired.get("better"), paired.get("worse"))
    return {
        "baseline": key,
        "label": label,
        "primary": primary,
        "rmse_diff": paired.get("rmse_diff"),
        "rmse_diff_ci": paired.get("rmse_diff_ci"),
        "mae_diff_ci": paired.get("mae_diff_ci"),
        "result": result,
        "words": rules.result_words(result, label),
    }


def verdict_record(comparison: dict[str, Any], source: str) -> dict[str, Any]:
    return {
        "baseline": comparison["baseline"],
        "label": comparison["label"],
        "result": comparison["result"],
        "words": comparison["words"],
        "rmse_diff": comparison["rmse_diff"],
        "rmse_diff_ci": comparison["rmse_diff_ci"],
        "source": source,
    }


def _old_verdict(
    old: Any, comparisons: list[dict[str, Any]], primary: str, declared: bool
) -> dict[str, Any] | None:
    chosen = next((c for c in comparisons if c["baseline"] == primary), None)
    if chosen is None:
        return None
    if declared:
        return verdict_record(chosen, "the declared comparator's paired interval")
    return verdict_record(
        chosen, f"{chosen['label']}'s paired comparison: this sweep declared no comparator"
    )


def group_list(per_group: Any) -> list[dict[str, Any]] | None:
    """{group: errors} as a list in GROUP_ORDER."""
    if not isinstance(per_group, dict):
        return None
    return [{"group": g, **per_group[g]} for g in ordered_groups(per_group)]


def _old_estimate(entry: dict[str, Any]) -> dict[str, Any] | None:
    nested = entry.get("nested_estimate")
    if isinstance(nested, dict):
        return {
            "kind": "nested",
            "label": str(nested.get("label") or "nested estimate"),
            "repeats": int(nested.get("repeats") or 0),
            "search": nested.get("search"),
            "models": estimate_models(nested.get("models") or {}),
            "ran_on": [str(r) for r in nested.get("ran_on") or []],
        }
    old = entry.get("procedure_estimate")
    if isinstance(old, dict):
        return {
            "kind": "procedure",
            "label": OLD_PROCEDURE_LABEL,
            "repeats": int(old.get("repeats") or 0),
            "models": estimate_models({"network": old}),
            "ran_on": [str(r) for r in old.get("ran_on") or []],
        }
    return None


def estimate_models(models: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The estimate's models, the network first, then the baselines in order."""
    keys = sorted(models, key=lambda k: (k != "network", _baseline_rank(k)))
    return [
        {
            "key": k,
            "label": NETWORK_LABEL if k == "network" else BASELINE_LABELS.get(k, k),
            **{f: models[k].get(f) for f in ("rmse_mean", "rmse_sd")},
            "rmse_values": list(models[k].get("rmse_values") or []),
            "signatures_chosen": list(models[k].get("signatures_chosen") or []),
        }
        for k in keys
    ]


def _old_subtotal(old: Any, missing: list[str], newest: bool) -> dict[str, Any] | None:
    if not isinstance(old, dict) or not old.get("tasks"):
        missing.append("subtotal")
        return None
    tasks = [str(t) for t in old["tasks"]]
    scored = old.get("rmse") is not None
    value_range = old.get("range") or [
        sum(SCORE_RANGES[t][0] for t in tasks if t in SCORE_RANGES),
        sum(SCORE_RANGES[t][1] for t in tasks if t in SCORE_RANGES),
    ]
    if scored and "calibration_slope" not in old:
        missing += ["subtotal.test.calibration_slope", "subtotal.test.calibration_intercept"]
    for key in ("intervals",) if newest else ("intervals", "per_group"):
        if old.get(key) is None:
            missing.append(f"subtotal.{key}")
    return {
        "tasks": tasks,
        "n": int(old.get("n") or 0),
        "range": value_range,
        "all_five_tasks": bool(old.get("all_five_tasks", len(tasks) == 5)),
        "test": old_scores(old) if scored else None,
        "intervals": old.get("intervals"),
        "per_group": group_list(old.get("per_group")),
        "dementia_auc": old.get("dementia_auc"),
    }


def _old_synthetic(old: dict[str, Any]) -> tuple[bool | None, str | None]:
    if isinstance(old.get("synthetic"), bool):
        return old["synthetic"], "summary.json"
    auc = (old.get("subtotal") or {}).get("dementia_auc")
    if isinstance(auc, dict) and isinstance(auc.get("synthetic"), bool):
        return auc["synthetic"], "the groups file's folder (SYNTHETIC.txt)"
    return None, None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
