"""The bundle's `model_card.md`, in the spirit of TRIPOD+AI: what the models are for, the
data they came from, how they were built and tested, how well they did against simple
baselines on subjects they never saw, how far a prediction may be from the truth, and
what they cannot be used for. Written from the manifest alone, so card and manifest agree.
"""

from __future__ import annotations

import math
from typing import Any

from mmse_model.bundle.manifest import BundleManifest
from mmse_model.core.domain import TASK_ITEMS
from mmse_model.sweeps.summary_schema import (
    Coverage,
    CoverageCell,
    Measure,
    NestedEstimate,
    Scores,
)


def render(manifest: BundleManifest) -> str:
    synthetic = manifest.synthetic
    level = manifest.interval_level
    lines: list[str] = []
    add = lines.append
    if synthetic:
        add(
            "> **SYNTHETIC DATA.** These models were trained and tested on a simulated cohort. "
            "Their numbers say nothing about real patients.\n"
        )
    add(f"# Model card: MMSE sub-scores from VR eye tracking (sweep `{manifest.experiment}`)\n")
    add("## Intended use\n")
    add(
        "A research tool: it estimates the five MMSE sub-scores it was trained on (and their "
        "subtotal) from recurrence-quantification features of VR eye-tracking recordings, each "
        f"with a {level:.0%} prediction interval. **It is not a diagnosis** and not a screening "
        "decision: it has not been validated clinically, no clinical cut-off is implied, and a "
        "person's cognition is assessed by a clinician with the full MMSE and more. Apply it only "
        "to features built as the manifest states (signature, build parameters, feature names); "
        "`mmse predict --bundle` refuses anything else.\n"
    )
    add("## Data\n")
    add(
        f"- Source: `{manifest.data_root}` ({'SYNTHETIC cohort' if synthetic else 'as recorded'}); "
        f"data fingerprint `{manifest.data_fingerprint[:16]}`, split `{manifest.split_hash[:16]}`."
    )
    held_out = any(model.test is not None for model in manifest.tasks.values())
    estimate = next((m.estimate for m in manifest.tasks.values() if m.estimate), None)
    if estimate is not None:
        add(
            f"- The estimate uses every subject: {estimate.repeats} repeat"
            f"{'s' if estimate.repeats != 1 else ''} of {estimate.outer_folds} outer folds "
            "(stratified on the five-task total); in each, the whole selection ran again on the "
            "other folds and predicted the fold's subjects."
        )
    if held_out:
        add(
            "- One subject-level split for every task: held-out test subjects no model, early "
            "stop or selection saw; the rest in K folds (stratified on the five-task total)."
        )
    else:
        add(
            "- The shipped models learnt from every subject (K folds, stratified on the "
            "five-task total); no subject was held out."
        )
    for task, model in manifest.tasks.items():
        build = model.build()
        add(
            f"- {task} ({TASK_ITEMS.get(task, '')}, "
            f"{model.score_range[0]:g}-{model.score_range[1]:g}): "
            f"{model.n_training_subjects} training subjects"
            + (f", {model.test.n} held-out test subjects" if model.test else "")
            + f"; features `{model.signature}`, "
            + (
                f"built with {build.describe()} from gaze converted as "
                f"{build.conversion.describe()} (builder {model.builder_version})"
                if build
                else "build parameters not recorded by the data"
            )
        )
    add("")
    add("## Model\n")
    add(
        "Per task, the sweep's winner (lowest cross-validated validation loss over signatures and "
        "hyper-parameters): K fold-models of one MLP architecture, each with the feature "
        "standardiser of its own training folds; a prediction is the mean of the K, each clamped "
        "to the task's range. The subtotal is the sum of the five tasks' predictions.\n"
    )
    add("| task | signature | K | layers | hyper-parameters |")
    add("|---|---|---|---|---|")
    for task, model in manifest.tasks.items():
        arch = model.config.get("arch", {})
        widths = [arch.get("h1"), arch.get("h2")][: int(arch.get("hidden_layers", 0))]
        layers = "linear" if not widths else " -> ".join(["10", *map(str, widths), "1"])
        hp = (
            ", ".join(f"{k}={_short(v)}" for k, v in sorted(model.hyperparameters.items()))
            or "defaults"
        )
        add(f"| {task} | `{model.signature}` | {model.folds} | {layers} | {hp} |")
    add("")
    if estimate is not None:
        _estimate_section(add, manifest)
    if any(m.transfer is not None for m in manifest.tasks.values()):
        _transfer_section(add, manifest)
    if held_out:
        add("## Performance on the held-out test subjects\n")
        add(
            "In sub-score points, with 95 % bootstrap intervals over test subjects: one split, "
            + ("reported apart from the estimate above. " if estimate is not None else "")
            + "Validation numbers chose the models and are not estimates.\n"
        )
        add("| task | model | RMSE | MAE | R² | calibration slope | N |")
        add("|---|---|---|---|---|---|---|")
        for task, model in manifest.tasks.items():
            add(_row(task, "**network**", model.test))
            for baseline in model.baselines:
                add(_row(task, baseline.label, baseline.test))
        if manifest.subtotal is not None:
            add(_row("subtotal", "**network**", manifest.subtotal.test))
        add("")
        add(
            "Baselines (training mean, Ridge, HistGradientBoosting) chose their settings and "
            "signature by cross-validation on the same training folds and were scored on the "
            "same test subjects; several are compared, so one interval that excludes 0 by chance "
            "is to be expected now and then.\n"
        )
    nested = {
        task: model.nested_estimate
        for task, model in manifest.tasks.items()
        if model.nested_estimate
    }
    if nested:
        _nested_section(add, nested)
    add("## Prediction intervals\n")
    reports = [(task, m.interval_report) for task, m in manifest.tasks.items()]
    if manifest.subtotal is not None:
        reports.append(("subtotal", manifest.subtotal.interval_report))
    calibrated = [(name, r) for name, r in reports if r is not None]
    if calibrated:
        first = calibrated[0][1]
        add(
            f"Each prediction comes with a {level:.0%} interval calibrated on the repeated "
            "nested cross-validation's outer folds: the signed residuals of subjects that neither "
            "trained nor selected the model that predicted them, per band of the prediction "
            "(Mondrian split conformal; the band of a new subject is set by the shipped model's "
            "prediction), clipped to the score range"
            + (
                "; each item's prediction also gives the scores inside its interval"
                if first.calibration.integer_sets
                else ""
            )
            + f". The guarantee that holds: {first.guarantee}.\n"
        )
        add(
            "Coverage over the outer folds (each fold's intervals calibrated on the other folds of "
            "its repeat), in subjects, with 95 % Wilson intervals:\n"
        )
        add(
            "| | all | by band of the prediction | lowest true scores (10th percentile) | highest "
            "(90th) | "
            "mean width |"
        )
        add("|---|---|---|---|---|---|")
        for name, report in calibrated:
            cells = {c.kind: c for c in report.by_score}
            add(
                f"| {name} | {_cell(report.overall)} | "
                + " / ".join(_cell(c) for c in report.by_band)
                + f" | {_cell(cells.get('low_tail'))} | "
                f"{_cell(cells.get('high_tail'))} | "
                f"{_width(report.overall)} |"
            )
        add("")
        short = [f"{name}: {', '.join(r.short)}" for name, r in calibrated if r.short]
        add(
            "Short of the nominal level (the whole Wilson interval below it): "
            + ("; ".join(short) if short else "no cell")
            + ". Coverage for a given true score is reported, never guaranteed: a model that "
            "regresses to the mean misses most at the extreme scores.\n"
        )
    else:
        add(
            f"Each prediction comes with a {level:.0%} CV+ interval (Barber et al. 2021) from the "
            "K fold-models and the out-of-fold residuals of the training subjects, clipped to the "
            "score range.\n"
        )
    if held_out:
        add(
            "Coverage of the same intervals on the held-out test subjects, with its 95 % Wilson "
            "interval:\n"
        )
        add("| | coverage | 95 % interval | N | mean width (points) |")
        add("|---|---|---|---|---|")
        for task, model in manifest.tasks.items():
            add(_coverage_row(task, model.intervals))
        if manifest.subtotal is not None:
            add(_coverage_row("subtotal", manifest.subtotal.intervals))
        add("")
    elif not calibrated:
        add("Their coverage was not measured: the sweep held out no subject.\n")
    add("## Limitations\n")
    limits = [
        (
            "Small cohort: the estimate and every other number carry wide intervals (above)."
            if estimate is not None
            else "Small cohort: test metrics and coverage carry wide intervals (above); a single "
            "split."
        ),
        (
            "One cohort, one headset and protocol: performance on other trackers, tasks or "
            "populations is unknown."
        ),
        (
            "The intervals' coverage is on average over subjects like the calibration ones, not "
            "for each subject; for the shipped models it is not guaranteed at all (they are not "
            "the outer folds' models): check it on new subjects."
            if calibrated
            else "The coverage guarantee is marginal (on average over subjects like the training "
            "ones), not for each subject; CV+ guarantees at least 1 - 2*alpha in theory, about the "
            "level in practice. The validation folds also chose each fold-model's epoch and the "
            "winner, which can make the residuals a little optimistic: the measured test coverage "
            "above is the check."
        ),
        (
            "Features far outside the training range (flagged in `out_of_range` by `mmse predict`) "
            "are extrapolation: treat those predictions with suspicion."
        ),
        (
            "No demographic subgroups were analysed; fairness across age, sex, education or "
            "language is untested."
        ),
        (
            "Sub-scores are clamped to their range; intervals that reach a bound mean the model is "
            "unsure."
        ),
    ]
    if synthetic:
        limits.insert(
            0,
            "SYNTHETIC data: the simulator's assumptions, not people, produced every number here.",
        )
    lines += [f"- {item}" for item in limits]
    add("")
    add("## Provenance\n")
    provenance = manifest.provenance
    versions = ", ".join(f"{k} {v}" for k, v in (provenance.versions or {}).items())
    add(
        f"- Sweep `{manifest.experiment}` at `{manifest.source}`; code "
        f"`{provenance.git_commit or 'unknown'}`; versions {versions or 'unknown'}; "
        f"ended {provenance.ended or 'unknown'}."
    )
    if manifest.looks is not None:
        looks = manifest.looks
        add(
            f"- Looks: the sweep's results were scored on these data {looks.count} time"
            f"{'s' if looks.count != 1 else ''} (`{looks.log}` beside the sweep record); the "
            "config "
            + (
                "changed between looks: the numbers above may reflect choices made after seeing "
                "earlier ones."
                if looks.config_changed
                else "did not change between looks."
            )
        )
    add(f"- Bundle format {manifest.format_version}; weights (safetensors) with their sha256:")
    for name, digest in sorted(manifest.files.items()):
        add(f"  - `{name}` `{digest}`")
    return "\n".join(lines) + "\n"


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _points(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ci(value: float | None, interval: tuple[float, float] | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.2f} [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else f"{value:.2f}"


def _row(task: str, name: str, metrics: Scores | None) -> str:
    if metrics is None:
        return f"| {task} | {name} | - | - | - | - | - |"
    slope = metrics.calibration_slope
    return (
        f"| {task} | {name} | {_ci(metrics.rmse, metrics.rmse_ci)} | "
        f"{_ci(metrics.mae, metrics.mae_ci)} | {_ci(metrics.r2, metrics.r2_ci)} | "
        f"{'-' if slope is None else f'{slope:.2f}'} | {metrics.n} |"
    )


def _estimate_section(add, manifest: BundleManifest) -> None:
    """The headline: each task's repeated nested cross-validation, every model with its
    interval, in points and on the item's scale, and the verdict's comparison."""
    add("## Performance: repeated nested cross-validation (the estimate)\n")
    first = next(m.estimate for m in manifest.tasks.values() if m.estimate)
    add(
        f"Every subject was predicted by models that neither trained on it nor chose anything "
        f"with it: in each outer fold the whole selection ran again on the other folds. Means "
        f"over the {first.repeats * first.outer_folds} outer folds with 95 % intervals from the "
        f"corrected resampled t (Nadeau & Bengio 2003). It estimates {first.what}. Exact and "
        "within-1 agreement and quadratic-weighted kappa compare the prediction rounded to the "
        "item's scale with the true score.\n"
    )
    add("| task | model | RMSE | MAE | exact | within 1 | weighted kappa |")
    add("|---|---|---|---|---|---|---|")
    for task, model in manifest.tasks.items():
        if model.estimate is None:
            continue
        for scores in (model.estimate.network, *model.estimate.baselines):
            name = "**network**" if scores.key == "network" else scores.label
            add(
                f"| {task} | {name} | {_measure(scores.rmse)} | {_measure(scores.mae)} | "
                f"{_measure(scores.exact)} | {_measure(scores.within_1)} | "
                f"{_measure(scores.kappa)} |"
            )
    sub = manifest.subtotal.estimate if manifest.subtotal is not None else None
    if sub is not None:
        for scores in (sub.network, *sub.baselines):
            name = "**network**" if scores.key == "network" else scores.label
            add(
                f"| subtotal | {name} | {_measure(scores.rmse)} | {_measure(scores.mae)} | - | - "
                "| - |"
            )
    add("")
    add("| task | network minus | RMSE difference | p | Holm p | verdict |")
    add("|---|---|---|---|---|---|")
    for task, model in manifest.tasks.items():
        if model.estimate is None:
            continue
        for d in model.estimate.differences:
            verdict = d.words if d.primary else f"{d.words} (secondary, unadjusted)"
            add(
                f"| {task} | {d.label} | {_measure(d.rmse, signed=True)} | "
                f"{_p(d.p_value)} | {_p(d.p_holm) if d.primary else '-'} | {verdict} |"
            )
    add("")
    if sub is not None and sub.dementia_auc is not None:
        auc = sub.dementia_auc
        add(
            f"{'SYNTHETIC cohort: ' if auc.synthetic else ''}AUC of the summed prediction for the "
            f"dementia group ({auc.n_dementia} vs {auc.n_other} subjects): network "
            f"{_measure(auc.network)}, {auc.comparator_label} {_measure(auc.baseline)}, "
            f"difference {_measure(auc.difference, signed=True)}. No clinical cut-off is "
            "implied.\n"
        )


def _transfer_section(add, manifest: BundleManifest) -> None:
    """The transfer estimate, apart from the headline: each model at a held-out site, the
    primary difference (unadjusted), and each site's RMSEs."""
    first = next(m.transfer for m in manifest.tasks.values() if m.transfer is not None)
    by = first.by
    add(f"## Performance at an unseen {by} (leave-one-{by}-out, the transfer estimate)\n")
    add(
        f"Each of the {first.outer_folds} {by}s in the labels was held out in turn, and the "
        f"whole selection ran again on the other {by}s' subjects. It estimates {first.what}. "
        f"Means over the {by}s with 95 % corrected resampled t intervals on "
        f"{first.outer_folds - 1} degrees of freedom: with few {by}s they are wide, and say "
        "so. Reported apart from the estimate above; no verdict rests on it.\n"
    )
    add("| task | model | RMSE | network minus it | p (unadjusted) |")
    add("|---|---|---|---|---|")
    rows = [(task, m.transfer) for task, m in manifest.tasks.items() if m.transfer is not None]
    if manifest.subtotal is not None and manifest.subtotal.transfer is not None:
        rows.append(("subtotal", manifest.subtotal.transfer))
    for task, transfer in rows:
        add(f"| {task} | **network** | {_measure(transfer.network.rmse)} | | |")
        for scores in transfer.baselines:
            d = transfer.difference(scores.key)
            add(
                f"| {task} | {scores.label} | {_measure(scores.rmse)} | "
                f"{_measure(d.rmse, signed=True) if d else '-'} | {_p(d.p_value) if d else '-'} |"
            )
    add("")
    comparator = next((d.label for d in first.differences if d.primary), "comparator")
    add(f"| task | {by} held out | subjects | trained on | network RMSE | {comparator} RMSE |")
    add("|---|---|---|---|---|---|")
    for task, transfer in rows:
        for site in transfer.sites:
            add(
                f"| {task} | {site.site} | {site.n_subjects} | {site.n_train} | "
                f"{_points(site.network_rmse)} | {_points(site.comparator_rmse)} |"
            )
    add("")


def _measure(measure: Measure | None, signed: bool = False) -> str:
    if measure is None or measure.value is None:
        return "-"
    spec = "+.2f" if signed else ".2f"
    if measure.ci is None:
        return format(measure.value, spec)
    low, high = measure.ci
    return f"{measure.value:{spec}} [{low:{spec}}, {high:{spec}}]"


def _cell(cell: CoverageCell | None) -> str:
    if cell is None or cell.coverage is None:
        return "-"
    low, high = cell.coverage_ci or (math.nan, math.nan)
    mark = " **short**" if cell.short else ""
    return f"{cell.coverage:.1%} [{low:.1%}, {high:.1%}] (n {cell.n}){mark}"


def _width(cell: CoverageCell) -> str:
    return "-" if cell.mean_width is None else f"{cell.mean_width:.2f}"


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _nested_section(add, nested: dict[str, NestedEstimate]) -> None:
    """How the whole selection does on splits it never saw: the nested estimate."""
    first = next(iter(nested.values()))
    names = [(m.key, m.label) for m in first.models]
    add("## Across other splits (nested estimate)\n")
    add(
        "The numbers above come from one split. The sweep also ran its selection again inside "
        "fresh outer splits, on their training subjects only, and scored what it chose on their "
        "test subjects: test RMSE in points, mean (sd) over the splits. The search there is "
        "reduced (fewer samples, no ASHA), so this estimates the procedure, not the bundled "
        "models themselves.\n"
    )
    add(
        "| task | search | "
        + " | ".join("**network**" if key == "network" else label for key, label in names)
        + " |"
    )
    add("|---|---|" + "---|" * len(names))
    for task, estimate in nested.items():
        by_key = {m.key: m for m in estimate.models}
        cells = []
        for key, _ in names:
            model = by_key.get(key)
            mean, sd = (model.rmse_mean, model.rmse_sd) if model else (None, None)
            cells.append(
                "-" if mean is None else f"{mean:.2f}" + ("" if sd is None else f" ({sd:.2f})")
            )
        search = estimate.search
        size = (
            "" if search is None else f", {search.samples} samples x {search.signatures} signatures"
        )
        add(f"| {task} | {estimate.repeats} splits{size} | " + " | ".join(cells) + " |")
    add("")


def _coverage_row(name: str, c: Coverage | None) -> str:
    if c is None or c.coverage is None or c.coverage_ci is None:
        return f"| {name} | - | - | - | - |"
    low, high = c.coverage_ci
    return f"| {name} | {c.coverage:.1%} | [{low:.1%}, {high:.1%}] | {c.n} | {c.mean_width:.2f} |"
