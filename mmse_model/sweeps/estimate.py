"""The headline estimate: the repeated nested cross-validation's outer folds, in numbers.

Every outer fold (repeat r, fold k; mmse_model/sweeps/nested.py) predicted its subjects with
the network its own selection chose and with every baseline, each trained and chosen on the
other folds only. Here each fold is scored (in points, and on the item's scale), and each
metric and each paired difference (network minus a baseline, fold by fold) becomes a mean
over the R x K folds with its corrected resampled t interval and p-value
(mmse_model/evaluation/cv_estimate.py). The subtotal is scored the same way from each
subject's summed predictions, and the dementia AUC from them where groups are given.
Verdicts: the declared comparator's RMSE difference, at the Holm-adjusted level across the
tasks (`holm_verdicts`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmse_model.core.domain import BASELINE_LABELS, BASELINES, NETWORK_LABEL
from mmse_model.evaluation.cv_estimate import (
    INTERVAL_LEVEL,
    METRICS,
    SCALE_METRICS,
    auc,
    corrected_t,
    fold_metrics,
    holm,
)
from mmse_model.sweeps import rules
from mmse_model.sweeps.looks import digest
from mmse_model.sweeps.nested import NETWORK, NestedSearch, OuterRepeat, RepeatResult

METHOD = "repeated nested cross-validation"
INTERVAL_METHOD = (
    "corrected resampled t over the outer folds (Nadeau & Bengio 2003), 95 %, unadjusted"
)
ALPHA = 1 - INTERVAL_LEVEL


def what_it_estimates(search: NestedSearch, signatures: int | None) -> str:
    """The sentence every output gives the estimate (`signatures` None: each task's)."""
    fraction = f"{search.outer_folds - 1}/{search.outer_folds}"
    count = "each task's" if signatures is None else str(signatures)
    return (
        f"the expected error of the whole procedure (a search of {search.describe(count)}, "
        f"then the best by validation loss) trained on {fraction} of a cohort like this "
        "one; the shipped models learnt from every subject with the sweep's full search"
    )


@dataclass(frozen=True)
class Design:
    """How the outer folds were made, as an estimate states it."""

    method: str
    repeats: int
    outer_folds: int
    what: str  # what it estimates, in words


def nested_design(search: NestedSearch, signatures: int | None) -> Design:
    return Design(METHOD, search.repeats, search.outer_folds, what_it_estimates(search, signatures))


def task_estimate(
    search: NestedSearch,
    repeats: Sequence[OuterRepeat],
    results: Sequence[RepeatResult],
    score_range: tuple[float, float],
    primary: str,
    design: Design | None = None,
) -> dict[str, Any]:
    """A task's `estimate` (summary_schema.Estimate fields, the verdict left to Holm) over
    the outer folds of `design` (the nested cross-validation's by default)."""
    folds = [_scored(r, score_range, item_scale=True) for r in results]
    estimate = _estimate(folds, _test_fraction(results), primary, item_scale=True)
    signatures = len(repeats[0].signatures)
    design = design or nested_design(search, signatures)
    chosen = {
        name: Counter(r.models[name].signature for r in results) for name in results[0].models
    }
    for scores in [estimate["network"], *estimate["baselines"]]:
        scores["signatures_chosen"] = dict(sorted(chosen[scores["key"]].items()))
    return {
        "method": design.method,
        "what": design.what,
        "interval": INTERVAL_METHOD,
        "n_subjects": len({s for r in results for s in r.subjects}),
        "repeats": design.repeats,
        "outer_folds": design.outer_folds,
        "search": {
            "samples": search.samples_per_repeat,
            "signatures": signatures,
            "folds": search.base.split.folds,
            "halving": search.halving.to_dict() if search.halving else None,
        },
        **estimate,
        "ran_on": sorted({r.ran_on for r in results}),
        "partition": digest([list(r.subjects) for r in results]),
    }


def subtotal_estimate(
    search: NestedSearch,
    per_task: dict[str, Sequence[RepeatResult]],
    score_ranges: dict[str, tuple[float, float]],
    primary: str,
    groups: dict[str, str] | None = None,
    synthetic: bool = False,
    design: Design | None = None,
) -> dict[str, Any] | None:
    """The subtotal's `estimate`: per outer fold, each subject's predictions summed over the
    tasks (every model its own per task), scored in points; with groups, the AUC of the
    summed prediction for the dementia group, network and comparator and their difference."""
    tasks = sorted(per_task)
    if not tasks:
        return None
    design = design or nested_design(search, None)
    score_range = (sum(score_ranges[t][0] for t in tasks), sum(score_ranges[t][1] for t in tasks))
    folds, aucs = [], []
    for fold in zip(*(per_task[t] for t in tasks)):
        summed = summed_fold(fold)
        if summed is None:
            continue
        subjects, truth, predictions = summed
        folds.append(
            {
                name: fold_metrics(truth, predicted, score_range, item_scale=False)
                for name, predicted in predictions.items()
            }
        )
        if groups:
            known = [i for i, s in enumerate(subjects) if groups.get(s)]
            positive = np.array([groups[subjects[i]] == "dementia" for i in known], dtype=bool)
            aucs.append(
                {name: auc(positive, -predicted[known]) for name, predicted in predictions.items()}
            )
    if not folds:
        return None
    results = per_task[tasks[0]]
    estimate = _estimate(folds, _test_fraction(results), primary, item_scale=False)
    out = {
        "method": design.method,
        "what": f"the sum of the tasks {'+'.join(tasks)}: {design.what}",
        "interval": INTERVAL_METHOD,
        "n_subjects": len({s for r in results for s in r.subjects}),
        "repeats": design.repeats,
        "outer_folds": design.outer_folds,
        "search": None,
        **estimate,
        "ran_on": [],
    }
    if groups and aucs:
        fraction = _test_fraction(results)
        network = [a[NETWORK] for a in aucs]
        comparator = [a.get(primary) for a in aucs]
        difference = [
            None if a is None or b is None else a - b for a, b in zip(network, comparator)
        ]
        labelled = [s for r in results for s in r.subjects if groups.get(s)]
        dementia = sum(groups[s] == "dementia" for s in set(labelled))
        out["dementia_auc"] = {
            "synthetic": synthetic,
            "comparator": primary,
            "comparator_label": BASELINE_LABELS.get(primary, primary),
            "n_dementia": dementia,
            "n_other": len(set(labelled)) - dementia,
            "network": _measure(corrected_t(network, fraction)),
            "baseline": _measure(corrected_t(comparator, fraction)),
            "difference": _measure(corrected_t(difference, fraction)),
            "p_value": corrected_t(difference, fraction).p_value,
        }
    return out


def holm_verdicts(estimates: dict[str, dict[str, Any]], primary: str) -> dict[str, dict[str, Any]]:
    """Each task's verdict from its primary difference's RMSE at the Holm-adjusted level
    across the tasks (`p_holm` written into that difference); better or worse where the
    adjusted p-value is below 0.05, in the direction of the mean difference."""
    p_values = {
        task: next((d["p_value"] for d in e["differences"] if d["primary"]), None)
        for task, e in estimates.items()
    }
    adjusted = holm(p_values)
    verdicts = {}
    for task, estimate in estimates.items():
        difference = next((d for d in estimate["differences"] if d["primary"]), None)
        if difference is None:
            continue
        p_holm = adjusted[task]
        difference["p_holm"] = p_holm
        mean = (difference["rmse"] or {}).get("value")
        if p_holm is None or mean is None:
            result = None
        elif p_holm < ALPHA:
            result = rules.BETTER if mean < 0 else rules.WORSE
        else:
            result = rules.LEVEL
        difference["result"] = result
        difference["words"] = rules.result_words(result, difference["label"])
        verdicts[task] = {
            "baseline": difference["baseline"],
            "label": difference["label"],
            "result": result,
            "words": difference["words"],
            "rmse_diff": mean,
            "rmse_diff_ci": (difference["rmse"] or {}).get("ci"),
            "source": (
                f"the declared comparator's RMSE difference over the outer folds, Holm-adjusted "
                f"across {len(estimates)} task{'s' if len(estimates) != 1 else ''} "
                f"(adjusted p = {p_holm:.3g})"
                if p_holm is not None
                else "the declared comparator's RMSE difference: no p-value (one fold)"
            ),
        }
    return verdicts


# --- per fold ----------------------------------------------------------------------------------


def _scored(
    result: RepeatResult, score_range: tuple[float, float], item_scale: bool
) -> dict[str, dict[str, float | None]]:
    truth = np.array(result.y_true)
    return {
        name: fold_metrics(truth, np.array(predicted), score_range, item_scale)
        for name, predicted in result.predictions.items()
    }


def summed_fold(
    fold: Sequence[RepeatResult],
) -> tuple[list[str], np.ndarray, dict[str, np.ndarray]] | None:
    """One outer fold's subjects present in every task, their true and predicted sums."""
    common = set(fold[0].subjects).intersection(*(set(r.subjects) for r in fold[1:]))
    subjects = sorted(common)
    if len(subjects) < 2:
        return None
    truth = np.zeros(len(subjects))
    models = list(fold[0].predictions)
    predictions = {name: np.zeros(len(subjects)) for name in models}
    for result in fold:
        row = {s: i for i, s in enumerate(result.subjects)}
        index = np.array([row[s] for s in subjects])
        truth += np.array(result.y_true)[index]
        for name in models:
            predictions[name] += np.array(result.predictions[name])[index]
    return subjects, truth, predictions


def _test_fraction(results: Sequence[RepeatResult]) -> float:
    """n_test / (n_test + n_train) of a fold, averaged over the folds."""
    return float(np.mean([len(r.subjects) / (len(r.subjects) + r.n_train) for r in results]))


# --- over the folds ----------------------------------------------------------------------------


def _estimate(
    folds: list[dict[str, dict[str, float | None]]],
    test_fraction: float,
    primary: str,
    item_scale: bool,
) -> dict[str, Any]:
    metrics = METRICS if item_scale else tuple(m for m in METRICS if m not in SCALE_METRICS)
    models = [m for m in folds[0] if m == NETWORK] + [m for m in BASELINES if m in folds[0]]

    def scores(name: str) -> dict[str, Any]:
        return {
            "key": name,
            "label": NETWORK_LABEL if name == NETWORK else BASELINE_LABELS.get(name, name),
            **{
                metric: _measure(
                    corrected_t([f[name][metric] for f in folds], test_fraction), metric
                )
                for metric in metrics
            },
            "fold_rmse": [f[name]["rmse"] for f in folds],
        }

    differences = []
    for name in sorted(models[1:], key=lambda k: (k != primary, BASELINES.index(k))):
        by_metric = {}
        for metric in metrics:
            values = [_minus(f[NETWORK][metric], f[name][metric]) for f in folds]
            by_metric[metric] = corrected_t(values, test_fraction)
        label = BASELINE_LABELS.get(name, name)
        p_value = by_metric["rmse"].p_value
        result = _unadjusted_result(by_metric["rmse"])
        differences.append(
            {
                "baseline": name,
                "label": label,
                "primary": name == primary,
                **{metric: _measure(value) for metric, value in by_metric.items()},
                "p_value": p_value,
                "p_holm": None,
                "result": result,
                "words": rules.result_words(result, label),
            }
        )
    return {
        "network": scores(NETWORK),
        "baselines": [scores(name) for name in models[1:]],
        "differences": differences,
    }


def _unadjusted_result(interval) -> str | None:
    """A secondary comparison's result: its own unadjusted interval excluding 0 or not."""
    if interval.low is None or interval.high is None:
        return None
    if interval.high < 0:
        return rules.BETTER
    if interval.low > 0:
        return rules.WORSE
    return rules.LEVEL


# What a metric can be: an interval is clipped to it (a t interval of a proportion near 1
# would reach past it).
BOUNDS = {
    "rmse": (0.0, np.inf),
    "mae": (0.0, np.inf),
    "exact": (0.0, 1.0),
    "within_1": (0.0, 1.0),
    "kappa": (-1.0, 1.0),
    "r2": (-np.inf, 1.0),
}


def _measure(interval, metric: str = "") -> dict[str, Any]:
    low, high = BOUNDS.get(metric, (-np.inf, np.inf))
    ci = None if interval.low is None else [max(low, interval.low), min(high, interval.high)]
    return {"value": interval.mean, "ci": ci, "folds": interval.folds}


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b
