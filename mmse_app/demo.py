"""`mmse demo`: the whole pipeline on a SYNTHETIC cohort with a local Ray instance.

Synthetic cohort -> RQA datasets (Ray tasks) -> ASHA sweep (Ray Tune + Train) with the
repeated nested cross-validation -> summary and model bundle -> the check a user would make:
new SYNTHETIC subjects of the same population, never seen by the sweep, predicted from the
bundle, their RMSE beside the sweep's estimate and the measured coverage of their intervals.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from mmse_model.core.errors import InputError
from mmse_model.sweeps.config import load_sweep_config

DEMO_SIGNATURES = ("m2_tau1_eps0.055_lmin2", "m3_tau3_eps0.08_lmin3")
FRESH_SUBJECTS, FRESH_SEED = 200, 1  # the new draw the demo checks its bundle on
FRESH_PREDICTIONS = "fresh_predictions.csv"
DEMO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"


def run_demo(out: Path, subjects: int = 300) -> dict:
    from ray.tune import Tuner

    from mmse_app.dashboard import write_after_sweep
    from mmse_model.synth.cohort import synthesize
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
    _check_outputs(out, cohort)
    if not (cohort / "labels.csv").exists():
        synthesize(cohort, n_subjects=subjects, seed=0)
    print(f"demo 1/4: SYNTHETIC cohort of {subjects} subjects in {cohort}", flush=True)
    connect(None, sweep.base_config())  # one local Ray instance for the build and the sweep
    report = _build(cohort, out / "data")
    print(
        f"demo 2/4: {len(report.written)} RQA datasets in {out / 'data'} "
        f"({len(report.skips)} recordings skipped, see {report.report_path})",
        flush=True,
    )
    # A demo stopped during its sweep (Ctrl-C) continues that sweep when run again.
    resume = Tuner.can_restore(str(experiment))
    print(
        f"demo 3/4: ASHA sweep ({sweep.samples} samples per task"
        f"{'; continuing the interrupted one' if resume else ''}), then the estimate: "
        f"{_estimate_words(sweep)}",
        flush=True,
    )
    # The SYNTHETIC cohort knows its groups: the summary gives the subtotal's dementia AUC.
    evaluation = sweep.evaluation.model_copy(update={"groups_file": str(cohort / "labels.csv")})
    from mmse_model.sweeps.finish import SweepTrialsFailed

    try:
        summary = run_sweep(sweep.model_copy(update={"evaluation": evaluation}), resume=resume)
    except SweepTrialsFailed:
        write_after_sweep(str(experiment))  # the page of what finished; a rerun retries the rest
        raise
    write_after_sweep(str(experiment))
    fresh = out / "fresh_cohort"
    if not (fresh / "labels.csv").exists():
        synthesize(fresh, n_subjects=FRESH_SUBJECTS, seed=FRESH_SEED)
    print(
        f"demo 4/4: {FRESH_SUBJECTS} new SYNTHETIC subjects of the same population in {fresh}, "
        "never seen by the sweep, predicted from its bundle",
        flush=True,
    )
    _build(fresh, out / "fresh_data")
    print(
        check_fresh_draw(experiment, fresh, out / "fresh_data", out / FRESH_PREDICTIONS),
        flush=True,
    )
    return summary


def _check_outputs(out: Path, cohort: Path) -> None:
    """Before any work: the demo's folder is a folder, its data roots are new or the demo's
    own (`mmse data build` replaces them whole) and no predictions file is there yet (the
    demo writes it last, and a finished demo is refused before this)."""
    from mmse_model.core.outputs import check_output_file, check_output_folder
    from mmse_model.features.build import check_output_root

    check_output_folder(out, command="mmse demo")
    for name, source in (("data", cohort), ("fresh_data", out / "fresh_cohort")):
        check_output_root(out / name, [("its cohort", source)])
    check_output_file(out / FRESH_PREDICTIONS, flag=None)


def _build(cohort: Path, data: Path):
    from mmse_model.features.build import BuildWarning, build_datasets
    from ray_jobs.build_datasets import run_on_ray

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BuildWarning)  # skips are listed in build_report.csv
        return build_datasets(
            cohort / "recordings",
            cohort / "labels.csv",
            list(DEMO_SIGNATURES),
            data,
            "trajectory",
            run_on_ray,
        )


def _estimate_words(sweep) -> str:
    """The demo's nested cross-validation, said as what it is: below the sweep configs'."""
    e = sweep.evaluation
    return (
        f"repeated nested cross-validation, {e.outer_repeats} repeat"
        f"{'s' if e.outer_repeats != 1 else ''} x {e.outer_folds} outer folds, "
        f"{e.nested_samples} samples in each (the demo's reduced setting; configs/sweep.yaml "
        "runs at least 2 repeats and 4 samples)"
    )


def _finished(summary: Path) -> bool:
    """A demo whose sweep ended with every trial done (one with failed trials runs them again)."""
    import json

    if not summary.exists():
        return False
    try:
        return not json.loads(summary.read_text()).get("failed_trials")
    except (OSError, ValueError):
        return True  # unreadable: leave it to the user rather than overwrite it


def check_fresh_draw(experiment: Path, cohort: Path, data_root: Path, out: Path) -> str:
    """Apply the sweep's bundle to a new draw of the same SYNTHETIC population, as a user
    applies it to new subjects (`mmse predict --bundle`), and compare: their RMSE beside the
    sweep's estimate, and how often their true sub-scores (known: the cohort is SYNTHETIC)
    fall in the predicted intervals."""
    import numpy as np

    from mmse_model.bundle.apply import features_for, load_bundle, predict, write_predictions
    from mmse_model.core.csvsafe import read_dicts
    from mmse_model.core.outputs import check_output_file
    from mmse_model.evaluation.conformal import coverage
    from mmse_model.evaluation.intervals import METHOD_WORDS
    from mmse_model.sweeps.report import format_coverage
    from mmse_model.sweeps.summary_schema import Coverage, read_summary

    # The demo's own file: replaced (the demo has refused a foreign one before its sweep).
    check_output_file(
        out,
        [
            ("the bundle", experiment / "bundle"),
            ("the labels", cohort / "labels.csv"),
            ("the data", data_root),
        ],
        overwrite=True,
    )
    bundle = load_bundle(experiment / "bundle")
    summary = read_summary("summary.json", (experiment / "summary.json").read_text())
    with open(cohort / "labels.csv", newline="") as handle:
        labels = {row["subject_id"]: row for row in read_dicts(handle)}
    predictions = predict(bundle, features_for(bundle, data_root))
    write_predictions(predictions, out)
    level = bundle.manifest.interval_level
    lines = [
        (
            f"demo: {len(predictions.subject_ids)} new SYNTHETIC subjects predicted from the "
            f"bundle into {out}: RMSE on them beside the sweep's estimate, and the coverage of "
            f"the {level:.0%} intervals"
        )
    ]
    for task in [*bundle.tasks, *(["subtotal"] if "subtotal" in predictions.columns else [])]:
        rows = [i for i, v in enumerate(predictions.values[task]) if v is not None]
        ids = [predictions.subject_ids[i] for i in rows]
        parts = bundle.tasks if task == "subtotal" else [task]
        y = np.array([sum(float(labels[s][t]) for t in parts) for s in ids])
        predicted = np.array([predictions.values[task][i] for i in rows])
        lower = np.array([predictions.values[f"{task}_lo"][i] for i in rows])
        upper = np.array([predictions.values[f"{task}_hi"][i] for i in rows])
        rmse = float(np.sqrt(np.mean((predicted - y) ** 2)))
        entry = summary.subtotal if task == "subtotal" else summary.tasks.get(task)
        estimate = None if entry is None else entry.estimate
        said = (
            "no estimate"
            if estimate is None or estimate.network.rmse.value is None
            else f"estimate {estimate.network.rmse.value:.2f}"
            + (
                f" [{estimate.network.rmse.ci[0]:.2f}, {estimate.network.rmse.ci[1]:.2f}]"
                if estimate.network.rmse.ci
                else ""
            )
        )
        model = bundle.manifest.subtotal if task == "subtotal" else bundle.manifest.tasks[task]
        method = "CV+" if model.calibration is None else METHOD_WORDS[model.calibration.method]
        covered = Coverage.model_validate({**coverage(y, lower, upper, level), "method": method})
        lines.append(
            f"  {task}: RMSE {rmse:.2f} on {len(ids)} new subjects ({said}); "
            f"{format_coverage(covered).replace('test subjects', 'new subjects')}"
        )
    return "\n".join(lines)
