"""What the Tune results dashboard shows, read from a sweep's experiment folder.

The folder (`<storage>/<name>/`, a local path or an `s3://...` URI) holds, once the sweep
has finished, `trials.csv`, `summary.json` and `test_predictions.csv`; while it runs, its
`sweep_record.json` and Tune's trial folders, each with `result.json` (one JSON line per
epoch, the trial's config on each). Each file is read by its one reader: summary.json by
`read_summary` (any version; what an older one lacks is in its `not_recorded`), the record
by `read_record`, test_predictions.csv by `sweeps.predictions.read_predictions`, trials.csv
by `rules.read_trials_csv`, a trial's config by `plan.TrialPoint.from_config`.

Rows come from trials.csv when it exists, else (the sweep is running) one provisional row
per (trial, signature) from the trial histories, their endings by `rules.row_status` with
the record's epoch limit and rungs. `page_data` returns the page's `PageData`
(`mmse_app/page_schema.py`); the test results' views are `dashboard_results.py`'s.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mmse_app import dashboard_results as results
from mmse_app.page_schema import (
    Asha,
    HeatCell,
    Heatmap,
    Item,
    Meta,
    PageData,
    ProvenanceView,
    Reached,
    StatusInfo,
    TrialCurve,
    WinnerCell,
)
from mmse_model.core import storage
from mmse_model.core.domain import SCORE_RANGES, TASK_ITEMS, TASKS
from mmse_model.core.errors import ConfigError, DataError, InputError, first_line
from mmse_model.sweeps import rules
from mmse_model.sweeps.plan import SignatureGroup, TrialPoint
from mmse_model.sweeps.predictions import Prediction, read_predictions
from mmse_model.sweeps.record import RECORD_NAME, SweepRecord, read_record
from mmse_model.sweeps.rungs import rungs as asha_rungs
from mmse_model.sweeps.summary_schema import SUMMARY_NAME, Summary, read_summary, status_counts

TRIALS_CSV, PREDICTIONS_CSV, RESULT_JSON, ERROR_TXT = (
    "trials.csv",
    "test_predictions.csv",
    "result.json",
    "error.txt",
)
# What a page keeps of each epoch's record (Tune writes the trial's whole config on every line).
_RECORD_KEYS = ("epoch", "val/loss", "val/rmse", "val/rmse_sd", "val/mae", "signatures/active")
# How each ending is drawn (colours only: what each ending is and says is `rules`').
STATUS_COLORS = {
    rules.COMPLETED: "#0969da",
    rules.EARLY_STOPPED: "#8250df",
    rules.RUNNING: "#bf8700",
    rules.ERRORED: "#cf222e",
    rules.STOPPED_BY_ASHA: "#8c959f",
}
STATE_LABELS = {
    "finished": "finished",
    "incomplete": "results incomplete",
    "running": "running (or interrupted): provisional",
}


# --- reading the folder -------------------------------------------------------------------


class Store:
    """Read-only access to an experiment folder (a local path or a storage URI) through the
    storage module. A local folder that cannot be read is bad input (exit status 2); a remote
    store that fails is `StorageUnavailable` (exit status 1)."""

    def __init__(self, uri: str):
        self.uri = uri
        self.remote = storage.is_remote(uri)
        self.name = storage.name(uri if self.remote else str(storage.local_path(uri)))

    def is_dir(self) -> bool:
        return self._call(lambda: storage.is_dir(self.uri))

    def read_text(self, name: str) -> str | None:
        """A file of the folder (`name` relative to it), or None when it is not there."""

        def read() -> str | None:
            try:
                return storage.read_text(storage.join(self.uri, name))
            except FileNotFoundError:
                return None

        return self._call(read)

    def trial_folders(self) -> list[tuple[str, bool]]:
        """(name, errored) of every sub-folder holding a `result.json`: Tune's trial folders.
        `errored`: Tune left an `error.txt` there."""

        def listing() -> list[tuple[str, bool]]:
            dirs = [e.name for e in storage.list_dir(self.uri) if e.is_dir]
            found = storage.files_present(
                self.uri, [f"{d}/{f}" for d in dirs for f in (RESULT_JSON, ERROR_TXT)]
            )
            return [(d, f"{d}/{ERROR_TXT}" in found) for d in dirs if f"{d}/{RESULT_JSON}" in found]

        return self._call(listing)

    def where(self, name: str) -> str:
        """A file's address for messages: never with a credential."""
        return storage.display(storage.join(self.uri, name))

    def _call(self, fn):
        try:
            return fn()
        except OSError as exc:  # a local folder that cannot be read (permissions)
            raise InputError(f"{self.uri}: cannot read: {first_line(exc)}") from None


