"""The results a sweep's page shows, as page-data views of its `Summary`: the estimate (the
repeated nested cross-validation over every subject, view 1) first, then the prediction
intervals calibrated on its outer folds with their coverage there (view 2), then the
held-out split's numbers where the sweep kept one (one split's, shown apart from the
estimate).

Everything here is read from the summary (`read_summary`, any version: an older one is
upgraded there and says in `not_recorded` what it lacked) and from `test_predictions.csv`
(`sweeps.predictions.read_predictions`, the one reader of that file). Nothing is
recomputed: verdicts, labels, the order of baselines and groups, calibration lines and the
subtotal are the writer's. What this module decides is how the page says them: the mark of
a verdict, the sentences that name a comparator, an adjustment or a cohort, and whether a
null number is "undefined" (a statistic that has no value, e.g. the calibration slope of a
constant prediction) or "not recorded" (the summary predates it).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from mmse_app.page_schema import (
    Absent,
    AUCRow,
    ComparatorView,
    ComparisonView,
    CoverageRow,
    DataView,
    EstimateBlock,
    EstimatedDifference,
    EstimatedModel,
    EstimateRow,
    EstimateView,
    GroupRows,
    HeadlineView,
    HeldOutGroup,
    IntervalBlock,
    IntervalCell,
    IntervalPart,
    IntervalsView,
    Item,
    MetricColumn,
    ModelRow,
    SubtotalPoints,
    SubtotalView,
    TaskCalibration,
    TaskComparison,
    TaskHead,
    TrainingRow,
    WinnerInfo,
)
from mmse_model.core.domain import NETWORK_LABEL, SCORE_RANGES, TASK_ITEMS
from mmse_model.evaluation.intervals import METHOD_WORDS
from mmse_model.sweeps import rules
from mmse_model.sweeps.predictions import SUBTOTAL, Prediction
from mmse_model.sweeps.summary_schema import (
    CoverageCell,
    Estimate,
    EstimateDifference,
    EstimateScores,
    IntervalReport,
    Measure,
    Scores,
    Summary,
    TaskResult,
    Transfer,
    Verdict,
)

NOT_RECORDED = "not recorded (this sweep's summary predates it)"
UNDEFINED = "undefined"
# A verdict's mark on its task's winner cell and head; its words are the summary's.
VERDICT_MARKS = {rules.BETTER: "✓", rules.LEVEL: "≈", rules.WORSE: "✗"}
# Statistics that are null when they have no value (a constant prediction has no
# calibration line and no Pearson r), rather than when nobody recorded them.
UNDEFINED_WHEN_NULL = ("calibration_slope", "calibration_intercept", "pearson_r")
# A statistic recorded together with another: the summary names one of them missing.
RECORDED_WITH = {"calibration_intercept": "calibration_slope"}
NETWORK_KEY = "network"  # the network's key in a nested estimate's models
RESULTS_LATER = "appears when the sweep has finished"
# Where the page shows the estimate, the prediction intervals' coverage over its outer
# folds, the selection's heatmap and the held-out split (page.html numbers its views).
ESTIMATE_VIEW, INTERVALS_VIEW, SELECTION_VIEW, HELD_OUT_VIEW = (
    "view 1",
    "view 2",
    "view 3",
    "view 4",
)
# The estimate's measures in the order its tables show them: key, heading, decimals. The
# item-scale ones (agreement of the rounded prediction, weighted kappa) are the tasks' only.
ESTIMATE_COLUMNS = (
    ("rmse", "RMSE", 3),
    ("mae", "MAE", 3),
    ("r2", "R²", 3),
    ("exact", "exact agreement", 2),
    ("within_1", "within-1 agreement", 2),
    ("kappa", "weighted kappa", 2),
)
NO_HELD_OUT = "the sweep held out no subject (the shipped models learnt from every subject)"
# The held-out split's coverage table's headings.
COVERAGE_COLUMNS = (
    "task",
    "intervals",
    "nominal level",
    "coverage [95 % Wilson CI]",
    "covered / n subjects",
    "mean width (points)",
)
# The headings of view 2's tables: the overview (one row per task and the subtotal), then
# each block's cells.
INTERVAL_SUMMARY_COLUMNS = (
    "",
    "intervals",
    "nominal level",
    "coverage over the outer folds [95 % Wilson CI]",
    "covered / n subjects",
    "mean width (points)",
    "cells short of nominal",
)
INTERVAL_COLUMNS = (
    "cell",
    "coverage [95 % Wilson CI]",
    "covered / n subjects",
    "mean width (points)",
    "short of nominal",
)


# --- words --------------------------------------------------------------------------------------


def fixed(value: float | None, digits: int = 3) -> str:
    """`value` to `digits` decimals as the page's script writes numbers (JavaScript's
    toFixed: halves away from zero, on the exact binary value), so that a number in a
    sentence made here reads as the same number in a table drawn there."""
    if value is None:
        return "–"
    return str(Decimal(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def signed(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else ("+" if value > 0 else "") + fixed(value, digits)


def interval(ci: Any, digits: int = 3, sign: bool = False) -> str:
    if not ci:
        return ""
    write = signed if sign else fixed
    return f"[{write(ci[0], digits)}, {write(ci[1], digits)}]"


def number(value: float) -> str:
    return f"{value:g}"


def percent(level: float) -> str:
    """A level as the page says it: 0.9 is "90 %"."""
    return f"{level:.0%}".replace("%", " %")


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]


class Recorded:
    """What a summary recorded: a dotted path is missing when it, or a path above it, is in
    the summary's `not_recorded` (its upgrade named it)."""

    def __init__(self, summary: Summary | None):
        self.summary = summary
        self.paths = set(summary.not_recorded) if summary is not None else set()

    def missing(self, path: str) -> bool:
        parts = path.split(".")
        return any(".".join(parts[: i + 1]) in self.paths for i in range(len(parts)))

    def any_missing(self, suffix: str) -> bool:
        return any(p == suffix or p.endswith(f".{suffix}") for p in self.paths)

    def absent(self, scores: Scores | None, path: str) -> Absent:
        """Words for the null statistics of `scores` (at `path` in the summary)."""
        if scores is None:
            return {}
        out = {}
        for field, value in scores:
            if value is not None or field == "n":
                continue
            if self.missing(f"{path}.{RECORDED_WITH.get(field, field)}"):
                out[field] = NOT_RECORDED
            elif field in UNDEFINED_WHEN_NULL:
                out[field] = UNDEFINED
        return out


