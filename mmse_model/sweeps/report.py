"""`summary.txt`: the printed report of a finished sweep, drawn from its `Summary` alone.

SYNTHETIC first where the cohort is; INCOMPLETE where trials failed; the declared
comparison; per task, who it learnt from, the winner's test metrics beside the baselines'
with 95 % intervals, the verdict against the declared primary comparator and the secondary
comparisons, the error per group, the intervals' coverage and the nested estimate; the
subtotal; then the best validation RMSE of every (signature, task), which selects and does
not estimate. Every word that judges (verdicts, labels, orders) is the summary's.
"""

from __future__ import annotations

import re

from mmse_model.evaluation.intervals import METHOD_WORDS
from mmse_model.sweeps.summary_schema import (
    Coverage,
    CoverageCell,
    Estimate,
    GroupError,
    IntervalReport,
    Measure,
    NestedEstimate,
    Outcome,
    Scores,
    Summary,
    Training,
    Transfer,
)

SYNTHETIC_LINE = (
    "SYNTHETIC cohort: every number below comes from simulated subjects, not people "
    "(the data root's dataset.json says so)"
)


def failure_line(summary: Summary) -> str:
    """The one line that says a sweep is not whole ("" when every trial ended well)."""
    failed = summary.failed_trials
    if not failed:
        return ""
    return (
        f"INCOMPLETE: {len(failed)} of {summary.n_trials} trials failed ({', '.join(failed)}; the "
        "reason is in each trial folder's error.txt); their rows are marked error (with the last "
        "checkpoint they wrote, if any); run the same command with --resume to run them again"
    )