@dataclass
class TrialHistory:
    """One Tune trial folder: its per-epoch records (only the keys the page uses)."""

    folder: str
    trial_id: str
    point: TrialPoint | None  # what the trial is, from its config (None: not readable)
    records: list[dict[str, Any]]  # one per epoch, sorted, the last report of an epoch kept
    errored: bool = False

    @property
    def last_epoch(self) -> int:
        return int(self.records[-1]["epoch"]) if self.records else 0

    @property
    def done(self) -> bool:
        return bool(self.records and self.records[-1].get("done"))


@dataclass
class Experiment:
    uri: str
    name: str
    rows: list[dict[str, Any]] | None  # trials.csv, typed; None while the sweep runs
    summary: Summary | None  # None while the sweep runs
    record: SweepRecord | None  # read while the sweep runs (the finished sweep's summary says it)
    predictions: list[Prediction] | None
    trials: list[TrialHistory] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.summary is not None


def load_experiment(uri: str) -> Experiment:
    """Read a sweep's experiment folder, finished or still running. A folder that is missing
    or holds neither trials.csv nor trial folders is an `InputError` (one line), and so is a
    result file its reader refuses."""
    store = Store(storage.check_location(str(uri), "EXPERIMENT"))
    if not store.is_dir():
        raise InputError(f"{uri}: no such folder")
    rows_text = store.read_text(TRIALS_CSV)
    folders = store.trial_folders()
    if rows_text is None and not folders:
        raise InputError(f"{uri}: not a sweep (no trials.csv and no trial folders)")
    summary_text = store.read_text(SUMMARY_NAME)
    summary = (
        read_summary(store.where(SUMMARY_NAME), summary_text) if summary_text is not None else None
    )
    record = None
    if summary is None:
        record_text = store.read_text(RECORD_NAME)
        if record_text is not None:
            record = read_record(store.where(RECORD_NAME), record_text)
    predictions_text = store.read_text(PREDICTIONS_CSV)
    workers = 8 if store.remote else 1
    with ThreadPoolExecutor(workers) as pool:
        texts = list(pool.map(lambda f: store.read_text(f"{f[0]}/{RESULT_JSON}") or "", folders))
    trials = [_history(name, errored, text) for (name, errored), text in zip(folders, texts)]
    return Experiment(
        uri=str(uri),
        name=store.name,
        rows=rules.read_trials_csv(rows_text, store.where(TRIALS_CSV))
        if rows_text is not None
        else None,
        summary=summary,
        record=record,
        predictions=read_predictions(store.where(PREDICTIONS_CSV), predictions_text)
        if predictions_text is not None
        else None,
        trials=sorted((t for t in trials if t.records), key=lambda t: t.trial_id),
    )


def _history(folder: str, errored: bool, text: str) -> TrialHistory:
    by_epoch: dict[int, dict[str, Any]] = {}
    config: dict[str, Any] = {}
    trial_id = ""
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line Tune is still writing
            continue
        if not isinstance(record, dict) or not rules.is_finite_number(record.get("epoch")):
            continue
        config = record.get("config") or config
        trial_id = str(record.get("trial_id") or trial_id)
        kept = {k: record[k] for k in (*_RECORD_KEYS, "done") if k in record}
        kept.update(
            {
                k: v
                for k, v in record.items()
                if k.endswith(("/val/loss", "/val/rmse")) and k.count("/") == 2
            }
        )
        # A resumed trial reports some epochs again: the last one counts.
        by_epoch[int(record["epoch"])] = kept
    return TrialHistory(
        folder,
        trial_id or folder,
        _point(config),
        [by_epoch[e] for e in sorted(by_epoch)],
        errored,
    )