# --- SYNTHETIC, the comparator, the heatmap's verdicts ------------------------------------------


def banner(synthetic: bool | None, source: str | None) -> str | None:
    """The SYNTHETIC banner's sentence, or None for a real (or unknown) cohort."""
    if synthetic is not True:
        return None
    return (
        "SYNTHETIC: every number on this page comes from a simulated cohort, not from any "
        f"person ({source or 'the results'} {'says' if source else 'say'} so). Nothing here "
        "is evidence about patients."
    )


def adjustment_words(adjustment: str, n_tasks: int) -> str:
    tasks = plural(n_tasks, "task")
    if adjustment == "holm":
        return f"Holm-adjusted for the {tasks}"
    if adjustment == "none":
        return f"unadjusted for the {tasks}"
    return f"adjusted ({adjustment}) for the {tasks}"


def held_out(summary: Summary | None) -> bool:
    """The sweep kept a held-out split: some task's winner was scored on test subjects."""
    return summary is not None and any(e.test is not None for e in summary.tasks.values())


def estimated(summary: Summary | None) -> bool:
    """The sweep ran the repeated nested cross-validation: some task has its estimate."""
    return summary is not None and any(e.estimate is not None for e in summary.tasks.values())


def comparator_view(summary: Summary | None) -> ComparatorView | None:
    """The comparison every verdict comes from, in words (none before the results)."""
    if summary is None or summary.comparator is None:
        return None
    c = summary.comparator
    note = first_upper(c.note.rstrip(".")) + "."
    # The Holm note says itself that the other baselines are secondary.
    if c.secondary and c.adjustment != "holm":
        labels = ", ".join(s.label for s in c.secondary)
        note += f" The other baselines ({labels}) are secondary: shown, without a verdict."
    if c.adjustment == "none":
        note += " Across several tasks, one interval in twenty may exclude 0 by chance alone."
    return ComparatorView(
        declared=c.declared,
        primary=c.primary.key,
        primary_label=c.primary.label,
        note=note,
        adjustment=adjustment_words(c.adjustment, c.n_tasks),
    )


def task_head(task: str, summary: Summary | None) -> TaskHead:
    """The words under a task's name in the heatmap: its winner's verdict."""
    item = TASK_ITEMS.get(task, "")
    entry = summary.tasks.get(task) if summary is not None else None
    if entry is None:
        text = "not scored" if summary is not None else "test after the sweep"
        return TaskHead(task=task, verdict=None, text=text, title=item)
    verdict = entry.verdict
    if verdict is None:
        return TaskHead(
            task=task, verdict=None, text=rules.result_words(None, ""), title=f"{item}: no verdict"
        )
    mark = VERDICT_MARKS.get(verdict.result or "", "")
    where = (
        f"the network against {verdict.label} over the outer folds of the repeated nested "
        f"cross-validation ({ESTIMATE_VIEW})"
        if entry.estimate is not None
        else f"the winner against {verdict.label} on the held-out test subjects"
    )
    title = (
        f"{item}: {where} ({verdict.source}): RMSE difference {signed(verdict.rmse_diff)} "
        f"{interval(verdict.rmse_diff_ci, sign=True)}"
    ).rstrip()
    return TaskHead(
        task=task, verdict=verdict.result, text=f"{mark} {verdict.words}".strip(), title=title
    )


def heatmap_note(summary: Summary | None, finished: bool) -> str:
    head = (
        "Each cell: the lowest validation RMSE (sub-score points, mean over folds at the best "
        "epoch; it selects, it does not estimate) of that signature on that task over every "
        "trial. Colour within each task: darker is lower. ★ the task's winner"
    )
    tail = " Click a cell to list and plot its trials."
    comparator = comparator_view(summary)
    if not finished or summary is None:
        return (
            f"{head} so far; its verdict against a baseline appears when the sweep has "
            f"finished and its winners are scored on the held-out test subjects.{tail}"
        )
    if comparator is None:
        return f"{head}.{tail}"
    label = comparator.primary_label
    marks = ", ".join(
        f"{VERDICT_MARKS[r]} {rules.result_words(r, label)}"
        for r in (rules.BETTER, rules.LEVEL, rules.WORSE)
    )
    declared = (
        "the comparison was declared before the sweep ran"
        if comparator.declared
        else f"this sweep declared no comparator: {label}'s comparison, the default"
    )
    if estimated(summary):
        return (
            f"{head}; on the winner's cell only, the task's verdict against {label} from the "
            f"repeated nested cross-validation ({ESTIMATE_VIEW}): {marks} (by the network's RMSE "
            "minus the comparator's over the outer folds, its p-value "
            f"{comparator.adjustment}, as {ESTIMATE_VIEW} says; no mark without a p-value; "
            f"{declared}). The verdict is the whole procedure's (its search chose a signature "
            f"in every outer fold), not this signature's alone.{tail}"
        )
    return (
        f"{head}; on the winner's cell only (no other signature was compared with a "
        f"baseline), its verdict against {label} on the held-out test subjects: {marks} (by "
        "the paired bootstrap interval of the RMSE difference, which excludes 0 for "
        f"{VERDICT_MARKS[rules.BETTER]} and {VERDICT_MARKS[rules.WORSE]}; no mark without a "
        f"paired interval; {declared}; the intervals are {comparator.adjustment}, "
        f"{HELD_OUT_VIEW} says more).{tail}"
    )


# --- view 1: the estimate ----------------------------------------------------------------------