def format_summary(summary: Summary) -> str:
    counts = ", ".join(f"{c.status} {c.n}" for c in summary.row_status)
    lines = []
    if summary.synthetic:
        lines.append(SYNTHETIC_LINE)
    if failure_line(summary):
        lines.append(failure_line(summary))
    estimated = any(entry.estimate is not None for entry in summary.tasks.values())
    lines.append(
        f"sweep {summary.experiment}: {summary.n_trials} trials, {summary.n_rows} signature rows "
        f"({counts}); metrics in sub-score points"
        + (
            ": the estimate is repeated nested cross-validation over every subject "
            "[95 % corrected resampled t]; a held-out split's test metrics, where one was "
            "kept, apart [95 % bootstrap interval]"
            if estimated
            else " on held-out subjects, [95 % bootstrap interval]"
        )
    )
    if summary.comparator is not None:
        c = summary.comparator
        if c.adjustment == "holm":
            lines.append(c.note)
        else:
            secondary = ", ".join(s.key for s in c.secondary)
            level = f"{c.level:.0%}".replace("%", " %")
            plural = "s" if c.n_tasks != 1 else ""
            lines.append(
                f"verdicts: each winner against {c.primary.key} (primary, declared in the sweep "
                f"config); {secondary} secondary; paired {level} intervals, unadjusted for the "
                f"{c.n_tasks} task{plural}"
            )
    if summary.looks is not None:
        changed = "; the config changed between looks" if summary.looks.config_changed else ""
        lines.append(
            f"looks: these data have been scored {summary.looks.count} time"
            f"{'s' if summary.looks.count != 1 else ''} (logged in {summary.looks.log}){changed}"
        )
    excluded = summary.excluded_recordings
    lines.append(
        "recordings the data build excluded: "
        + (
            "unknown (the data root has no build report)"
            if excluded is None
            else f"{excluded} (listed in the data root's build_report.csv)"
        )
    )
    header = (
        f"  {'model':<26}{'RMSE':>7}{'[interval]':>16}{'MAE':>7}{'R^2':>7}{'r':>7}"
        f"{'slope':>7}{'icpt':>7}"
    )
    for task, entry in summary.tasks.items():
        winner, test = entry.winner, entry.test
        selection = entry.winner.selection.get("val/rmse")
        lines.append(
            f"{task}: winner {winner.signature} (trial {winner.trial_id}, selection val RMSE "
            f"{_num(selection, '.3f')})"
            + (f", n = {test.n} test subjects" if test is not None and not entry.estimate else "")
        )
        if entry.training is not None:
            lines.append(f"  {_training_line(entry.training)}")
        if entry.estimate is not None:
            lines += _estimate_lines(entry.estimate)
        if entry.prediction_intervals is not None:
            lines += _interval_lines(entry.prediction_intervals)
        if entry.transfer is not None:
            lines += _transfer_lines(entry.transfer)
        if test is not None:
            if entry.estimate is not None:
                lines.append(
                    f"  held-out split, n = {test.n} test subjects (one split, apart from the "
                    "estimate):"
                )
            lines.append(header)
            lines.append(_test_line("network (winner)", test))
            for baseline in entry.baselines:
                lines.append(_test_line(baseline.key, baseline.test))
        chosen = [
            f"{b.key} {b.signature}"
            for b in entry.baselines
            if b.signature and b.key != "train_mean"
        ]
        if chosen:
            lines.append(
                f"  baselines' signatures, each chosen by CV on the folds: {', '.join(chosen)}"
            )
        for c in entry.comparisons:
            low, high = c.rmse_diff_ci or (None, None)
            line = (
                f"  network - {c.baseline}: RMSE {_num(c.rmse_diff, '+.3f')} "
                f"[{_num(low, '+.3f')}, {_num(high, '+.3f')}]"
            )
            if entry.estimate is not None:
                lines.append(f"{line}: {c.words} (this split only)")
            elif c.primary:
                lines.append(f"{line}: {c.words} (primary: the verdict)")
            else:
                lines.append(f"{line} (secondary)")
        if entry.per_group:
            lines.append(f"  {_group_line(entry.per_group, 3)}")
        if entry.intervals is not None:
            lines.append(f"  per-subject intervals: {format_coverage(entry.intervals)}")
        if entry.nested_estimate is not None:
            lines.append(f"  {format_nested(entry.nested_estimate)}")
    sub = summary.subtotal
    if sub is not None and sub.estimate is not None:
        lines.append(
            f"subtotal of {'+'.join(sub.tasks)} (range {sub.range[0]:g}-{sub.range[1]:g}):"
        )
        lines += _estimate_lines(sub.estimate, verdict=False)
        if sub.prediction_intervals is not None:
            lines += _interval_lines(sub.prediction_intervals)
        if sub.transfer is not None:
            lines += _transfer_lines(sub.transfer)
    sub = summary.subtotal
    if sub is not None and sub.test is not None:
        m = sub.test
        lines.append(
            f"subtotal of {'+'.join(sub.tasks)} (range {sub.range[0]:g}-{sub.range[1]:g}) for "
            f"{sub.n} test subjects: RMSE {_num(m.rmse, '.2f')} {_ci(m.rmse_ci)}, "
            f"MAE {_num(m.mae, '.2f')} {_ci(m.mae_ci)}, r {_num(m.pearson_r, '.2f')}, calibration "
            + _calibration(m)
        )
        if sub.per_group:
            lines.append(f"  {_group_line(sub.per_group, 2)}")
        if sub.intervals is not None:
            lines.append(f"  per-subject subtotal intervals: {format_coverage(sub.intervals)}")
        auc = sub.dementia_auc
        if auc is not None and auc.auc is not None:
            lines.append(
                f"  {'SYNTHETIC cohort: ' if auc.synthetic else ''}AUC of the predicted subtotal "
                f"for the dementia group ({auc.n_dementia} vs {auc.n_other}): {auc.auc:.2f} "
                f"{_ci(auc.auc_ci)}; no clinical cut-off is implied"
            )
    lines.append(
        "best validation RMSE per (signature, task), mean (sd) over folds (selection, not an "
        "estimate):"
    )
    for r in summary.best_per_signature_task:
        lines.append(
            f"  {r.task}  {r.signature:<28}{_num(r.rmse, '>7.3f')} ({_num(r.rmse_sd, '.3f')})"
        )
    return "\n".join(lines)


