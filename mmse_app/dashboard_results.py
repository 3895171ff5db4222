"""The held-out test results a sweep's page shows, read from its `summary.json`.

Every key a newer summary adds (the declared `comparator` and each task's `verdict`, the
`nested_estimate`, `training`, `per_group`, `synthetic`, `excluded_recordings`, the
subtotal's calibration) is read where it is and degrades to "not recorded" (None) where
an older summary lacks it; a few things an older summary does not say are taken from
what it does (the data root's `dataset.json`, `test_predictions.csv`), and the page says so.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from mmse_model.core import storage
from mmse_model.core.domain import SCORE_RANGES
from mmse_model.core.errors import InputError
from mmse_model.evaluation.metrics import calibration
from mmse_model.sweeps import rules

TEST_KEYS = ("rmse", "mae", "r2", "pearson_r", "calibration_slope", "calibration_intercept", "n")
BASELINES = {"train_mean": "train mean", "ridge": "Ridge", "hist_gradient_boosting": "HGB"}
DEFAULT_PRIMARY = "ridge"  # what a sweep that declared no comparator is read against
VERDICTS = {"better": "better", "worse": "worse", "no difference shown": "level", "level": "level"}
PROCEDURE_LABEL = "procedure estimate (winning hyper-parameters re-used: optimistic)"
DATASET_JSON, BUILD_REPORT = "dataset.json", "build_report.csv"


def baseline_label(key: str) -> str:
    return BASELINES.get(key, key)


# --- the declared comparison -----------------------------------------------------------------


def comparator(summary: dict[str, Any], n_tasks: int) -> dict[str, Any]:
    """The comparison every verdict comes from: the one the sweep declared before it ran,
    else (an older summary) Ridge's, said to be undeclared."""
    declared = summary.get("comparator")
    if isinstance(declared, dict) and declared.get("primary"):
        primary = str(declared["primary"])
        secondary = [str(b) for b in declared.get("secondary") or [] if b != primary]
        return {
            "declared": True,
            "primary": primary,
            "primary_label": baseline_label(primary),
            "secondary": secondary,
            "level": declared.get("level", 0.95),
            "adjustment": str(declared.get("adjustment") or "none"),
            "n_tasks": declared.get("n_tasks", n_tasks),
            "note": declared.get("note"),
        }
    return {
        "declared": False,
        "primary": DEFAULT_PRIMARY,
        "primary_label": baseline_label(DEFAULT_PRIMARY),
        "secondary": [b for b in BASELINES if b != DEFAULT_PRIMARY],
        "level": 0.95,
        "adjustment": "none",
        "n_tasks": n_tasks,
        "note": None,
    }


def _paired_verdict(paired: dict[str, Any]) -> str | None:
    """better / worse where the paired interval excludes 0, level where it does not; no
    verdict without a paired interval (two test RMSEs alone never say "better")."""
    if not isinstance(paired.get("better"), bool):
        return None
    return "better" if paired["better"] else "worse" if paired.get("worse") is True else "level"


def task_verdict(entry: dict[str, Any], comp: dict[str, Any]) -> dict[str, Any]:
    """The task's verdict against the primary baseline only: the summary's `verdict`, else
    read off the primary's paired comparison."""
    comparisons = entry.get("comparisons") if isinstance(entry.get("comparisons"), dict) else {}
    recorded = entry.get("verdict")
    if isinstance(recorded, dict) and recorded.get("baseline"):
        baseline = str(recorded["baseline"])
        return {
            "baseline": baseline,
            "label": baseline_label(baseline),
            "result": VERDICTS.get(str(recorded.get("result"))),
            "rmse_diff": recorded.get("rmse_diff"),
            "rmse_diff_ci": recorded.get("rmse_diff_ci"),
            "source": "summary.json (declared comparator)" if comp["declared"] else "summary.json",
        }
    baseline = comp["primary"]
    paired = comparisons.get(baseline) if isinstance(comparisons.get(baseline), dict) else {}
    return {
        "baseline": baseline,
        "label": baseline_label(baseline),
        "result": _paired_verdict(paired),
        "rmse_diff": paired.get("rmse_diff"),
        "rmse_diff_ci": paired.get("rmse_diff_ci"),
        "source": (
            "its paired comparison"
            if comp["declared"]
            else "Ridge's paired comparison: this sweep declared no comparator"
        ),
    }