def estimate_view(summary: Summary | None) -> HeadlineView:
    """The headline: each task's and the subtotal's repeated nested cross-validation as the
    summary records it (every number its own), or why the summary has none."""
    if summary is None:
        return HeadlineView(
            recorded=False,
            note=(
                "The estimate (repeated nested cross-validation over every subject) "
                f"{RESULTS_LATER}."
            ),
        )
    recorded = Recorded(summary)
    looks, looks_changed = looks_words(summary)
    blocks = {
        task: _estimate_block(task, entry.estimate, entry)
        for task, entry in summary.tasks.items()
        if entry.estimate is not None
    }
    if not blocks:
        return HeadlineView(
            recorded=False,
            note=f"No nested cross-validation: {_no_estimate_reason(summary, recorded)}.",
            looks=looks,
            looks_changed=looks_changed,
        )
    first = next(e.estimate for e in summary.tasks.values() if e.estimate is not None)
    folds = first.repeats * first.outer_folds
    note = (
        f"The estimate: {first.method} over every subject ({first.repeats} × "
        f"{first.outer_folds} outer folds). In each outer fold the whole selection ran again "
        "on the other folds alone, and the network it chose and every baseline predicted the "
        "fold's subjects: every number here is on subjects that neither trained nor chose "
        f"anything. Each is the mean over the {plural(folds, 'outer fold')} with its 95 % "
        f"interval (brackets, error bars): {first.interval}. Metrics in sub-score points; the "
        "agreement of the prediction rounded onto the item's scale (exact, within 1) and the "
        "quadratic-weighted kappa for each task. The selection's own validation numbers "
        f"({SELECTION_VIEW}) chose; these estimate."
    )
    missing = tuple(
        Item(label=task, text="not estimated: the summary records no estimate for it")
        for task, entry in summary.tasks.items()
        if entry.estimate is None
    )
    sub = summary.subtotal
    subtotal = None
    if sub is not None and sub.estimate is not None:
        value_range = f"{number(sub.range[0])}–{number(sub.range[1])}"
        subtotal = _estimate_block(
            SUBTOTAL,
            sub.estimate,
            None,
            title=f"{SUBTOTAL} of {' + '.join(sub.tasks)} (range {value_range})",
        )
        subtotal_note = ""
    elif sub is None:
        subtotal_note = "No estimate of the subtotal: the sweep scored no task."
    else:
        subtotal_note = (
            "No estimate of the subtotal: no outer fold had two subjects scored on every task."
        )
    comparator = comparator_view(summary)
    adjustment = summary.comparator.adjustment if summary.comparator is not None else "none"
    transfer_title, transfer_note, transfer = transfer_blocks(summary)
    return HeadlineView(
        recorded=True,
        note=note,
        comparator_note=comparator.note if comparator is not None else "",
        p_label="p (unadjusted)",
        p_adjusted_label=(
            "Holm-adjusted p (the verdict's)" if adjustment == "holm" else "adjusted p"
        ),
        looks=looks,
        looks_changed=looks_changed,
        tasks=blocks,
        missing=missing,
        subtotal=subtotal,
        subtotal_note=subtotal_note,
        transfer_title=transfer_title,
        transfer_note=transfer_note,
        transfer=transfer,
    )


def transfer_blocks(summary: Summary) -> tuple[str, str, tuple[EstimateBlock, ...]]:
    """(heading, note, blocks) of the transfer estimate: each task's and the subtotal's, the
    same tables as the estimate's plus one row per held-out site; empty without one."""
    entries = [(task, e.transfer, e) for task, e in summary.tasks.items() if e.transfer]
    sub = summary.subtotal
    if not entries:
        return "", "", ()
    first = entries[0][1]
    by = first.by
    title = f"Transfer to an unseen {by}: leave-one-{by}-out, apart from the estimate"
    note = (
        f"Each of the {plural(first.outer_folds, by)} in the labels was held out in turn and "
        f"the whole selection ran again on the other {by}s' subjects alone. Means over the "
        f"{by}s with 95 % intervals ({first.interval}) on {first.outer_folds - 1} degrees of "
        f"freedom: with few {by}s they are wide. No verdict comes from here."
    )
    blocks = [_transfer_block(task, transfer, entry) for task, transfer, entry in entries]
    if sub is not None and sub.transfer is not None:
        value_range = f"{number(sub.range[0])}–{number(sub.range[1])}"
        blocks.append(
            _transfer_block(
                SUBTOTAL,
                sub.transfer,
                None,
                f"{SUBTOTAL} of {' + '.join(sub.tasks)} (range {value_range})",
            )
        )
    return title, note, tuple(blocks)


def _transfer_block(
    task: str, transfer: Transfer, entry: TaskResult | None, title: str = ""
) -> EstimateBlock:
    block = _estimate_block(task, transfer, entry, title, verdict=False)
    by = transfer.by
    comparator = next((d.label for d in transfer.differences if d.primary), "comparator")
    design = (
        f"{plural(transfer.outer_folds, by)} held out in turn, "
        f"{plural(transfer.n_subjects, 'subject')}"
    )
    if transfer.search is not None:
        s = transfer.search
        design += (
            f"; the search for each {by}: {plural(s.samples, 'hyper-parameter sample')} × "
            f"{plural(s.signatures, 'signature')} on {s.folds} inner folds, {s.cut_words()}"
        )
    return block.model_copy(
        update={
            "design": design,
            "group_columns": (
                f"{by} held out",
                "subjects",
                "trained on",
                f"{NETWORK_LABEL} RMSE",
                f"{comparator} RMSE",
            ),
            "groups": tuple(
                HeldOutGroup(
                    label=site.site,
                    cells=(
                        str(site.n_subjects),
                        str(site.n_train),
                        fixed(site.network_rmse, 2),
                        fixed(site.comparator_rmse, 2),
                    ),
                )
                for site in transfer.sites
            ),
        }
    )


def looks_words(summary: Summary) -> tuple[str, bool]:
    """How often the results were scored on these data, in words, and whether the config
    changed between those looks."""
    looks = summary.looks
    if looks is None:
        why = NOT_RECORDED if summary.not_recorded else "not recorded"
        return f"Looks (how often results were scored on these data): {why}.", False
    tail = (
        "the config changed between looks: these numbers may reflect choices made after "
        "seeing earlier ones."
        if looks.config_changed
        else "the config did not change between looks."
    )
    words = (
        f"Looks: the results were scored on these data {plural(looks.count, 'time')} "
        f"({looks.log} beside the sweep record); {tail}"
    )
    return words, looks.config_changed


