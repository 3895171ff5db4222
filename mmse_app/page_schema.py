"""The dashboard's page data: the one typed, versioned document an `index.html` embeds.

`mmse_app/dashboard_data.py` builds it (`page_data`) from a sweep's experiment folder, the
page writer (`mmse_app/dashboard.py`) embeds it with the project's one JSON writer, and the
page's script (`dashboard_assets/*.js`) only draws it: every rule is decided here or by the
sweep's own files before the page sees it. The page is told the words of a verdict and its
mark, the labels of baselines and statuses and the order to list them in, the order of
groups, whether a missing number is undefined or not recorded, and every sentence that names
a baseline, a comparator, an adjustment or a cohort. What it does itself is format numbers
and lay them out.

Format "mmse-dashboard-page", version 3 (version 1 had no `estimate`, version 2 no
`intervals`; a page of either is refused with the hint to rebuild). Layout:

    meta                  the sweep's name, address, state (finished, incomplete, running)
    statuses              [{status, label, n, faint, color}] in the order every view lists them
    tasks, task_items, score_ranges, signatures
    hp_keys, hp_scale     hyper-parameters searched, and how to draw each (log, linear, category)
    columns, rows         trials.csv's rows (or a running sweep's provisional ones), with
                          each row's readable `name` and index into `trials`
    trials                each trial's curve: validation loss (and RMSE) per epoch, its ending
    heatmap               signature x task: best validation RMSE, winners, verdict marks
    winners               each task's winner (provisional while the sweep runs)
    asha                  ASHA's rungs, where they come from, how many trials reached each
    curves_missing        what the curves view says for a task without a curve
    banner                the SYNTHETIC banner's sentence (null: none)
    comparator            the declared comparison's sentences (null: no test results)
    estimate              the headline: each task's and the subtotal's repeated nested
                          cross-validation (every model with its intervals, the network minus
                          each baseline, the verdict's), the looks, or why there is none
    intervals             the per-subject prediction intervals calibrated on the estimate's
                          outer folds: per task and for the subtotal their method, level,
                          guarantee, and coverage over the outer folds (overall, by band of
                          the prediction, by true score, by group, the cells short of
                          nominal), or why there are none
    comparison            the held-out split (one split's numbers, apart from the estimate):
                          the winner against the baselines per task, an older summary's
                          estimate over fresh splits, the prediction intervals' coverage
                          on its test subjects (the held-out split's, apart from `intervals`)
    subtotal              the held-out split's sum of the tasks: scores, points, AUC sentence
    data                  training N and outcomes, excluded recordings, error per group
    calibration           per task: predicted against true, and the summary's line
    provenance            config, data, code and library versions, times, as items
    results_not_recorded  what the sweep's summary did not record (its `not_recorded`)
    version, refresh_s, builder
                          the data's digest, the --serve interval, who built the page (the
                          page writer fills these; `version` leaves them out)
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field

from mmse_model.core.contract import Contract, Record
from mmse_model.core.errors import InputError
from mmse_model.sweeps.summary_schema import (
    Comparison,
    Coverage,
    CoverageCell,
    EstimateDifference,
    EstimateModel,
    EstimateScores,
    GroupError,
    Measure,
    Outcome,
    Scores,
    Verdict,
)

PAGE_FORMAT = "mmse-dashboard-page"
# The block an index.html carries its page data in.
DATA_BLOCK = re.compile(
    r'<script type="application/json" id="dashboard-data">(.*?)</script>', re.DOTALL
)
Stat = float | None
Interval = tuple[float, float] | None
# Words for statistics that are null, by field: "undefined", "not recorded (...)", ...
Absent = dict[str, str]


class Meta(Record):
    name: str
    uri: str  # never with a credential
    state: Literal["finished", "incomplete", "running"]
    state_label: str  # the badge's words
    finished: bool  # summary.json is there: the sweep's results are final
    has_trials_csv: bool
    n_trials: int
    n_rows: int
    metric: str  # what ranked the trials


class StatusInfo(Record):
    """How rows and trials ended, in the order every count, table, filter and legend lists."""

    status: str
    label: str
    n: int  # rows with this ending
    faint: bool  # drawn faintly: trials that lost at one of ASHA's rungs
    color: str


class TrialCurve(Record):
    trial_id: str
    name: str  # <task>-<group label>-<sample>
    folder: str
    task: str
    group: str
    signatures: tuple[str, ...]
    sample: int | None
    status: str
    last_epoch: int
    stop_epoch: int | None  # the rung ASHA stopped it at; its reports after that are not drawn
    loss: tuple[Stat, ...]  # validation loss per epoch (its best signature's)
    rmse: tuple[Stat, ...]
    epochs: tuple[int, ...] | None = None  # null: 1, 2, ..., len(loss)
    sig_rmse: dict[str, tuple[Stat, ...]] | None = None  # per signature, several per trial


class HeatCell(Record):
    signature: str
    task: str
    n: int  # rows (trials) of this signature on this task
    best_val_rmse: Stat = None
    best_val_rmse_sd: Stat = None
    best_trial_id: str | None = None
    winner: bool
    # The verdict is the winner's alone: no other signature was compared with a baseline.
    verdict: str | None = None  # better, level, worse
    mark: str = ""


class TaskHead(Record):
    task: str
    verdict: str | None  # the winner's result against the declared comparator
    text: str  # the mark and its words under the task's name
    title: str


class Heatmap(Record):
    heads: tuple[TaskHead, ...]
    cells: tuple[HeatCell, ...]
    note: str


class WinnerCell(Record):
    signature: str
    trial_id: str
    provisional: bool  # the best row so far of a sweep without results yet


class Reached(Record):
    n_trials: int
    counts: tuple[int, ...]  # trials that reached each rung


class Asha(Record):
    rungs: tuple[int, ...]
    source: str | None  # which file the rungs come from
    max_t: int | None = None
    grace_period: int | None = None
    reduction_factor: float | None = None
    brackets: int | None = None
    reached: dict[str, Reached] = Field(default_factory=dict)
    note: str  # what the curves' dotted lines are, or why there are none


class Item(Record):
    label: str
    text: str


class MetricColumn(Record):
    """A measure the estimate's tables show, in their order: its key in the estimate's
    scores, its heading and its decimals."""

    key: str
    label: str
    digits: int


class EstimatedModel(Record):
    """One model's estimate over the outer folds: the network first, then the baselines."""

    key: str
    label: str
    scores: EstimateScores
    absent: Absent = Field(default_factory=dict)  # measure -> words for its null value
    folds: Absent = Field(default_factory=dict)  # measure -> "defined on 8 of 10 folds"
    signatures: str = ""  # what it chose in the outer folds, in words