def _point(config: dict[str, Any]) -> TrialPoint | None:
    """The trial's (task, group, sample, hyper-parameters); None for a config this version
    does not make (a sweep started by an earlier version: its rows say what it was)."""
    try:
        return TrialPoint.from_config(config)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


# --- the sweep's settings: ASHA, the epoch limit, the search space ---------------------------


@dataclass(frozen=True)
class Settings:
    """What the sweep was configured with, as its results or its record say: the config's
    dict (`sweep_config`) and which file it came from."""

    sweep_config: dict[str, Any] | None
    source: str | None

    @classmethod
    def of(cls, exp: Experiment) -> Settings:
        if exp.summary is not None:
            provenance = exp.summary.provenance
            if provenance is not None and provenance.sweep_config is not None:
                return cls(provenance.sweep_config, "the sweep config (summary.json's provenance)")
            return cls(None, None)
        if exp.record is not None:
            return cls(exp.record.sweep_config, "the sweep record (sweep_record.json)")
        return cls(None, None)

    def epoch_limit(self) -> int | None:
        """The training config's epoch limit (before any sample changes it)."""
        from mmse_model.core.config import Config

        if self.sweep_config is None:
            return None
        try:
            return Config.parse(self.sweep_config.get("config") or {}).training.epochs
        except (ConfigError, AttributeError):
            return None

    def asha(self) -> dict[str, Any] | None:
        """ASHA's settings, max_t filled in (0 in a sweep config: the epoch limit)."""
        from mmse_model.sweeps.config import AshaConfig

        if self.sweep_config is None:
            return None
        try:
            asha = AshaConfig.parse(self.sweep_config.get("asha") or {})
        except (ConfigError, AttributeError):
            return None
        max_t = asha.max_t or self.epoch_limit()
        if not max_t:
            return None
        return {**asha.to_dict(), "max_t": int(max_t)}

    def search_space(self) -> dict[str, Any]:
        space = (self.sweep_config or {}).get("search_space")
        return space if isinstance(space, dict) else {}


# --- the page's document ------------------------------------------------------------------