def _no_estimate_reason(summary: Summary, recorded: Recorded) -> str:
    """Why a summary has no estimate: what its sweep ran instead, as far as it says."""
    kinds = {e.nested_estimate.kind for e in summary.tasks.values() if e.nested_estimate}
    if "procedure" in kinds:
        return (
            "this sweep's summary predates it; its procedure estimate (the winner's "
            f"hyper-parameters re-used: optimistic) is shown with the held-out split "
            f"({HELD_OUT_VIEW})"
        )
    if "nested" in kinds:
        return (
            "this sweep ran the earlier nested estimate over fresh outer splits instead, shown "
            f"with the held-out split ({HELD_OUT_VIEW})"
        )
    config = summary.provenance.sweep_config if summary.provenance is not None else None
    evaluation = (config or {}).get("evaluation")
    repeats = evaluation.get("outer_repeats") if isinstance(evaluation, dict) else None
    if repeats == 0:
        return (
            "the sweep ran none (evaluation.outer_repeats 0); its numbers are the held-out "
            f"split's ({HELD_OUT_VIEW})"
        )
    if summary.not_recorded:  # an older summary's upgrade: it predates the estimate
        return NOT_RECORDED
    return "not recorded"


def _estimate_block(
    task: str,
    estimate: Estimate,
    entry: TaskResult | None,
    title: str = "",
    verdict: bool = True,
) -> EstimateBlock:
    folds = estimate.repeats * estimate.outer_folds
    design = (
        f"{estimate.repeats} × {estimate.outer_folds} outer folds ({folds} in all), "
        f"{plural(estimate.n_subjects, 'subject')}"
    )
    if estimate.search is not None:
        s = estimate.search
        design += (
            f"; the search in each outer fold: {plural(s.samples, 'hyper-parameter sample')} × "
            f"{plural(s.signatures, 'signature')} on {s.folds} inner folds, {s.cut_words()}"
        )
    else:
        design += "; each model's predictions summed over the tasks, subject by subject"
    columns = tuple(
        MetricColumn(key=key, label=label, digits=digits)
        for key, label, digits in ESTIMATE_COLUMNS
        if getattr(estimate.network, key) is not None
    )
    models = tuple(
        _estimated_model(scores, columns, folds)
        for scores in (estimate.network, *estimate.baselines)
    )
    verdict = entry.verdict if entry is not None and verdict else None
    differences = tuple(
        EstimatedDifference(
            label=f"{NETWORK_LABEL} − {d.label}",
            difference=d,
            tag=_difference_tag(d, verdict),
            mark=VERDICT_MARKS.get(d.result or "", "") if _decides(d, verdict) else "",
        )
        for d in estimate.differences
    )
    auc_rows: tuple[AUCRow, ...] = ()
    auc_note = ""
    if task == SUBTOTAL:
        auc_rows, auc_note = _auc_estimate(estimate)
    if not title and entry is not None:
        low, high = entry.score_range
        title = f"{task}: {entry.item} ({number(low)}–{number(high)})"
    return EstimateBlock(
        task=task,
        title=title or task,
        design=design,
        what=f"It estimates {estimate.what}.",
        columns=columns,
        models=models,
        differences=differences,
        verdict=verdict,
        auc=auc_rows,
        auc_note=auc_note,
    )


def _decides(difference: EstimateDifference, verdict: Verdict | None) -> bool:
    """The difference the task's verdict came from (the subtotal has no verdict)."""
    return difference.primary and verdict is not None and verdict.baseline == difference.baseline


def _difference_tag(difference: EstimateDifference, verdict: Verdict | None) -> str:
    if _decides(difference, verdict):
        return "primary: the verdict" + (", Holm-adjusted" if difference.p_holm is not None else "")
    if difference.primary:
        return "primary comparator, unadjusted: no verdict here"
    return "secondary, unadjusted"


def _estimated_model(
    scores: EstimateScores, columns: tuple[MetricColumn, ...], folds: int
) -> EstimatedModel:
    absent, partial = {}, {}
    for column in columns:
        measure: Measure | None = getattr(scores, column.key)
        if measure is None or measure.value is None:
            absent[column.key] = f"{UNDEFINED} on every fold"
        elif measure.folds < folds:
            partial[column.key] = f"defined on {measure.folds} of {folds} folds"
    chosen = ", ".join(
        f"{signature} ({plural(n, 'fold')})" for signature, n in scores.signatures_chosen.items()
    )
    return EstimatedModel(
        key=scores.key,
        label=scores.label,
        scores=scores,
        absent=absent,
        folds=partial,
        signatures=chosen,
    )


def _auc_estimate(estimate: Estimate) -> tuple[tuple[AUCRow, ...], str]:
    auc = estimate.dementia_auc
    if auc is None:
        return (), "No AUC: the sweep was given no groups file."
    rows = (
        AUCRow(key=NETWORK_KEY, label=NETWORK_LABEL, measure=auc.network),
        AUCRow(key=auc.comparator, label=auc.comparator_label, measure=auc.baseline),
        AUCRow(
            key="difference",
            label=f"{NETWORK_LABEL} − {auc.comparator_label}",
            measure=auc.difference,
            signed=True,
            p_value=auc.p_value,
        ),
    )
    note = (
        f"{'SYNTHETIC cohort: ' if auc.synthetic else ''}AUC of the summed prediction for "
        f"telling the dementia group from the others ({auc.n_dementia} vs {auc.n_other} "
        f"subjects), the network's and the declared comparator's ({auc.comparator_label}), mean "
        "over the outer folds with its 95 % interval; no clinical cut-off is implied."
    )
    return rows, note


# --- view 2: the prediction intervals' coverage over the outer folds ---------------------------


def _reports(summary: Summary) -> list[IntervalReport]:
    found = [e.prediction_intervals for e in summary.tasks.values()]
    if summary.subtotal is not None:
        found.append(summary.subtotal.prediction_intervals)
    return [r for r in found if r is not None]