class EstimatedDifference(Record):
    """The network minus one baseline over the outer folds, the primary (the verdict's)
    first."""

    label: str  # "network − Ridge"
    difference: EstimateDifference
    tag: str  # the primary's (the verdict) or a secondary one's (unadjusted), in words
    mark: str = ""  # the verdict's mark: the primary's only


class AUCRow(Record):
    """A row of the subtotal's dementia AUC: the network's, the comparator's, the
    difference (with its p-value)."""

    key: str
    label: str
    measure: Measure
    signed: bool = False
    p_value: Stat = None


class HeldOutGroup(Record):
    """One held-out group of the transfer estimate (a site): its size and RMSEs, as text."""

    label: str
    cells: tuple[str, ...]  # in the order of the block's `group_columns`


class EstimateBlock(Record):
    """One task's (or the subtotal's) estimate, as the summary records it."""

    task: str  # a task, or "subtotal"
    title: str
    design: str  # repeats x outer folds, subjects, the search in each outer fold, in words
    what: str  # what it estimates (the summary's sentence)
    columns: tuple[MetricColumn, ...]  # the measures it has (no item scale for the subtotal)
    models: tuple[EstimatedModel, ...]
    differences: tuple[EstimatedDifference, ...]
    verdict: Verdict | None = None  # the task's (the primary difference's, Holm-adjusted)
    auc: tuple[AUCRow, ...] = ()
    auc_note: str = ""
    # The transfer estimate's blocks only: each held-out group and the columns' headings.
    group_columns: tuple[str, ...] = ()
    groups: tuple[HeldOutGroup, ...] = ()


class HeadlineView(Record):
    """View 1: the estimate, or why the summary has none."""

    recorded: bool
    note: str  # what the estimate is and how its intervals are made, or why there is none
    comparator_note: str = ""  # where the verdicts come from
    p_label: str = ""  # the unadjusted p-value's heading
    p_adjusted_label: str = ""  # the adjusted one's (the primary comparison's only)
    looks: str = ""  # how often the results were scored on these data
    looks_changed: bool = False  # the config changed between looks
    tasks: dict[str, EstimateBlock] = Field(default_factory=dict)
    missing: tuple[Item, ...] = ()  # tasks without an estimate, and why
    subtotal: EstimateBlock | None = None
    subtotal_note: str = ""  # why there is no subtotal estimate ("" when there is one)
    # The transfer estimate (leave-one-site-out), apart from the estimate: its heading, what
    # it is, and its blocks (tasks, then the subtotal); empty when the sweep made none.
    transfer_title: str = ""
    transfer_note: str = ""
    transfer: tuple[EstimateBlock, ...] = ()