def page_data(exp: Experiment) -> PageData:
    """The document the page embeds (see `mmse_app/page_schema.py`); deterministic for one
    folder."""
    settings = Settings.of(exp)
    asha = settings.asha()
    rung_epochs = _rung_epochs(asha)
    limit = settings.epoch_limit()
    rows = _rows(exp, rung_epochs, limit)
    rows_of: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        rows_of.setdefault(row["trial_id"], []).append(row)
    trials = [
        t
        for t in (_trial(h, rows_of.get(h.trial_id), rung_epochs, limit) for h in exp.trials)
        if t is not None
    ]
    index = {t.trial_id: i for i, t in enumerate(trials)}
    for row in rows:
        i = index.get(row["trial_id"])
        row["trial"] = i
        row["name"] = trials[i].name if i is not None else _row_name(row)
    tasks = _ordered_tasks({r["task"] for r in rows} | {t.task for t in trials})
    signatures = sorted({r["signature"] for r in rows} | {s for t in trials for s in t.signatures})
    hp_keys = sorted({k[3:] for r in rows for k in r if k.startswith("hp/")})
    summary = exp.summary
    names = {t.trial_id: t.name for t in trials}
    finished = exp.finished
    state = "finished" if finished else "incomplete" if exp.rows is not None else "running"
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    for trial in trials:
        counts.setdefault(trial.status, 0)
    synthetic, source, excluded = _cohort(exp)
    return PageData(
        meta=Meta(
            name=exp.name,
            uri=storage.display(exp.uri),
            state=state,
            state_label=STATE_LABELS[state],
            finished=finished,
            has_trials_csv=exp.rows is not None,
            n_trials=len({r["trial_id"] for r in rows} | set(names)),
            n_rows=len(rows),
            metric=summary.metric if summary is not None else "val/loss",
        ),
        statuses=tuple(
            StatusInfo(
                **s,
                faint=s["status"] == rules.STOPPED_BY_ASHA,
                color=STATUS_COLORS.get(s["status"], "#999999"),
            )
            for s in status_counts(counts)
        ),
        tasks=tuple(tasks),
        task_items={t: TASK_ITEMS[t] for t in tasks if t in TASK_ITEMS},
        score_ranges={t: SCORE_RANGES[t] for t in tasks if t in SCORE_RANGES},
        signatures=tuple(signatures),
        hp_keys=tuple(hp_keys),
        hp_scale=_hp_scales(hp_keys, rows, settings.search_space()),
        columns=tuple(_columns(rows, hp_keys)),
        rows=tuple(rows),
        trials=tuple(trials),
        heatmap=_heatmap(tasks, signatures, rows, exp),
        winners=_winners(summary, rows),
        asha=_asha(asha, rung_epochs, settings.source, tasks, trials),
        curves_missing=(
            "No trial of this task has reported yet."
            if not finished or trials
            else "No learning curves: the experiment folder holds no trial folders (Tune's "
            "result.json)."
        ),
        banner=results.banner(synthetic, source),
        comparator=results.comparator_view(summary),
        estimate=results.estimate_view(summary),
        intervals=results.intervals_view(summary),
        comparison=results.comparison_view(summary, names),
        subtotal=results.subtotal_view(summary, exp.predictions),
        data=results.data_view(summary, excluded),
        calibration=results.calibration_views(summary, exp.predictions, tasks),
        provenance=_provenance(exp, asha, rung_epochs, settings.source),
        results_not_recorded=summary.not_recorded if summary is not None else (),
    )


def _rung_epochs(asha: dict[str, Any] | None) -> list[int]:
    """The epochs at which ASHA may stop a trial (`sweeps.rungs.rungs`)."""
    if asha is None:
        return []
    keys = ("max_t", "grace_period", "reduction_factor", "brackets")
    return list(asha_rungs(*(asha[k] for k in keys)))


def _rows(exp: Experiment, rungs: list[int], limit: int | None) -> list[dict[str, Any]]:
    """trials.csv's rows, or while the sweep runs, one provisional row per (trial, signature)
    from the histories (best epoch: the lowest validation loss so far)."""
    if exp.rows is not None:
        return [dict(r) for r in exp.rows]
    rows = []
    for history in exp.trials:
        point = history.point
        if point is None:
            continue
        status = _infer_status(history, rungs, _max_epochs(point, limit))
        multi = len(point.group.signatures) > 1
        for signature in point.group.signatures:
            loss_key, rmse_key = (
                (f"{signature}/val/loss", f"{signature}/val/rmse")
                if multi
                else ("val/loss", "val/rmse")
            )
            scored = [r for r in history.records if rules.is_finite_number(r.get(loss_key))]
            best = min(scored, key=lambda r: r[loss_key]) if scored else None
            row = {
                "trial_id": history.trial_id,
                "signature": signature,
                "task": point.task,
                "group": point.group.label,
                "sample": point.sample,
                **{f"hp/{k}": v for k, v in sorted(point.hyperparameters.items())},
                "epochs_run": history.last_epoch,
                "best_epoch": int(best["epoch"]) if best else 0,
                "status": status,
                "stopped_early": status in (rules.STOPPED_BY_ASHA, rules.EARLY_STOPPED),
            }
            for key in rules.VALIDATION_KEYS:
                row[f"val/{key}"] = None
            if best is not None:
                row["val/loss"], row["val/rmse"] = best[loss_key], best.get(rmse_key)
                if not multi:
                    row.update({k: best.get(k) for k in ("val/rmse_sd", "val/mae")})
            row["checkpoint_uri"] = ""
            rows.append(row)
    return rows