def intervals_view(summary: Summary | None) -> IntervalsView:
    """Each task's and the subtotal's prediction intervals, calibrated on the estimate's outer
    folds, with their coverage there as the summary records it (every number and cell its
    own; the cells it lists as short marked so), or why the summary has none."""
    if summary is None:
        return IntervalsView(
            recorded=False,
            note=f"The prediction intervals' coverage over the outer folds {RESULTS_LATER}.",
        )
    held_out_note = ""
    held = _coverage_rows(summary)
    if held:
        methods = ", ".join(dict.fromkeys(r.coverage.method for r in held))
        held_out_note = (
            f"The held-out split's coverage ({methods} intervals on its test subjects, one "
            f"split) is in {HELD_OUT_VIEW}, apart from these."
        )
    blocks = {
        task: _interval_block(task, entry.prediction_intervals, _task_title(task, entry))
        for task, entry in summary.tasks.items()
        if entry.prediction_intervals is not None
    }
    sub = summary.subtotal
    subtotal = None
    if sub is not None and sub.prediction_intervals is not None:
        value_range = f"{number(sub.range[0])}–{number(sub.range[1])}"
        subtotal = _interval_block(
            SUBTOTAL,
            sub.prediction_intervals,
            f"{SUBTOTAL} of {' + '.join(sub.tasks)} (range {value_range})",
        )
    if not blocks and subtotal is None:
        return IntervalsView(
            recorded=False,
            note=(
                "No prediction intervals calibrated on the outer folds: "
                f"{_no_intervals_reason(summary)}."
            ),
            held_out_note=held_out_note,
        )
    source = next(r.source for r in _reports(summary))
    note = (
        f"Each subject's prediction interval at the nominal level, made from the {source}. "
        "A new subject's interval is its prediction plus its band's offsets (the band of the "
        "prediction it falls in), clipped to the score range. Coverage: how often the "
        "intervals held the true score over the outer folds, each fold's intervals "
        "calibrated on the other folds of its repeat (as a new subject's are on all of "
        "them), counted in subjects (each subject's share of its repeats), with its 95 % "
        "Wilson interval; mean width in points. By band of the prediction (what the "
        "intervals are calibrated within), by true score (reported, never guaranteed) and by "
        "group. A cell falls short of nominal when its whole Wilson interval lies below the "
        "nominal level: it is marked so."
    )
    missing = tuple(
        Item(label=task, text=f"no prediction intervals: {_no_intervals_reason(summary, entry)}")
        for task, entry in summary.tasks.items()
        if entry.prediction_intervals is None
    )
    if subtotal is not None:
        subtotal_note = ""
    elif sub is None:
        subtotal_note = "No intervals for the subtotal: the sweep scored no task."
    elif sub.estimate is None and estimated(summary):
        subtotal_note = (
            "No intervals for the subtotal: no outer fold had two subjects scored on every task."
        )
    else:
        subtotal_note = f"No intervals for the subtotal: {NOT_RECORDED}."
    plotted = [b for b in blocks.values() if b.points]
    plot_note = (
        "Coverage over the outer folds per true score, task by task (dots, with their 95 % "
        "Wilson intervals; marked: short of nominal), against the nominal level (dashed). The "
        "subtotal's, by third of its true scores, is in its table."
        if plotted
        else ""
    )
    return IntervalsView(
        recorded=True,
        note=note,
        summary_columns=INTERVAL_SUMMARY_COLUMNS,
        columns=INTERVAL_COLUMNS,
        guarantee_label="The guarantee that holds:",
        plot_note=plot_note,
        x_label="true score",
        y_label="coverage over the outer folds",
        covered_label="coverage [95 % Wilson CI]",
        tasks=blocks,
        missing=missing,
        subtotal=subtotal,
        subtotal_note=subtotal_note,
        held_out_note=held_out_note,
    )


def _task_title(task: str, entry: TaskResult) -> str:
    low, high = entry.score_range
    return f"{task}: {entry.item} ({number(low)}–{number(high)})"


def _no_intervals_reason(summary: Summary, entry: TaskResult | None = None) -> str:
    """Why a summary (or one task of it) has no intervals calibrated on outer folds."""
    has_estimate = entry.estimate is not None if entry is not None else estimated(summary)
    if has_estimate:  # the estimate, written before the intervals came with it
        return NOT_RECORDED
    config = summary.provenance.sweep_config if summary.provenance is not None else None
    evaluation = (config or {}).get("evaluation")
    repeats = evaluation.get("outer_repeats") if isinstance(evaluation, dict) else None
    if repeats == 0:
        return (
            "they are calibrated on the outer folds of the repeated nested cross-validation, "
            "and the sweep ran none (evaluation.outer_repeats 0)"
        )
    if summary.not_recorded:  # an older summary's upgrade: it predates the estimate
        return NOT_RECORDED
    return "not recorded"


def _interval_block(task: str, report: IntervalReport, title: str) -> IntervalBlock:
    level = percent(report.level)
    mark = f"short of {level}"
    short = set(report.short)

    def cell(c: CoverageCell, plotted: bool = False) -> IntervalCell:
        return IntervalCell(
            cell=c,
            score=c.score if plotted else None,
            mark=mark if c.label in short else "",
            absent="no subject" if c.coverage is None else "",
        )

    scale = task != SUBTOTAL
    parts = [
        IntervalPart(
            key="band", title="by band of the prediction", cells=tuple(map(cell, report.by_band))
        ),
        IntervalPart(
            key="score",
            title=(
                "by true score, then the lowest and highest 10 % of true scores"
                if scale
                else "by third of the true scores, then the lowest and highest 10 %"
            ),
            cells=tuple(cell(c, plotted=scale) for c in report.by_score),
        ),
    ]
    if report.by_group:
        parts.append(
            IntervalPart(key="group", title="by group", cells=tuple(map(cell, report.by_group)))
        )
    points = tuple(c for c in parts[1].cells if c.score is not None)
    return IntervalBlock(
        task=task,
        title=title,
        method=METHOD_WORDS.get(report.method, report.method),
        level=report.level,
        level_text=level,
        nominal_label=f"nominal {level}",
        short_label=mark,
        guarantee=report.guarantee,
        calibration=_calibration_words(report, scale),
        overall=cell(report.overall),
        parts=tuple(parts),
        short=report.short,
        short_text=", ".join(report.short) if report.short else "none",
        points=points,
    )