def comparison(
    task: str, entry: dict[str, Any], trials: list[dict[str, Any]], comp: dict[str, Any]
) -> dict[str, Any]:
    """The winner against the baselines on the held-out test subjects (points)."""
    winner = entry.get("winner") or {}
    models = [
        {
            "key": "winner",
            "label": "network (winner)",
            "metrics": test_metrics(entry.get("test") or {}),
        }
    ]
    baselines = entry.get("baselines") or {}
    for key in [
        *(k for k in BASELINES if k in baselines),
        *sorted(k for k in baselines if k not in BASELINES),
    ]:
        fitted = baselines[key] or {}
        models.append(
            {
                "key": key,
                "label": baseline_label(key),
                "metrics": test_metrics(fitted),
                "primary": key == comp["primary"],
                "signature": fitted.get("signature"),
                "cv_rmse": fitted.get("cv_rmse"),
            }
        )
    comparisons = entry.get("comparisons") if isinstance(entry.get("comparisons"), dict) else {}
    verdict = task_verdict(entry, comp)
    secondary = [
        {
            "baseline": k,
            "label": baseline_label(k),
            "result": _paired_verdict(v),
            "rmse_diff": v.get("rmse_diff"),
            "rmse_diff_ci": v.get("rmse_diff_ci"),
        }
        for k, v in comparisons.items()
        if isinstance(v, dict) and k != verdict["baseline"]
    ]
    names = {t["trial_id"]: t["name"] for t in trials}
    return {
        "task": task,
        "n": (entry.get("test") or {}).get("n"),
        "winner": {
            "signature": winner.get("signature"),
            "trial_id": winner.get("trial_id"),
            "name": names.get(winner.get("trial_id")),
            "sample": winner.get("sample"),
            "best_epoch": winner.get("best_epoch"),
            "hyperparameters": winner.get("hyperparameters") or {},
            "selection": winner.get("selection") or winner.get("validation") or {},
        },
        "models": models,
        "verdict": verdict["result"],
        "verdict_detail": verdict,
        "secondary": secondary,
        "comparisons": {
            k: {
                "rmse_diff": v.get("rmse_diff"),
                "rmse_diff_ci": v.get("rmse_diff_ci"),
                "better": v.get("better"),
                "worse": v.get("worse"),
                "primary": v.get("primary", k == verdict["baseline"]),
            }
            for k, v in comparisons.items()
            if isinstance(v, dict)
        },
        "nested": nested_estimate(entry),
        "intervals": _dict_or_none(entry.get("intervals")),
        "training": _dict_or_none(entry.get("training")),
        "per_group": _dict_or_none(entry.get("per_group")),
    }


def test_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    out = {k: metrics.get(k) for k in TEST_KEYS if k in metrics}
    for key in TEST_KEYS:
        ci = metrics.get(f"{key}_ci")
        if isinstance(ci, (list, tuple)) and len(ci) == 2:
            out[f"{key}_ci"] = [ci[0], ci[1]]
    # A constant prediction has no calibration slope. Older summaries wrote 0 for it; a
    # fitted slope of exactly 0 with exactly no correlation is that constant, not a fit.
    if out.get("calibration_slope") == 0 and metrics.get("pearson_r") == 0:
        out["calibration_slope"] = out["calibration_intercept"] = None
    return out


def nested_estimate(entry: dict[str, Any]) -> dict[str, Any] | None:
    """The estimate of the whole procedure on fresh splits, labelled as what it is: the
    nested one (selection re-run per outer split), or an older summary's procedure
    estimate (the sweep's winning hyper-parameters re-used, so optimistic)."""
    nested = entry.get("nested_estimate")
    if isinstance(nested, dict):
        models = {
            str(k): _spread(v)
            for k, v in (nested.get("models") or {}).items()
            if isinstance(v, dict)
        }
        return {
            "kind": "nested",
            "label": nested.get("label") or "nested estimate",
            "repeats": nested.get("repeats"),
            "search": _dict_or_none(nested.get("search")),
            "models": models,
            "ran_on": nested.get("ran_on"),
        }
    old = entry.get("procedure_estimate")
    if isinstance(old, dict):
        return {
            "kind": "procedure",
            "label": PROCEDURE_LABEL,
            "repeats": old.get("repeats"),
            "search": None,
            "models": {"network": _spread(old)},
            "ran_on": old.get("ran_on"),
        }
    return None


def _spread(values: dict[str, Any]) -> dict[str, Any]:
    return {k: values.get(k) for k in ("rmse_mean", "rmse_sd", "rmse_values", "signatures_chosen")}


# --- the subtotal --------------------------------------------------------------------------------