def _estimate_lines(estimate: Estimate, verdict: bool = True) -> list[str]:
    """The estimate's block: what it is, each model's metrics with their intervals (points,
    then the item's scale), and the network minus each baseline, the verdict's first."""
    search = ""
    if estimate.search is not None:
        search = (
            f"; search {estimate.search.samples} samples x {estimate.search.signatures} "
            f"signatures, {estimate.search.folds} inner folds, {estimate.search.cut_words()}"
        )
    scale = estimate.network.exact is not None
    lines = [
        (
            f"  estimate ({estimate.method}: {estimate.repeats} x {estimate.outer_folds} outer "
            f"folds, "
            f"{estimate.n_subjects} subjects{search}); [95 % corrected resampled t]"
        ),
        f"    {'model':<24}{'RMSE':>7}{'[interval]':>17}{'MAE':>7}{'R^2':>7}"
        + (f"{'exact':>7}{'within1':>8}{'kappa':>7}" if scale else ""),
    ]
    for model in (estimate.network, *estimate.baselines):
        lines.append(
            f"    {model.label:<24}{_num(model.rmse.value, '>7.3f')}"
            f"{_ci(model.rmse.ci, 3):>17}{_num(model.mae.value, '>7.3f')}"
            f"{_num(model.r2.value, '>7.3f')}"
            + (
                f"{_num(_value(model.exact), '>7.2f')}{_num(_value(model.within_1), '>8.2f')}"
                f"{_num(_value(model.kappa), '>7.2f')}"
                if scale
                else ""
            )
        )
    for d in estimate.differences:
        low, high = d.rmse.ci or (None, None)
        holm = f", Holm p {_num(d.p_holm, '.3g')}" if d.primary and d.p_holm is not None else ""
        if d.primary:
            tail = "(primary: the verdict)" if verdict else "(primary, unadjusted: no verdict)"
        else:
            tail = "(secondary, unadjusted)"
        lines.append(
            f"    network - {d.label}: RMSE {_num(d.rmse.value, '+.3f')} "
            f"[{_num(low, '+.3f')}, {_num(high, '+.3f')}], p {_num(d.p_value, '.3g')}{holm}: "
            f"{d.words} {tail}"
        )
    auc = estimate.dementia_auc
    if auc is not None:
        lines.append(
            f"    {'SYNTHETIC cohort: ' if auc.synthetic else ''}AUC of the summed prediction for "
            f"the dementia group ({auc.n_dementia} vs {auc.n_other}): network "
            f"{_num(auc.network.value, '.2f')} {_ci(auc.network.ci)}, {auc.comparator_label} "
            f"{_num(auc.baseline.value, '.2f')} {_ci(auc.baseline.ci)}, difference "
            f"{_num(auc.difference.value, '+.2f')} {_ci(auc.difference.ci)}; no clinical "
            "cut-off is implied"
        )
    lines.append(f"    it estimates {estimate.what}")
    return lines


def _transfer_lines(transfer: Transfer) -> list[str]:
    """The transfer estimate, apart from the headline: each model over the held-out sites,
    the paired differences (unadjusted: no verdict comes from here), each site's RMSEs."""
    by = transfer.by
    lines = [
        (
            f"  transfer to an unseen {by} ({transfer.method} by {by}: {transfer.outer_folds} "
            f"{by}s, {transfer.n_subjects} subjects; apart from the estimate, no verdict); "
            f"[95 % corrected resampled t over the {by}s: {transfer.outer_folds - 1} degrees of "
            "freedom]"
        )
    ]
    for model in (transfer.network, *transfer.baselines):
        lines.append(
            f"    {model.label:<24}RMSE {_num(model.rmse.value, '.3f')} {_ci(model.rmse.ci, 3)}"
        )
    for d in transfer.differences:
        low, high = d.rmse.ci or (None, None)
        lines.append(
            f"    network - {d.label}: RMSE {_num(d.rmse.value, '+.3f')} "
            f"[{_num(low, '+.3f')}, {_num(high, '+.3f')}], p {_num(d.p_value, '.3g')} "
            "(unadjusted)"
        )
    comparator = next((d.label for d in transfer.differences if d.primary), "comparator")
    lines.append(
        f"    by {by} held out: "
        + "; ".join(
            f"{site.site} (n {site.n_subjects}, trained on {site.n_train}) network "
            f"{_num(site.network_rmse, '.2f')}, {comparator} {_num(site.comparator_rmse, '.2f')}"
            for site in transfer.sites
        )
    )
    lines.append(f"    it estimates {transfer.what}")
    return lines


def _interval_lines(report: IntervalReport) -> list[str]:
    """The prediction intervals: how made, how often they held over the outer folds (in
    subjects), where, and which cells fall short of nominal, plainly."""

    def cell(c: CoverageCell) -> str:
        return f"{c.label} {_num(c.coverage, '.1%')} (n {c.n}){' SHORT' if c.short else ''}"

    o = report.overall
    low, high = o.coverage_ci or (None, None)
    method = METHOD_WORDS.get(report.method, report.method)
    lines = [
        (
            f"  prediction intervals ({report.level:.0%} {method}): cover "
            f"{_num(o.coverage, '.1%')} [{_num(low, '.1%')}, {_num(high, '.1%')}] of {o.n} "
            f"subjects over the outer folds, mean width {_num(o.mean_width, '.2f')} points"
        ),
        f"    by band: {'; '.join(cell(c) for c in report.by_band)}",
        f"    by true score: {'; '.join(cell(c) for c in report.by_score)}",
    ]
    if report.by_group:
        lines.append(f"    by group: {'; '.join(cell(c) for c in report.by_group)}")
    if report.short:
        lines.append(f"    short of the nominal {report.level:.0%}: {', '.join(report.short)}")
    lines.append(f"    guarantee: {report.guarantee}")
    return lines