def _calibration_words(report: IntervalReport, item_scale: bool) -> str:
    """What a new subject's interval is made of: the bands' cut points, and each band's
    offsets and residuals (an infinite offset, written null, leaves the range's bound)."""
    c = report.calibration

    def offset(value: float | None, sign: str) -> str:
        return f"{sign}∞" if value is None else signed(value, 2)

    offsets = "; ".join(
        f"band {b + 1}: {offset(low, '-')} to {offset(high, '+')} points, from "
        f"{plural(n, 'residual')}"
        for b, (low, high, n) in enumerate(zip(c.lower, c.upper, c.n))
    )
    if c.cuts:
        bands = (
            f"{plural(len(c.cuts) + 1, 'band')} of the prediction, cut at "
            f"{' and '.join(fixed(v, 2) for v in c.cuts)}"
        )
    else:
        bands = "one band"
    sets = (
        "; the bundle also gives the item's scores inside the interval"
        if c.integer_sets and item_scale
        else ""
    )
    return (
        f"Calibrated on every outer fold's signed residuals, in {bands}: a new subject's "
        f"interval is its prediction plus its band's offsets ({offsets}), clipped to the score "
        f"range{sets}."
    )


# --- view 4: the held-out split: the winner against the baselines ------------------------------


def comparison_view(summary: Summary | None, names: dict[str, str]) -> ComparisonView:
    """The held-out split, where the sweep kept one: each task's winner and baselines on its
    test subjects, an older summary's estimate over fresh splits and the coverage of the
    prediction intervals; one split's numbers, apart from the estimate. Without a held-out
    split, the one line that says so. `names`: trial id -> readable name."""
    recorded = Recorded(summary)
    if summary is None:
        return ComparisonView(
            held_out=False,
            note=(
                f"Test numbers {RESULTS_LATER.replace('appears', 'appear')}: where the sweep "
                "holds out test subjects, the winners are scored on them then (summary.json)."
            ),
            any_interval=False,
            tasks={},
            estimate_note=f"The estimate over fresh splits {RESULTS_LATER}.",
            coverage=(),
            coverage_note=f"The prediction intervals' coverage {RESULTS_LATER}.",
        )
    if not summary.tasks:
        return ComparisonView(
            held_out=False,
            note="The summary holds no test results.",
            any_interval=False,
            tasks={},
            estimate_note="",
            coverage=(),
            coverage_note="",
        )
    if not held_out(summary):
        return ComparisonView(
            held_out=False,
            note=(
                f"{first_upper(NO_HELD_OUT)}: their performance is the estimate's "
                f"({ESTIMATE_VIEW})."
            ),
            any_interval=False,
            tasks={},
            estimate_note="",
            coverage=(),
            coverage_note="",
        )
    split_only = estimated(summary)
    tasks = {
        t: _task_comparison(t, e, names, recorded, split_only) for t, e in summary.tasks.items()
    }
    labels: list[str] = []
    any_interval = False
    for entry in summary.tasks.values():
        labels += [b.label for b in entry.baselines if b.label not in labels]
        tests = [entry.test] + [b.test for b in entry.baselines]
        any_interval = any_interval or any(s is not None and s.rmse_ci for s in tests)
    note = (
        "Test RMSE on each task's held-out subjects, in sub-score points, for the winner "
        "(best signature and hyper-parameters by validation loss) and for baselines fitted "
        f"on the same training subjects ({', '.join(labels)}), each on the signature it "
        "chose by its own cross-validation where the summary records one. "
        + (
            "Bars and [brackets]: 95 % bootstrap intervals."
            if any_interval
            else "This sweep recorded no intervals."
        )
        + " n: test subjects. A constant prediction has no calibration slope: "
        f"{UNDEFINED}."
    )
    comparator = comparator_view(summary)
    comparator_note = comparator.note if comparator is not None else ""
    if split_only:
        note = (
            f"One held-out split's numbers, apart from the estimate ({ESTIMATE_VIEW}): one "
            "draw of test subjects, so they vary with the draw; the verdicts are the "
            "estimate's, and the paired intervals here (95 % bootstrap, unadjusted) decide "
            f"nothing. {note}"
        )
        comparator_note = ""
    return ComparisonView(
        held_out=True,
        note=note,
        comparator_note=comparator_note,
        any_interval=any_interval,
        tasks=tasks,
        estimate_note="" if split_only else _estimate_note(summary, recorded),
        coverage=_coverage_rows(summary),
        coverage_note=_coverage_note(summary, recorded),
        coverage_columns=COVERAGE_COLUMNS,
    )


def _task_comparison(
    task: str, entry: TaskResult, names: dict[str, str], recorded: Recorded, split_only: bool
) -> TaskComparison:
    winner = entry.winner
    comparisons = {c.baseline: c for c in entry.comparisons}
    models = [
        ModelRow(
            key=NETWORK_KEY,
            label=f"{NETWORK_LABEL} (winner)",
            primary=False,
            test=entry.test,
            absent=recorded.absent(entry.test, f"tasks.{task}.test"),
            signature=winner.signature,
        )
    ]
    for baseline in entry.baselines:
        comparison = comparisons.get(baseline.key)
        signature = "not recorded"
        if baseline.signature:
            cv = f" ({fixed(baseline.cv_rmse)})" if baseline.cv_rmse is not None else ""
            signature = baseline.signature + cv
        tag = ""
        if comparison is not None:
            tag = "primary: the verdict" if comparison.primary else "secondary"
            if split_only:  # the verdict is the estimate's
                tag = f"{'primary' if comparison.primary else 'secondary'}, this split only"
        models.append(
            ModelRow(
                key=baseline.key,
                label=baseline.label,
                primary=baseline.primary,
                test=baseline.test,
                absent=recorded.absent(baseline.test, f"tasks.{task}.baselines.test"),
                signature=signature,
                comparison=comparison,
                tag=tag,
            )
        )
    return TaskComparison(
        task=task,
        n=entry.test.n if entry.test is not None else None,
        winner=WinnerInfo(
            signature=winner.signature,
            trial_id=winner.trial_id,
            name=names.get(winner.trial_id),
            sample=winner.sample,
            best_epoch=winner.best_epoch,
            hyperparameters=winner.hyperparameters,
            selection=winner.selection,
        ),
        models=tuple(models),
        verdict=entry.verdict,
        estimate=_estimate(entry, models),
    )