class IntervalCell(Record):
    """One cell of the intervals' coverage over the outer folds, as the summary records it,
    with its place in the by-score plot and its mark when it falls short of nominal."""

    cell: CoverageCell
    score: float | None = None  # the true score of a per-score cell: its x in the plot
    mark: str = ""  # "short of 90 %" where the summary lists the cell as short, else ""
    absent: str = ""  # words for a null coverage (no subject in the cell)


class IntervalPart(Record):
    """Cells of one breakdown (by band of the prediction, by true score, by group), in the
    summary's order."""

    key: Literal["band", "score", "group"]
    title: str
    cells: tuple[IntervalCell, ...]


class IntervalBlock(Record):
    """One task's (or the subtotal's) prediction intervals, as the summary records them."""

    task: str  # a task, or "subtotal"
    title: str
    method: str  # how the intervals are made, in words
    level: float
    level_text: str  # the nominal level, "90 %"
    nominal_label: str  # the plot's dashed line, "nominal 90 %"
    short_label: str  # the plot's legend for cells short of nominal, "short of 90 %"
    guarantee: str  # the summary's sentence: the guarantee that holds
    calibration: str  # what a new subject's interval is made of, in words
    overall: IntervalCell
    parts: tuple[IntervalPart, ...]
    short: tuple[str, ...] = ()  # the summary's labels of the cells short of nominal
    short_text: str  # those labels in words, or that none falls short
    points: tuple[IntervalCell, ...] = ()  # the by-score plot's: the per-score cells


class IntervalsView(Record):
    """View 2: the prediction intervals' coverage over the outer folds, or why there is
    none."""

    recorded: bool
    note: str  # what the intervals and their coverage are, or why there are none
    summary_columns: tuple[str, ...] = ()  # the overview table's headings
    columns: tuple[str, ...] = ()  # each block's table's headings
    guarantee_label: str = ""
    plot_note: str = ""
    x_label: str = ""
    y_label: str = ""
    covered_label: str = ""  # the plot's legend for cells at or near nominal
    tasks: dict[str, IntervalBlock] = Field(default_factory=dict)
    missing: tuple[Item, ...] = ()  # tasks without intervals, and why
    subtotal: IntervalBlock | None = None
    subtotal_note: str = ""  # why the subtotal has none ("" when it has them)
    held_out_note: str = ""  # where the held-out split's coverage is ("" : none)


class ComparatorView(Record):
    declared: bool
    primary: str
    primary_label: str
    note: str  # the verdicts' comparison in a few sentences
    adjustment: str  # the intervals' adjustment in words ("unadjusted for the 2 tasks")


class WinnerInfo(Record):
    signature: str
    trial_id: str
    name: str | None = None
    sample: int | None = None
    best_epoch: int | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    selection: dict[str, Stat] = Field(default_factory=dict)


class ModelRow(Record):
    """One model on a task's test subjects: the network (first) or a baseline."""

    key: str
    label: str
    primary: bool  # the declared comparator
    test: Scores | None
    absent: Absent = Field(default_factory=dict)
    signature: str  # the signature it ran on, as the cell says it
    comparison: Comparison | None = None  # the network minus this baseline (paired)
    tag: str = ""  # primary or secondary, in words


class EstimateRow(Record):
    key: str
    label: str
    test_rmse: Stat = None
    test_rmse_ci: Interval = None
    estimate: EstimateModel | None = None
    absent: Absent = Field(default_factory=dict)  # rmse_sd, estimate


class EstimateView(Record):
    kind: str
    label: str
    repeats: int
    search: str  # the reduced search, in words
    rows: tuple[EstimateRow, ...]


class TaskComparison(Record):
    task: str
    n: int | None
    winner: WinnerInfo
    models: tuple[ModelRow, ...]
    verdict: Verdict | None
    estimate: EstimateView | None


class CoverageRow(Record):
    """The held-out split's coverage of a task's (or the subtotal's) intervals."""

    task: str  # a task, or "subtotal"
    coverage: Coverage
    level_text: str = ""  # the nominal level, "90 %"