def _value(measure: Measure | None) -> float | None:
    return None if measure is None else measure.value


def format_coverage(c: Coverage) -> str:
    """'90 % CV+ intervals cover 91.7 % [82.1 %, 96.4 %] of 60 test subjects, ...'."""
    low, high = c.coverage_ci or (None, None)
    return (
        f"{c.level:.0%} {c.method} intervals cover {_num(c.coverage, '.1%')} "
        f"[{_num(low, '.1%')}, {_num(high, '.1%')}] of {c.n} test subjects, mean width "
        f"{_num(c.mean_width, '.2f')} points"
    )


def format_nested(estimate: NestedEstimate) -> str:
    """The nested estimate in one line that says what it is: the search's size, the number of
    outer splits, then each model's mean test RMSE over them with its sd (none for one split)."""
    parts = []
    for model in estimate.models:
        spread = "" if model.rmse_sd is None else f" (sd {model.rmse_sd:.3f})"
        parts.append(
            f"{model.key}{' RMSE' if not parts else ''} {_num(model.rmse_mean, '.3f')}{spread}"
        )
    repeats = estimate.repeats
    if estimate.search is None:
        return (
            f"{estimate.label}, {repeats} outer split{'' if repeats == 1 else 's'}: "
            f"{'; '.join(parts)}"
        )
    return (
        f"nested estimate (reduced search: {estimate.search.samples} samples x "
        f"{estimate.search.signatures} signatures, {repeats} outer split"
        f"{'' if repeats == 1 else 's'}): {'; '.join(parts)}"
    )


def _num(value: float | None, spec: str) -> str:
    """A number that can be undefined: "-" then, as wide as the number would be."""
    if value is not None:
        return format(value, spec)
    width = re.match(r"[<>^]?[+-]?(\d*)", spec).group(1)
    return format("-", f">{width}") if width else "-"


def _ci(interval: tuple[float, float] | None, digits: int = 2) -> str:
    """An interval with as many decimals as the estimate it goes with."""
    return f"[{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]" if interval else ""


def _calibration(m: Scores) -> str:
    if m.calibration_slope is None:
        return "undefined (constant prediction)"
    return f"slope {m.calibration_slope:.2f}, intercept {_num(m.calibration_intercept, '.2f')}"


def _training_line(training: Training) -> str:
    def side(name: str, n: int, d: Outcome) -> str:
        if not d.n:
            return f"{name} {n} subjects"
        return (
            f"{name} {n} subjects, score mean {_num(d.mean, '.2f')} (sd {_num(d.sd, '.2f')}, "
            f"{d.min:g}-{d.max:g})"
        )

    trained = side("trained on", training.n_train, training.outcome_train)
    if not training.n_test:
        return f"{trained}; no subject held out"
    return f"{trained}; {side('tested on', training.n_test, training.outcome_test)}"


def _group_line(per_group: tuple[GroupError, ...], digits: int) -> str:
    return "per group (RMSE, MAE, bias = predicted - true): " + "; ".join(
        f"{g.group} n {g.n}: {_num(g.rmse, f'.{digits}f')}, {_num(g.mae, f'.{digits}f')}, "
        f"{_num(g.bias, f'+.{digits}f')}"
        for g in per_group
    )


def _test_line(name: str, m: Scores | None) -> str:
    if m is None:
        return f"  {name:<26}   (not scored)"
    return (
        f"  {name:<26}{_num(m.rmse, '>7.3f')}{_ci(m.rmse_ci, 3):>16}{_num(m.mae, '>7.3f')}"
        f"{_num(m.r2, '>7.3f')}{_num(m.pearson_r, '>7.3f')}"
        f"{_num(m.calibration_slope, '.2f'):>7}{_num(m.calibration_intercept, '.2f'):>7}"
    )