def subtotal(
    summary: dict[str, Any], predictions: list[dict[str, Any]] | None
) -> dict[str, Any] | None:
    """The predicted subtotal (sum of the tasks' scores) with its intervals, calibration,
    AUC for a groups file and per-group error, as far as the summary records them."""
    recorded = summary.get("subtotal")
    if not isinstance(recorded, dict) or not any(
        k in recorded for k in ("rmse", "tasks", "dementia_auc")
    ):
        return None
    tasks = [str(t) for t in recorded.get("tasks") or []]
    value_range = recorded.get("range")
    if (
        not (isinstance(value_range, list) and len(value_range) == 2)
        and tasks
        and all(t in SCORE_RANGES for t in tasks)
    ):
        value_range = [
            sum(SCORE_RANGES[t][0] for t in tasks),
            sum(SCORE_RANGES[t][1] for t in tasks),
        ]
    points = _subtotal_points(summary, predictions, tasks)
    slope, intercept, source = None, None, None
    if "calibration_slope" in recorded:  # recorded, null where it is undefined
        slope, intercept, source = (
            recorded.get("calibration_slope"),
            recorded.get("calibration_intercept"),
            "summary.json",
        )
    elif points and len(points["true"]) >= 2:
        slope, intercept = fitted_calibration(points["true"], points["predicted"])
        source = "fitted here from test_predictions.csv"
    auc = recorded.get("dementia_auc")
    return {
        "metrics": test_metrics(recorded),
        "tasks": tasks,
        "range": value_range,
        "all_five_tasks": recorded.get("all_five_tasks"),
        "calibration": {"slope": slope, "intercept": intercept, "source": source, **(points or {})},
        "intervals": _dict_or_none(recorded.get("intervals")),
        "per_group": _dict_or_none(recorded.get("per_group")),
        "dementia_auc": dict(auc) if isinstance(auc, dict) else None,
    }


def _subtotal_points(summary, predictions, tasks) -> dict[str, Any] | None:
    """Per test subject with a prediction on every subtotal task: the summed true and
    predicted scores (each task's winner, from test_predictions.csv)."""
    if not predictions or not tasks:
        return None
    winners = {
        t: ((summary.get("tasks") or {}).get(t) or {}).get("winner", {}).get("signature")
        for t in tasks
    }
    per_subject: dict[str, dict[str, tuple[float, float]]] = {}
    for p in predictions:
        if p["task"] in winners and (
            not p["signature"] or not winners[p["task"]] or p["signature"] == winners[p["task"]]
        ):
            per_subject.setdefault(p["subject_id"], {})[p["task"]] = (p["true"], p["predicted"])
    subjects = sorted(s for s, scores in per_subject.items() if len(scores) == len(tasks))
    if not subjects:
        return None
    return {
        "subject_id": subjects,
        "n": len(subjects),
        "true": [sum(per_subject[s][t][0] for t in tasks) for s in subjects],
        "predicted": [sum(per_subject[s][t][1] for t in tasks) for s in subjects],
    }


def fitted_calibration(
    true: list[float], predicted: list[float]
) -> tuple[float | None, float | None]:
    """`metrics.calibration`'s line; undefined (None) for a constant prediction."""
    if max(predicted) - min(predicted) <= 1e-9 * max(1.0, max(abs(v) for v in predicted)):
        return None, None
    line = calibration(true, predicted)
    return line["calibration_slope"], line["calibration_intercept"]


# --- what the cohort was --------------------------------------------------------------------------


def synthetic(summary: dict[str, Any], data_root: str | None) -> dict[str, Any]:
    """Whether the data are SYNTHETIC (simulated subjects), and who says so: the summary,
    else the data root's dataset.json, else the dementia AUC's groups file."""
    if isinstance(summary.get("synthetic"), bool):
        return {"value": summary["synthetic"], "source": "summary.json"}
    manifest = _read_json(data_root, DATASET_JSON)
    if isinstance(manifest, dict) and isinstance(manifest.get("synthetic"), bool):
        return {"value": manifest["synthetic"], "source": "the data root's dataset.json"}
    auc = (
        (summary.get("subtotal") or {}).get("dementia_auc")
        if isinstance(summary.get("subtotal"), dict)
        else None
    )
    if isinstance(auc, dict) and isinstance(auc.get("synthetic"), bool):
        return {"value": auc["synthetic"], "source": "the groups file's folder (SYNTHETIC.txt)"}
    return {"value": None, "source": None}


def excluded_recordings(summary: dict[str, Any], data_root: str | None) -> dict[str, Any]:
    """How many recordings the dataset build skipped: the summary's count, else the rows of
    the data root's build_report.csv, else not recorded."""
    if "excluded_recordings" in summary:
        value = summary["excluded_recordings"]
        return {"value": value if rules.is_finite_number(value) else None, "source": "summary.json"}
    text = _read_text(data_root, BUILD_REPORT)
    if text is not None:
        try:
            return {
                "value": sum(1 for _ in csv.DictReader(io.StringIO(text))),
                "source": "the data root's build_report.csv (one row per skipped recording or subject)",
            }
        except csv.Error:
            pass
    return {"value": None, "source": None}


def _read_text(root: str | None, name: str) -> str | None:
    """A small file of the data root, or None: a data root that is gone, unreachable or
    never was here leaves the fact unrecorded, it does not stop the page."""
    if not root:
        return None
    try:
        return storage.read_text(storage.join(root, name))
    except (OSError, InputError, storage.StorageUnavailable, UnicodeDecodeError, ValueError):
        return None


def _read_json(root: str | None, name: str) -> Any:
    text = _read_text(root, name)
    try:
        return json.loads(text) if text is not None else None
    except json.JSONDecodeError:
        return None


def _dict_or_none(value: Any) -> dict[str, Any] | None:
    return dict(value) if isinstance(value, dict) else None