class ComparisonView(Record):
    held_out: bool  # the sweep held out test subjects: the view's tables and plot are drawn
    note: str  # with no held-out split, the one line that says so
    comparator_note: str = ""  # the held-out split's comparison, where it is not the estimate's
    any_interval: bool  # draw error bars: some test RMSE has its interval
    tasks: dict[str, TaskComparison]
    estimate_note: str
    coverage: tuple[CoverageRow, ...]
    coverage_note: str
    coverage_columns: tuple[str, ...] = ()  # the coverage table's headings


class SubtotalPoints(Record):
    """Each test subject's summed true and predicted scores, with the subtotal's interval."""

    subject_id: tuple[str, ...]
    true: tuple[float, ...]
    predicted: tuple[float, ...]
    lo: tuple[Stat, ...]
    hi: tuple[Stat, ...]


class SubtotalView(Record):
    recorded: bool
    note: str
    tasks: tuple[str, ...] = ()
    range: tuple[float, float] | None = None
    test: Scores | None = None
    absent: Absent = Field(default_factory=dict)
    auc: str = ""  # the dementia AUC's sentence
    points: SubtotalPoints | None = None
    points_note: str = ""
    line_label: str = ""  # the calibration line's legend ("" : none drawn)


class TrainingRow(Record):
    task: str
    n_train: int
    n_test: int
    outcome_train: Outcome
    outcome_test: Outcome
    counts: tuple[tuple[int, int] | None, ...]  # per score column: train, test; null: impossible


class GroupRows(Record):
    task: str  # a task, or "subtotal"
    groups: tuple[GroupError, ...]  # in the order groups are listed (by severity)


class DataView(Record):
    note: str
    score_columns: tuple[str, ...]
    training: tuple[TrainingRow, ...]
    groups: tuple[GroupRows, ...]
    groups_note: str


class TaskCalibration(Record):
    task: str
    signature: str | None = None
    n: int = 0  # test subjects
    score_range: tuple[float, float] | None = None
    subject_id: tuple[str, ...] = ()
    predicted: tuple[float, ...] = ()
    true: tuple[float, ...] = ()
    fold_sd: tuple[Stat, ...] = ()
    slope: Stat = None
    intercept: Stat = None
    line_label: str = ""  # the calibration line's legend ("": none drawn)
    note: str


class ProvenanceView(Record):
    note: str
    items: tuple[Item, ...]
    config: dict[str, Any] | None = None
    config_missing: str = ""


class Builder(Record):
    built: str
    python: str
    plotlyjs: str


class PageData(Contract):
    FORMAT: ClassVar[str] = PAGE_FORMAT
    FORMAT_VERSION: ClassVar[int] = 3
    REBUILD_HINT: ClassVar[str] = "rebuild the page with `mmse dashboard EXPERIMENT`"

    format: Literal["mmse-dashboard-page"] = "mmse-dashboard-page"
    format_version: int = 3
    meta: Meta
    statuses: tuple[StatusInfo, ...]
    tasks: tuple[str, ...]
    task_items: dict[str, str]
    score_ranges: dict[str, tuple[float, float]]
    signatures: tuple[str, ...]
    hp_keys: tuple[str, ...]
    hp_scale: dict[str, Literal["log", "linear", "category"]]
    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]
    trials: tuple[TrialCurve, ...]
    heatmap: Heatmap
    winners: dict[str, WinnerCell]
    asha: Asha
    curves_missing: str  # what the curves view says for a task without any curve
    banner: str | None = None
    comparator: ComparatorView | None = None
    estimate: HeadlineView
    intervals: IntervalsView
    comparison: ComparisonView
    subtotal: SubtotalView
    data: DataView
    calibration: dict[str, TaskCalibration]
    provenance: ProvenanceView
    results_not_recorded: tuple[str, ...] = ()
    # Filled by the page writer; not part of the data's version.
    version: str = ""
    refresh_s: float = 5.0
    builder: Builder | None = None

    @classmethod
    def file_kind(cls) -> str:
        return "a dashboard's page data"


# What the data's version leaves out: who built the page, and when.
UNVERSIONED = frozenset({"version", "refresh_s", "builder"})


def page_json(text: str, where: str) -> str:
    """The page data's JSON: `text` itself, or the block an index.html embeds it in."""
    if not text.lstrip().startswith("<"):
        return text
    match = DATA_BLOCK.search(text)
    if match is None:
        raise InputError(f"{where}: no dashboard data in this page")
    return match.group(1)


def read_page_data(where: str, text: str) -> PageData:
    """The page data of `text`: its JSON, or an index.html that embeds it."""
    return PageData.read(where, page_json(text, where))
