"""`mmse demo`: the whole pipeline on a SYNTHETIC cohort with a local Ray instance.

Synthetic cohort -> RQA datasets (Ray tasks) -> ASHA sweep (Ray Tune + Train) -> summary and
model bundle -> predictions for the held-out subjects from the bundle, with the measured
coverage of their intervals.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from mmse_model.core.errors import InputError
from mmse_model.sweeps.config import load_sweep_config

DEMO_SIGNATURES = ("m2_tau1_eps0.055_lmin2", "m3_tau3_eps0.08_lmin3")
DEMO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"


def run_demo(out: Path, subjects: int = 300) -> dict:
    from ray.tune import Tuner

    from mmse_app.dashboard import write_after_sweep
    from mmse_model.features.build import BuildWarning, build_datasets
    from mmse_model.synth.cohort import synthesize
    from ray_jobs.build_datasets import run_on_ray
    from ray_jobs.sweep import run_sweep
    from ray_jobs.train import connect

    out = out.resolve()
    sweep = load_sweep_config(DEMO_CONFIG, str(out / "data"), str(out / "runs"))
    experiment = out / "runs" / sweep.name
    if _finished(experiment / "summary.json"):
        raise InputError(
            f"{out}: already holds a finished demo ({experiment}); remove the folder or "
            "choose another --out"
        )
    if subjects < 1:
        raise InputError(f"--subjects {subjects}: expected a positive number")
    cohort = out / "cohort"
    if not (cohort / "labels.csv").exists():
        synthesize(cohort, n_subjects=subjects, seed=0)
    print(f"demo 1/3: SYNTHETIC cohort of {subjects} subjects in {cohort}", flush=True)
    connect(None, sweep.base_config())  # one local Ray instance for the build and the sweep
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BuildWarning)  # skips are listed in build_report.csv
        report = build_datasets(
            cohort / "recordings",
            cohort / "labels.csv",
            list(DEMO_SIGNATURES),
            out / "data",
            "trajectory",
            run_on_ray,
        )
    print(
        f"demo 2/3: {len(report.written)} RQA datasets in {out / 'data'} "
        f"({len(report.skips)} recordings skipped, see {report.report_path})",
        flush=True,
    )
    # A demo stopped during its sweep (Ctrl-C) continues that sweep when run again.
    resume = Tuner.can_restore(str(experiment))
    print(
        f"demo 3/3: ASHA sweep ({sweep.samples} samples per task"
        f"{'; continuing the interrupted one' if resume else ''})",
        flush=True,
    )
    # The SYNTHETIC cohort knows its groups: the summary gives the subtotal's dementia AUC.
    evaluation = sweep.evaluation.model_copy(update={"groups_file": str(cohort / "labels.csv")})
    from ray_jobs.guard import SweepTrialsFailed

    try:
        summary = run_sweep(sweep.model_copy(update={"evaluation": evaluation}), resume=resume)
    except SweepTrialsFailed:
        write_after_sweep(str(experiment))  # the page of what finished; a rerun retries the rest
        raise
    write_after_sweep(str(experiment))
    print(predict_held_out(experiment, out / "data", out / "held_out_predictions.csv"), flush=True)
    return summary


def _finished(summary: Path) -> bool:
    """A demo whose sweep ended with every trial done (one with failed trials runs them again)."""
    import json

    if not summary.exists():
        return False
    try:
        return not json.loads(summary.read_text()).get("failed_trials")
    except (OSError, ValueError):
        return True  # unreadable: leave it to the user rather than overwrite it


def predict_held_out(experiment: Path, data_root: Path, out: Path) -> str:
    """Apply the sweep's bundle to its held-out test subjects, as a user would apply it to
    new ones (`mmse predict --bundle`), and measure how often their true sub-scores (known
    here: the cohort is SYNTHETIC) fall in the predicted intervals."""
    import csv

    import numpy as np

    from mmse_model.bundle.apply import features_for, load_bundle, predict, write_predictions
    from mmse_model.evaluation.conformal import coverage, format_coverage

    bundle = load_bundle(experiment / "bundle")
    truth: dict[tuple[str, str], float] = {}
    with open(experiment / "test_predictions.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            truth[(row["task"], row["subject_id"])] = float(row["true"])
    held_out = {subject for _, subject in truth}
    inputs = {
        task: features.subset(held_out)
        for task, features in features_for(bundle, data_root).items()
    }
    predictions = predict(bundle, inputs)
    write_predictions(predictions, out)
    lines = [
        (
            f"demo: predictions for the {len(predictions.subject_ids)} held-out subjects from the "
            f"bundle in {out}; SYNTHETIC cohort, measured coverage of the "
            f"{bundle.manifest.interval_level:.0%} intervals:"
        )
    ]
    for task in [*bundle.tasks, *(["subtotal"] if "subtotal" in predictions.columns else [])]:
        rows = [
            i
            for i, s in enumerate(predictions.subject_ids)
            if predictions.values[task][i] is not None
            and (task == "subtotal" or (task, s) in truth)
        ]
        y = np.array(
            [
                sum(truth[(t, predictions.subject_ids[i])] for t in bundle.tasks)
                if task == "subtotal"
                else truth[(task, predictions.subject_ids[i])]
                for i in rows
            ]
        )
        lower = np.array([predictions.values[f"{task}_lo"][i] for i in rows])
        upper = np.array([predictions.values[f"{task}_hi"][i] for i in rows])
        lines.append(
            f"  {task}: "
            f"{format_coverage(coverage(y, lower, upper, bundle.manifest.interval_level))}"
        )
    return "\n".join(lines)