def _estimate(entry: TaskResult, models: list[ModelRow]) -> EstimateView | None:
    """The estimate over fresh splits beside the single test split's numbers, one row per
    model the estimate has (the network always)."""
    nested = entry.nested_estimate
    if nested is None:
        return None
    estimates = {m.key: m for m in nested.models}
    rows = []
    for model in models:
        found = estimates.get(model.key)
        if found is None and model.key != NETWORK_KEY:
            continue
        absent = {}
        if found is None:
            absent["estimate"] = "not estimated"
        elif found.rmse_sd is None:
            absent["rmse_sd"] = "one repeat: no sd"
        rows.append(
            EstimateRow(
                key=model.key,
                label=model.label,
                test_rmse=model.test.rmse if model.test else None,
                test_rmse_ci=model.test.rmse_ci if model.test else None,
                estimate=found,
                absent=absent,
            )
        )
    if nested.search is not None:
        s = nested.search
        search = f"{s.samples} hyper-parameter samples × {s.signatures} signatures, {s.folds} folds"
    elif nested.kind == "procedure":
        search = "none (the winner's hyper-parameters re-used)"
    else:
        search = ""
    return EstimateView(
        kind=nested.kind,
        label=nested.label,
        repeats=nested.repeats,
        search=search,
        rows=tuple(rows),
    )


def _estimate_note(summary: Summary, recorded: Recorded) -> str:
    labels = list(
        dict.fromkeys(e.nested_estimate.label for e in summary.tasks.values() if e.nested_estimate)
    )
    if not labels:
        why = (
            NOT_RECORDED
            if recorded.any_missing("nested_estimate")
            else "the sweep ran none (evaluation.outer_repeats 0)"
        )
        return f"No estimate over fresh splits: {why}."
    return (
        f"Labelled as the results say: {'; '.join(labels)}. Mean and sd of the test RMSE over "
        "the outer repeats (points), beside the single test split's RMSE [95 % CI]. With few "
        "repeats the sd is rough."
    )


def _coverage_rows(summary: Summary) -> tuple[CoverageRow, ...]:
    """The held-out split's coverage per task and for the subtotal."""
    found = [(task, entry.intervals) for task, entry in summary.tasks.items()]
    if summary.subtotal is not None:
        found.append((SUBTOTAL, summary.subtotal.intervals))
    return tuple(
        CoverageRow(task=task, coverage=coverage, level_text=percent(coverage.level))
        for task, coverage in found
        if coverage is not None
    )


def _coverage_note(summary: Summary, recorded: Recorded) -> str:
    if _coverage_rows(summary):
        note = (
            "The held-out split's coverage (one split): how often each test subject's "
            "prediction interval held the true score, with its 95 % Wilson interval, at the "
            "nominal level the sweep asked for; mean width in points."
        )
        if any(_reports(summary)):
            note += (
                " Its intervals are made as a new subject's are (the calibration from the "
                "outer folds, around the shipped model's prediction): a check on subjects the "
                "shipped models never saw, apart from the coverage over the outer folds "
                f"({INTERVALS_VIEW})."
            )
        return note
    why = NOT_RECORDED if recorded.any_missing("intervals") else "not recorded"
    return f"No per-subject intervals on the held-out split: {why}."


# --- view 5: the held-out split's subtotal -----------------------------------------------------


def subtotal_view(summary: Summary | None, predictions: list[Prediction] | None) -> SubtotalView:
    """The held-out split's subtotal as the summary records it, and each test subject's
    summed scores from test_predictions.csv's subtotal rows (its estimate is view 1's)."""
    if summary is None:
        return SubtotalView(recorded=False, note=f"The subtotal {RESULTS_LATER}.")
    recorded = Recorded(summary)
    sub = summary.subtotal
    if sub is None:
        why = NOT_RECORDED if recorded.missing("subtotal") else "the sweep scored no task"
        return SubtotalView(recorded=False, note=f"No subtotal: {why}.")
    if not held_out(summary):
        return SubtotalView(
            recorded=False,
            note=(
                f"No subtotal on held-out subjects: {NO_HELD_OUT}; the subtotal's estimate is "
                f"in {ESTIMATE_VIEW}."
            ),
        )
    value_range = tuple(sub.range)
    split = (
        f"One held-out split's numbers, apart from the estimate ({ESTIMATE_VIEW}). "
        if estimated(summary)
        else ""
    )
    note = split + (
        f"The sum of {' + '.join(sub.tasks) or 'the tasks'} per test subject with a prediction "
        f"on every one of them (range {number(value_range[0])}–{number(value_range[1])}"
        f"{'' if sub.all_five_tasks else ': not every task was run'}), in points, 95 % "
        "bootstrap intervals."
    )
    rows = [p for p in predictions or [] if p.task == SUBTOTAL]
    points = None
    points_note = ""
    if rows:
        points = SubtotalPoints(
            subject_id=tuple(p.subject_id for p in rows),
            true=tuple(p.true for p in rows),
            predicted=tuple(p.predicted for p in rows),
            lo=tuple(p.lo for p in rows),
            hi=tuple(p.hi for p in rows),
        )
    elif predictions is None:
        points_note = "Each subject's summed scores: not recorded (no test_predictions.csv)."
    else:
        points_note = (
            "Each subject's summed scores: not recorded (this sweep's test_predictions.csv "
            "predates its subtotal rows)."
        )
    test = sub.test
    line_label = ""
    if (
        test is not None
        and test.calibration_slope is not None
        and test.calibration_intercept is not None
    ):
        line_label = (
            f"calibration line: true = {fixed(test.calibration_intercept, 2)} + "
            f"{fixed(test.calibration_slope, 2)} × predicted (summary.json)"
        )
    return SubtotalView(
        recorded=True,
        note=note,
        tasks=sub.tasks,
        range=value_range,
        test=test,
        absent=recorded.absent(test, "subtotal.test"),
        auc=_auc_sentence(sub.dementia_auc),
        points=points,
        points_note=points_note,
        line_label=line_label,
    )


def _auc_sentence(auc: Any) -> str:
    if auc is None:
        return "No AUC: the sweep was given no groups file."
    if auc.auc is None:
        return (
            f"No AUC: the groups file gave {auc.n_dementia} dementia and {auc.n_other} other "
            "subjects."
        )
    left_out = f"; {auc.n_without_group} without a group left out" if auc.n_without_group else ""
    return (
        f"{'SYNTHETIC cohort: ' if auc.synthetic else ''}AUC of the predicted subtotal for "
        f"telling the dementia group from the others ({auc.n_dementia} vs {auc.n_other} "
        f"subjects{left_out}): {fixed(auc.auc)} {interval(auc.auc_ci)} (95 % bootstrap "
        "interval); no clinical cut-off is implied."
    )