def _max_epochs(point: TrialPoint, limit: int | None) -> int | None:
    """The trial's epoch limit: its sample's, where the search varies it, else the sweep's."""
    epochs = point.hyperparameters.get("training.epochs")
    return int(epochs) if rules.is_finite_number(epochs) else limit


def _infer_status(history: TrialHistory, rungs: list[int], max_epochs: int | None) -> str:
    """How a trial ended, from its history alone (a running sweep has no trials.csv), by the
    rule the sweep's rows follow (`rules.row_status`)."""
    last = history.records[-1] if history.records else {}
    return rules.row_status(
        errored=history.errored,
        running=not history.done,
        stopped_early=last.get("signatures/active") == 0,
        epochs=history.last_epoch,
        max_epochs=max_epochs,
        at_rung=history.last_epoch in rungs,
    )


def _identity(
    history: TrialHistory, rows: list[dict[str, Any]] | None
) -> tuple[str, str, tuple[str, ...], int | None] | None:
    """(task, group label, signatures, sample) of a trial: its rows' (the sweep's results),
    else its config's (a running sweep); None when neither says."""
    if rows:
        first = rows[0]
        sample = first.get("sample")
        return (
            first["task"],
            str(first.get("group") or ""),
            tuple(r["signature"] for r in rows),
            sample if isinstance(sample, int) else None,
        )
    point = history.point
    if point is None:
        return None
    return point.task, point.group.label, point.group.signatures, point.sample


def _row_name(row: dict[str, Any]) -> str | None:
    """A row's trial name (`TrialPoint.name`) where the row says its group and sample."""
    if not row.get("group") or not isinstance(row.get("sample"), int):
        return None
    return TrialPoint(row["task"], SignatureGroup(row["group"], ()), row["sample"], {}).name


def _trial(
    history: TrialHistory,
    rows: list[dict[str, Any]] | None,
    rungs: list[int],
    limit: int | None,
) -> TrialCurve | None:
    identity = _identity(history, rows)
    if identity is None:
        return None
    task, group, signatures, sample = identity
    if rows:
        status = rules.trial_status(r["status"] for r in rows)
    else:
        status = _infer_status(history, rungs, _max_epochs(history.point, limit))
    records = history.records
    stop_epoch = None
    if status == rules.STOPPED_BY_ASHA:
        reached = [r for r in rungs if r <= history.last_epoch]
        stop_epoch = reached[-1] if reached else history.last_epoch
        # Reports after ASHA's stop are not drawn.
        records = [r for r in records if r["epoch"] <= stop_epoch]
    epochs = [int(r["epoch"]) for r in records]
    name = (
        TrialPoint(task, SignatureGroup(group, signatures), sample, {}).name
        if sample is not None
        else history.folder
    )
    return TrialCurve(
        trial_id=history.trial_id,
        name=name,
        folder=history.folder,
        task=task,
        group=group,
        signatures=signatures,
        sample=sample,
        status=status,
        last_epoch=history.last_epoch,
        stop_epoch=stop_epoch,
        loss=tuple(_round(r.get("val/loss")) for r in records),
        rmse=tuple(_round(r.get("val/rmse")) for r in records),
        epochs=None if epochs == list(range(1, len(epochs) + 1)) else tuple(epochs),
        sig_rmse={s: tuple(_round(r.get(f"{s}/val/rmse")) for r in records) for s in signatures}
        if len(signatures) > 1
        else None,
    )