# --- view 6: the data --------------------------------------------------------------------------


def data_view(summary: Summary | None, excluded_running: str | None = None) -> DataView:
    """Training N and outcomes per task, the recordings the build excluded, the error per
    group. `excluded_running`: what a running sweep's data root says (no summary yet)."""
    recorded = Recorded(summary)
    if summary is None:
        excluded = excluded_running or RESULTS_LATER
    elif summary.excluded_recordings is not None:
        excluded = f"{summary.excluded_recordings} (from summary.json)"
    elif recorded.missing("excluded_recordings"):
        excluded = NOT_RECORDED
    else:
        excluded = "unknown (the data root does not say)"
    note = (
        f"Recordings the dataset build excluded: {excluded}. Per task: the subjects the winner "
        "was trained on and tested on, and the distribution of the true sub-score in each "
        "(mean (sd) [min–max]; counts per score, training / test)."
    )
    tasks = summary.tasks if summary is not None else {}
    with_training = {t: e for t, e in tasks.items() if e.training is not None}
    if summary is None:
        note += f" Training N and outcomes: {RESULTS_LATER}."
    elif tasks and not with_training:
        missing = recorded.any_missing("training")
        note += f" Training N and outcomes: {NOT_RECORDED if missing else 'not recorded'}."
    elif tasks and not held_out(summary):
        note += (
            " The sweep held out no subject: every subject trained the shipped models (n test "
            "0); the estimate's outer folds tested each of them once per repeat."
        )
    columns = sorted(
        {
            k
            for e in with_training.values()
            for k in (*e.training.outcome_train.counts, *e.training.outcome_test.counts)
        },
        key=float,
    )
    training = tuple(
        TrainingRow(
            task=t,
            n_train=e.training.n_train,
            n_test=e.training.n_test,
            outcome_train=e.training.outcome_train,
            outcome_test=e.training.outcome_test,
            counts=tuple(_counts(e, k) for k in columns),
        )
        for t, e in with_training.items()
    )
    groups = [GroupRows(task=t, groups=e.per_group) for t, e in tasks.items() if e.per_group]
    if summary is not None and summary.subtotal is not None and summary.subtotal.per_group:
        groups.append(GroupRows(task=SUBTOTAL, groups=summary.subtotal.per_group))
    if groups:
        groups_note = (
            "The winner's error on the test subjects of each group the groups file names "
            "(points; bias: mean of predicted − true)."
        )
    elif summary is None:
        groups_note = f"The error per group {RESULTS_LATER}."
    elif recorded.any_missing("per_group"):
        groups_note = f"No error per group: {NOT_RECORDED}."
    elif tasks and not held_out(summary):
        groups_note = "No error per group on held-out subjects: the sweep held out no subject."
    else:
        groups_note = "No error per group: the sweep was given no groups file."
    return DataView(
        note=note,
        score_columns=tuple(columns),
        training=training,
        groups=tuple(groups),
        groups_note=groups_note,
    )


def _counts(entry: TaskResult, score: str) -> tuple[int, int] | None:
    """Subjects with `score` in training and test; None where the task cannot score it."""
    low, high = entry.score_range
    if not low <= float(score) <= high:
        return None
    training = entry.training
    return (training.outcome_train.counts.get(score, 0), training.outcome_test.counts.get(score, 0))


# --- view 9: calibration -----------------------------------------------------------------------


def calibration_views(
    summary: Summary | None, predictions: list[Prediction] | None, tasks: list[str]
) -> dict[str, TaskCalibration]:
    """Per task: the winner's test subjects (predicted, true) and the summary's calibration
    line, or why there is none."""
    recorded = Recorded(summary)
    out = {}
    for task in tasks:
        score_range = SCORE_RANGES.get(task)
        entry = summary.tasks.get(task) if summary is not None else None
        if entry is None:
            note = (
                f"Test predictions {RESULTS_LATER}."
                if summary is None
                else f"{task} was not scored on test subjects."
            )
            out[task] = TaskCalibration(task=task, score_range=score_range, note=note)
            continue
        signature = entry.winner.signature
        points = [p for p in predictions or [] if p.task == task and p.signature == signature]
        if not points and not held_out(summary):
            out[task] = TaskCalibration(
                task=task,
                signature=signature,
                score_range=tuple(entry.score_range),
                note=(
                    f"{task}: no test predictions to calibrate: {NO_HELD_OUT}; its estimate "
                    f"is in {ESTIMATE_VIEW}."
                ),
            )
            continue
        if not points:
            why = (
                "no test_predictions.csv"
                if predictions is None
                else "test_predictions.csv holds no rows for it"
            )
            out[task] = TaskCalibration(
                task=task,
                signature=signature,
                score_range=tuple(entry.score_range),
                note=f"{task}: the winner's per-subject test predictions: not recorded ({why}).",
            )
            continue
        test = entry.test
        slope = test.calibration_slope if test is not None else None
        intercept = test.calibration_intercept if test is not None else None
        n = len({p.subject_id for p in points})
        note = f"{task}: the winner ({signature}) on its {n} held-out test subjects. "
        line_label = ""
        if slope is not None and intercept is not None:
            line_label = (
                f"calibration line: true = {fixed(intercept, 2)} + {fixed(slope, 2)} × predicted"
            )
            note += (
                "The calibration line regresses the true score on the prediction (slope 1, "
                "intercept 0 is ideal; from summary.json)."
            )
        elif recorded.missing(f"tasks.{task}.test.calibration_slope") or test is None:
            note += f"Its calibration line: {NOT_RECORDED}."
        else:
            note += f"Its prediction is constant: the calibration slope is {UNDEFINED}."
        out[task] = TaskCalibration(
            task=task,
            signature=signature,
            n=n,
            score_range=tuple(entry.score_range),
            subject_id=tuple(p.subject_id for p in points),
            predicted=tuple(p.predicted for p in points),
            true=tuple(p.true for p in points),
            fold_sd=tuple(p.fold_sd for p in points),
            slope=slope,
            intercept=intercept,
            line_label=line_label,
            note=note,
        )
    return out