def _asha(
    asha: dict[str, Any] | None,
    rungs: list[int],
    source: str | None,
    tasks: list[str],
    trials: list[TrialCurve],
) -> Asha:
    reached = {
        task: Reached(
            n_trials=sum(t.task == task for t in trials),
            counts=tuple(sum(t.task == task and t.last_epoch >= r for t in trials) for r in rungs),
        )
        for task in tasks
    }
    if rungs:
        note = (
            f"Dotted lines: ASHA's rungs (from {source}), with how many of the task's trials "
            "reached each. Trials ASHA stopped end faintly at their rung (×)."
        )
    elif asha is None:
        note = (
            f"ASHA's rungs: {results.NOT_RECORDED}."
            if source is None
            else f"ASHA's rungs: not readable in {source}."
        )
    else:
        note = "ASHA stops no trial before the epoch limit in this sweep: no rungs."
    return Asha(
        rungs=tuple(rungs),
        source=source if asha else None,
        max_t=asha["max_t"] if asha else None,
        grace_period=asha["grace_period"] if asha else None,
        reduction_factor=asha["reduction_factor"] if asha else None,
        brackets=asha["brackets"] if asha else None,
        reached=reached,
        note=note,
    )


def _winners(summary: Summary | None, rows: list[dict[str, Any]]) -> dict[str, WinnerCell]:
    """Each task's winner: the summary's, else (no results yet) the best row so far."""
    out = {}
    if summary is not None:
        for task, entry in summary.tasks.items():
            if entry.winner.signature:
                out[task] = WinnerCell(
                    signature=entry.winner.signature,
                    trial_id=entry.winner.trial_id,
                    provisional=False,
                )
    for task, row in rules.winners_per_task(rows, require_checkpoint=summary is not None).items():
        if task not in out:
            out[task] = WinnerCell(
                signature=row["signature"], trial_id=row["trial_id"], provisional=True
            )
    return dict(sorted(out.items()))


def _heatmap(
    tasks: list[str], signatures: list[str], rows: list[dict[str, Any]], exp: Experiment
) -> Heatmap:
    """Signature x task: the best validation RMSE (the summary's `best_per_signature_task`
    once the sweep has finished, else `rules.best_per_signature_task` of the rows so far),
    the winners, and on each winner's cell only its verdict."""
    summary = exp.summary
    if summary is not None:
        best = {
            (c.signature, c.task): (c.rmse, c.rmse_sd, c.trial_id)
            for c in summary.best_per_signature_task
        }
    else:
        best = {
            key: (row.get("val/rmse"), row.get("val/rmse_sd"), row["trial_id"])
            for key, row in rules.best_per_signature_task(rows, require_checkpoint=False).items()
        }
    winners = _winners(summary, rows)
    heads = [results.task_head(task, summary) for task in tasks]
    verdicts = {h.task: h.verdict for h in heads}
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        counts[(row["signature"], row["task"])] = counts.get((row["signature"], row["task"]), 0) + 1
    cells = []
    for signature in signatures:
        for task in tasks:
            rmse, rmse_sd, trial_id = best.get((signature, task), (None, None, None))
            winner = task in winners and winners[task].signature == signature
            verdict = verdicts.get(task) if winner else None
            cells.append(
                HeatCell(
                    signature=signature,
                    task=task,
                    n=counts.get((signature, task), 0),
                    best_val_rmse=rmse,
                    best_val_rmse_sd=rmse_sd,
                    best_trial_id=trial_id,
                    winner=winner,
                    verdict=verdict,
                    mark=results.VERDICT_MARKS.get(verdict or "", ""),
                )
            )
    return Heatmap(
        heads=tuple(heads),
        cells=tuple(cells),
        note=results.heatmap_note(summary, exp.finished),
    )


def _hp_scales(
    keys: list[str], rows: list[dict[str, Any]], space: dict[str, Any]
) -> dict[str, str]:
    """How to draw each hyper-parameter: log (loguniform), category (booleans, strings),
    else linear; without the search space, log when positive and spread over 20x or more."""
    out = {}
    for key in keys:
        values = [r.get(f"hp/{key}") for r in rows if r.get(f"hp/{key}") is not None]
        kind = next(iter(space.get(key) or {}), None)
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        spread = bool(values) and min(values) > 0 and max(values) / min(values) >= 20
        if not numeric:
            out[key] = "category"
        elif kind == "loguniform" or (kind is None and spread):
            out[key] = "log"
        else:
            out[key] = "linear"
    return out


def _cohort(exp: Experiment) -> tuple[bool | None, str | None, str | None]:
    """(SYNTHETIC, who says so, the excluded recordings in words while running): the
    summary's once the sweep has finished; while it runs, the data root's dataset.json
    (where this machine can read it)."""
    if exp.summary is not None:
        return exp.summary.synthetic, exp.summary.synthetic_source, None
    if exp.record is None:
        return None, None, None
    from mmse_model.data import manifest

    root = exp.record.data_root
    try:
        found = manifest.read_manifest(root)
        excluded = manifest.excluded_recordings(root) if found is not None else None
    except (DataError, InputError, OSError, ValueError):
        return None, None, None
    if found is None:
        return None, None, None
    where = f"the data root's {manifest.MANIFEST_NAME}"
    words = f"{excluded} (from the data root's build report)" if excluded is not None else None
    return found.synthetic, where, words


def _provenance(
    exp: Experiment, asha: dict[str, Any] | None, rungs: list[int], source: str | None
) -> ProvenanceView:
    rung_words = (
        f"{', '.join(map(str, rungs))} (max_t {asha['max_t']}; from {source})"
        if rungs and asha
        else "none"
        if asha
        else results.NOT_RECORDED
    )
    if exp.summary is not None:
        p = exp.summary.provenance
        if p is None:
            word = results.NOT_RECORDED
            return ProvenanceView(
                note=f"This sweep's provenance: {word}.",
                items=tuple(
                    Item(label=label, text=word)
                    for label in ("data root", "code version (git commit)", "started", "ended")
                ),
                config_missing=word,
            )
        versions = p.versions or {}
        items = [
            ("data root", p.data_root),
            ("data fingerprint", p.data_fingerprint),
            ("code version (git commit)", p.git_commit or "no git checkout"),
            ("Ray", versions.get("ray")),
            ("torch", versions.get("torch")),
            ("Python", versions.get("python")),
            ("started", p.started),
            ("ended", p.ended),
            ("ASHA rungs", rung_words),
        ]
        return ProvenanceView(
            note="As the sweep recorded it (summary.json).",
            items=tuple(Item(label=k, text=v or "not recorded") for k, v in items),
            config=p.sweep_config,
            config_missing="not recorded",
        )
    record = exp.record
    later = results.RESULTS_LATER
    if record is None:
        return ProvenanceView(
            note=(
                "No sweep record (sweep_record.json): this sweep was started by an earlier "
                "version of mmse; its page says more once it has finished."
            ),
            items=(),
            config_missing="not recorded",
        )
    items = [
        ("data root", record.data_root),
        ("data fingerprint", record.data_fingerprint),
        ("code version (git commit)", later),
        ("Ray, torch and Python versions", later),
        ("started", record.created),
        ("ended", "still running" if exp.rows is None else later),
        ("ASHA rungs", rung_words),
    ]
    return ProvenanceView(
        note="The sweep's record (sweep_record.json): what its trials were made from.",
        items=tuple(Item(label=k, text=v) for k, v in items),
        config=record.sweep_config,
        config_missing="not recorded",
    )


def _columns(rows: list[dict[str, Any]], hp_keys: list[str]) -> list[str]:
    """The table's columns, in trials.csv's order, with the readable name second."""
    first = ["trial_id", "name", "signature", "task", "group", "sample"]
    seen = [k for k in first if any(k in r for r in rows) or k == "name"]
    seen += [f"hp/{k}" for k in hp_keys]
    for row in rows:
        seen += [k for k in row if k not in seen and k != "trial"]
    return seen


def _ordered_tasks(tasks: Iterable[str]) -> list[str]:
    tasks = set(tasks)
    return [t for t in TASKS if t in tasks] + sorted(tasks - set(TASKS))


def _round(value: Any) -> float | None:
    return float(f"{value:.4g}") if rules.is_finite_number(value) else None
