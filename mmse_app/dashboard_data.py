"""What the Tune results dashboard shows, read from a sweep's experiment folder.

The folder (`<storage>/<name>/`, a local path or an `s3://...` URI) holds, once the sweep has
finished, `trials.csv`, `summary.json` and (newer sweeps) `test_predictions.csv`; while it
runs, only Tune's trial folders, each with `result.json` (one JSON line per epoch). The page
works from either: rows come from `trials.csv` when it exists, else from the trial
histories (no test numbers, statuses and best epochs provisional). Fields that newer sweeps
add to `summary.json` (95 % intervals `<metric>_ci`, paired `comparisons`, `provenance`,
and the test results `mmse_app/dashboard_results.py` reads) are shown when present and
said to be not recorded when not.

`page_data` returns the JSON document the page embeds; every number in it is plain JSON
(NaN and infinities become null).
"""

from __future__ import annotations

import csv
import io
import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

from mmse_app import dashboard_results as results
from mmse_model.core import storage
from mmse_model.core.domain import SCORE_RANGES, TASK_ITEMS, TASKS
from mmse_model.core.errors import InputError, first_line
from mmse_model.sweeps import rules

SCHEMA = 1
TRIALS_CSV, SUMMARY_JSON, PREDICTIONS_CSV, RESULT_JSON, ERROR_TXT = (
    "trials.csv",
    "summary.json",
    "test_predictions.csv",
    "result.json",
    "error.txt",
)
# What a page keeps of each epoch's record (Tune writes the trial's whole config on every line).
_RECORD_KEYS = (
    "epoch",
    "val/loss",
    "val/rmse",
    "val/rmse_sd",
    "val/mae",
    "signatures/active",
    "done",
    "timestamp",
    "time_total_s",
    "time_this_iter_s",
)


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
    config: dict[str, Any]
    records: list[dict[str, Any]]  # one per epoch, sorted, the last report of an epoch kept
    errored: bool = False

    @property
    def task(self) -> str:
        return str(self.config.get("task", ""))

    @property
    def label(self) -> str:
        """The trial's signature group label (older sweeps: one `signature` per trial)."""
        group = self.config.get("group")
        if isinstance(group, dict):
            return str(group.get("label", ""))
        return str(self.config.get("signature") or "")

    @property
    def signatures(self) -> list[str]:
        group = self.config.get("group")
        if isinstance(group, dict):
            return [str(s) for s in group.get("signatures", [])]
        return [str(self.config["signature"])] if self.config.get("signature") else []

    @property
    def last_epoch(self) -> int:
        return int(self.records[-1]["epoch"]) if self.records else 0

    @property
    def done(self) -> bool:
        return bool(self.records and self.records[-1].get("done"))

    def max_epochs(self) -> int | None:
        hp = self.config.get("hp") or {}
        if "training.epochs" in hp:
            return int(hp["training.epochs"])
        epochs = ((self.config.get("base") or {}).get("training") or {}).get("epochs")
        return int(epochs) if epochs else None


@dataclass
class Experiment:
    uri: str
    name: str
    rows: list[dict[str, Any]] | None  # trials.csv, typed; None while the sweep runs
    summary: dict[str, Any] | None
    predictions: list[dict[str, Any]] | None
    trials: list[TrialHistory] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.summary is not None


def load_experiment(uri: str) -> Experiment:
    """Read a sweep's experiment folder, finished or still running. A folder that is missing
    or holds neither trials.csv nor trial folders is an `InputError` (one line)."""
    store = Store(storage.check_location(str(uri), "EXPERIMENT"))
    if not store.is_dir():
        raise InputError(f"{uri}: no such folder")
    rows_text = store.read_text(TRIALS_CSV)
    folders = store.trial_folders()
    if rows_text is None and not folders:
        raise InputError(f"{uri}: not a sweep (no trials.csv and no trial folders)")
    summary_text = store.read_text(SUMMARY_JSON)
    summary = None
    if summary_text is not None:
        try:
            summary = json.loads(summary_text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{uri}/{SUMMARY_JSON}: not JSON ({exc})") from None
        if not isinstance(summary, dict):
            raise InputError(f"{uri}/{SUMMARY_JSON}: expected a JSON object")
    predictions_text = store.read_text(PREDICTIONS_CSV)
    workers = 8 if store.remote else 1
    with ThreadPoolExecutor(workers) as pool:
        texts = list(pool.map(lambda f: store.read_text(f"{f[0]}/{RESULT_JSON}") or "", folders))
    trials = [_history(name, errored, text) for (name, errored), text in zip(folders, texts)]
    return Experiment(
        uri=str(uri),
        name=store.name,
        rows=rules.read_trials_csv(rows_text, f"{uri}/{TRIALS_CSV}")
        if rows_text is not None
        else None,
        summary=summary,
        predictions=_read_predictions(predictions_text) if predictions_text is not None else None,
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
        kept = {k: record[k] for k in _RECORD_KEYS if k in record}
        kept.update(
            {
                k: v
                for k, v in record.items()
                if k.endswith(("/val/loss", "/val/rmse")) and k.count("/") == 2
            }
        )
        by_epoch[int(record["epoch"])] = (
            kept  # a resumed trial reports some epochs again: the last one counts
        )
    return TrialHistory(
        folder, trial_id or folder, config, [by_epoch[e] for e in sorted(by_epoch)], errored
    )


def _read_predictions(text: str) -> list[dict[str, Any]]:
    out = []
    for raw in csv.DictReader(io.StringIO(text)):
        true, predicted = (
            rules.finite_float(raw.get("true")),
            rules.finite_float(raw.get("predicted")),
        )
        if raw.get("task") and true is not None and predicted is not None:
            out.append(
                {
                    "task": raw["task"],
                    "signature": raw.get("signature") or "",
                    "subject_id": raw.get("subject_id") or "",
                    "true": true,
                    "predicted": predicted,
                    "fold_sd": rules.finite_float(raw.get("fold_sd")),
                }
            )
    return out


# --- the page's document ------------------------------------------------------------------


def page_data(exp: Experiment) -> dict[str, Any]:
    """The document the page embeds (see the module doc); deterministic for one folder."""
    summary = exp.summary or {}
    provenance = summary.get("provenance") if isinstance(summary.get("provenance"), dict) else None
    asha = _asha(provenance, exp.trials)
    rows = _rows(exp, asha["rungs"])
    by_id = {t.trial_id: i for i, t in enumerate(exp.trials)}
    row_status: dict[str, list[str]] = {}
    for row in rows:
        row["trial"] = by_id.get(row["trial_id"])
        row_status.setdefault(row["trial_id"], []).append(row["status"])
    samples = _trial_samples(exp.trials, rows)
    trials = [
        _trial(t, row_status.get(t.trial_id), samples.get(t.trial_id), asha["rungs"])
        for t in exp.trials
    ]
    for row in rows:
        row["name"] = (
            trials[row["trial"]]["name"]
            if row["trial"] is not None
            else f"{row['task']}-{row.get('group', '')}-{row['sample']}"
        )
    tasks = _ordered_tasks({r["task"] for r in rows} | {t["task"] for t in trials if t["task"]})
    signatures = sorted(
        {r["signature"] for r in rows} | {s for t in exp.trials for s in t.signatures}
    )
    hp_keys = sorted({k[3:] for r in rows for k in r if k.startswith("hp/")})
    scored = {
        task: entry
        for task, entry in (summary.get("tasks") or {}).items()
        if isinstance(entry, dict)
    }
    comparator = results.comparator(summary, len(scored))
    comparison = {
        task: results.comparison(task, entry, trials, comparator) for task, entry in scored.items()
    }
    data_root = (provenance or {}).get("data_root") or next(
        (t.config.get("data_root") for t in exp.trials if t.config.get("data_root")), None
    )
    winners = _winners(summary, rows)
    asha["reached"] = {
        task: _reached([t for t in trials if t["task"] == task], asha["rungs"]) for task in tasks
    }
    status_counts: dict[str, int] = {}
    for row in rows:
        status_counts[row["status"]] = status_counts.get(row["status"], 0) + 1
    columns = _columns(rows, hp_keys)
    return _plain(
        {
            "schema": SCHEMA,
            "meta": {
                "name": exp.name,
                "uri": _display_uri(exp.uri),
                "finished": exp.finished,
                "state": "finished" if exp.finished else "running",
                "has_trials_csv": exp.rows is not None,
                "n_trials": len({r["trial_id"] for r in rows} | {t["trial_id"] for t in trials}),
                "n_rows": len(rows),
                "status_counts": dict(sorted(status_counts.items())),
                "metric": summary.get("metric", "val/loss"),
            },
            "tasks": tasks,
            "task_items": {t: TASK_ITEMS[t] for t in tasks if t in TASK_ITEMS},
            "score_ranges": {t: list(SCORE_RANGES[t]) for t in tasks if t in SCORE_RANGES},
            "signatures": signatures,
            "hp_keys": hp_keys,
            "hp_scale": _hp_scales(hp_keys, rows, (provenance or {}).get("sweep_config") or {}),
            "columns": columns,
            "rows": rows,
            "trials": trials,
            "heatmap": _heatmap(tasks, signatures, rows, winners, comparison, exp.finished),
            "winners": winners,
            "comparison": comparison,
            "asha": asha,
            "calibration": _calibration(exp.predictions, summary, tasks),
            "comparator": comparator,
            "subtotal": results.subtotal(summary, exp.predictions),
            "synthetic": results.synthetic(summary, data_root),
            "excluded_recordings": results.excluded_recordings(summary, data_root),
            "provenance": _provenance(provenance, exp),
        }
    )


def _rows(exp: Experiment, rungs: list[int]) -> list[dict[str, Any]]:
    """trials.csv's rows, or while the sweep runs, one provisional row per (trial, signature)
    from the histories (best epoch: the lowest validation loss so far)."""
    if exp.rows is not None:
        rows = [dict(r) for r in exp.rows]
        histories = {t.trial_id: t for t in exp.trials}
        for row in rows:  # older trials.csv files have no group (or sample) column
            if not row.get("group"):
                history = histories.get(row["trial_id"])
                row["group"] = history.label if history else ""
        _number_samples(rows)
        return rows
    rows = []
    for history in exp.trials:
        status = _infer_status(history, rungs)
        multi = len(history.signatures) > 1
        for signature in history.signatures or ["?"]:
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
                "task": history.task,
                "group": history.label,
                **{f"hp/{k}": v for k, v in sorted((history.config.get("hp") or {}).items())},
                "epochs_run": history.last_epoch,
                "best_epoch": int(best["epoch"]) if best else 0,
                "status": status,
                "stopped_early": status in ("asha", "early_stopping"),
            }
            for key in rules.VALIDATION_KEYS:
                row[f"val/{key}"] = None
            if best is not None:
                row["val/loss"], row["val/rmse"] = best[loss_key], best.get(rmse_key)
                if not multi:
                    row.update({k: best.get(k) for k in ("val/rmse_sd", "val/mae")})
            row["checkpoint_uri"] = ""
            rows.append(row)
    _number_samples(rows)
    return rows


def _number_samples(rows: list[dict[str, Any]]) -> None:
    """Samples numbered within each (task, group) by trial id, as the sweep numbers them,
    where a row has none (an older trials.csv, a running sweep)."""
    if all(isinstance(r.get("sample"), int) for r in rows):
        return
    ids: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        ids.setdefault((row["task"], row.get("group", "")), []).append(row["trial_id"])
    rank = {(key, t): i for key, names in ids.items() for i, t in enumerate(sorted(set(names)))}
    for row in rows:
        if not isinstance(row.get("sample"), int):
            row["sample"] = rank[((row["task"], row.get("group", "")), row["trial_id"])]


def _infer_status(history: TrialHistory, rungs: list[int]) -> str:
    """How a trial ended, from its history alone (a running sweep has no trials.csv), by the
    rule the sweep's rows follow (`rules.row_status`)."""
    last = history.records[-1] if history.records else {}
    return rules.row_status(
        errored=history.errored,
        running=not history.done,
        stopped_early=last.get("signatures/active") == 0,
        epochs=history.last_epoch,
        max_epochs=history.max_epochs(),
        at_rung=history.last_epoch in rungs,
    )


def _trial_status(statuses: list[str] | None, history: TrialHistory, rungs: list[int]) -> str:
    """A trial's ending: from its rows' (`rules.trial_status`), else from its history."""
    return rules.trial_status(statuses) if statuses else _infer_status(history, rungs)


def _trial_samples(trials: list[TrialHistory], rows: list[dict[str, Any]]) -> dict[str, int]:
    """Each trial's sample number: its rows', else its rank by trial id within its task and
    signature group (the sweep's numbering)."""
    out = {r["trial_id"]: r["sample"] for r in rows if isinstance(r.get("sample"), int)}
    ranks: dict[tuple[str, str], list[str]] = {}
    for t in trials:
        ranks.setdefault((t.task, t.label), []).append(t.trial_id)
    for names in ranks.values():
        for i, trial_id in enumerate(sorted(names)):
            out.setdefault(trial_id, i)
    return out


def _trial(
    history: TrialHistory, statuses: list[str] | None, sample: int | None, rungs: list[int]
) -> dict[str, Any]:
    status = _trial_status(statuses, history, rungs)
    records = history.records
    stop_epoch = None
    if status == "asha":
        reached = [r for r in rungs if r <= history.last_epoch]
        stop_epoch = reached[-1] if reached else history.last_epoch
        records = [
            r for r in records if r["epoch"] <= stop_epoch
        ]  # reports after ASHA's stop: not drawn
    epochs = [int(r["epoch"]) for r in records]
    multi = len(history.signatures) > 1
    out = {
        "trial_id": history.trial_id,
        "name": f"{history.task}-{history.label}-{sample}",
        "folder": history.folder,
        "task": history.task,
        "group": history.label,
        "signatures": history.signatures,
        "sample": sample,
        "status": status,
        "last_epoch": history.last_epoch,
        "stop_epoch": stop_epoch,
        "loss": [_round(r.get("val/loss")) for r in records],
        "rmse": [_round(r.get("val/rmse")) for r in records],
    }
    if epochs != list(range(1, len(epochs) + 1)):
        out["epochs"] = epochs
    if multi:
        out["sig_rmse"] = {
            s: [_round(r.get(f"{s}/val/rmse")) for r in records] for s in history.signatures
        }
    return out


def _reached(trials: list[dict[str, Any]], rungs: list[int]) -> dict[str, Any]:
    return {
        "n_trials": len(trials),
        "counts": [sum(t["last_epoch"] >= r for t in trials) for r in rungs],
    }


def _asha(provenance: dict[str, Any] | None, trials: list[TrialHistory]) -> dict[str, Any]:
    """ASHA's rungs: from the sweep config the results record (provenance), else from the
    trials' own config (the sweep hands each trial its rungs), else none."""
    from mmse_model.core.config import Config
    from mmse_model.sweeps.config import AshaConfig
    from mmse_model.sweeps.rungs import rungs

    sweep = (provenance or {}).get("sweep_config")
    if isinstance(sweep, dict):
        try:
            asha = AshaConfig.parse(sweep.get("asha") or {})
            epochs = ((sweep.get("config") or {}).get("training") or {}).get("epochs")
            if not epochs:
                epochs = (
                    next((t.max_epochs() for t in trials if t.max_epochs()), None)
                    or Config().training.epochs
                )
            max_t = asha.max_t or int(epochs)
            return {
                "rungs": list(
                    rungs(max_t, asha.grace_period, asha.reduction_factor, asha.brackets)
                ),
                "source": "sweep config (summary.json provenance)",
                "max_t": max_t,
                "grace_period": asha.grace_period,
                "reduction_factor": asha.reduction_factor,
                "brackets": asha.brackets,
            }
        except (InputError, TypeError, ValueError):
            pass
    for trial in trials:
        if isinstance(trial.config.get("rungs"), list):
            return {
                "rungs": sorted(int(r) for r in trial.config["rungs"]),
                "source": "the trials' config",
                "max_t": trial.max_epochs(),
            }
    return {"rungs": [], "source": None, "max_t": None}


def _winners(summary: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each task's winner: the summary's, else (a running sweep) the best row so far."""
    out = {}
    for task, entry in (summary.get("tasks") or {}).items():
        winner = (entry or {}).get("winner") or {}
        if winner.get("signature"):
            out[task] = {
                "signature": winner["signature"],
                "trial_id": winner.get("trial_id"),
                "provisional": False,
            }
    for task, row in rules.winners_per_task(rows, require_checkpoint=bool(summary)).items():
        out.setdefault(
            task, {"signature": row["signature"], "trial_id": row["trial_id"], "provisional": True}
        )
    return dict(sorted(out.items()))


def _heatmap(tasks, signatures, rows, winners, comparison, finished) -> dict[str, Any]:
    best = rules.best_per_signature_task(rows, require_checkpoint=finished)
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        counts[(row["signature"], row["task"])] = counts.get((row["signature"], row["task"]), 0) + 1
    cells = []
    for signature in signatures:
        for task in tasks:
            row = best.get((signature, task))
            winner = winners.get(task, {}).get("signature") == signature
            cells.append(
                {
                    "signature": signature,
                    "task": task,
                    "n": counts.get((signature, task), 0),
                    "best_val_rmse": row.get("val/rmse") if row else None,
                    "best_val_rmse_sd": row.get("val/rmse_sd") if row else None,
                    "best_trial_id": row["trial_id"] if row else None,
                    "winner": winner,
                    # The verdict is the winner's alone: no other signature was tested against a baseline.
                    "verdict": (comparison.get(task) or {}).get("verdict") if winner else None,
                }
            )
    return {"cells": cells}


def _calibration(predictions, summary, tasks) -> dict[str, Any]:
    """Per task: the winner's test subjects, predicted against true, and the calibration
    line (true regressed on predicted: the summary's slope and intercept, else fitted)."""
    if predictions is None:
        return {}
    out = {}
    for task in tasks:
        entry = (summary.get("tasks") or {}).get(task) or {}
        signature = (entry.get("winner") or {}).get("signature")
        points = [
            p
            for p in predictions
            if p["task"] == task
            and (not p["signature"] or not signature or p["signature"] == signature)
        ]
        if not points:
            continue
        test = entry.get("test") or {}
        slope, intercept = test.get("calibration_slope"), test.get("calibration_intercept")
        source = "summary.json"
        if not (rules.is_finite_number(slope) and rules.is_finite_number(intercept)):
            slope, intercept = results.fitted_calibration(
                [p["true"] for p in points], [p["predicted"] for p in points]
            )
            source = "fitted here"
        out[task] = {
            "signature": signature or points[0]["signature"],
            "n": len({p["subject_id"] for p in points}),
            "predicted": [p["predicted"] for p in points],
            "true": [p["true"] for p in points],
            "fold_sd": [p["fold_sd"] for p in points],
            "subject_id": [p["subject_id"] for p in points],
            "slope": slope,
            "intercept": intercept,
            "line_source": source,
        }
    return out


def _hp_scales(
    keys: list[str], rows: list[dict[str, Any]], sweep: dict[str, Any]
) -> dict[str, str]:
    """How to draw each hyper-parameter: log (loguniform), category (booleans, strings),
    else linear; without the search space, log when positive and spread over 20x or more."""
    space = sweep.get("search_space") or {}
    out = {}
    for key in keys:
        values = [r.get(f"hp/{key}") for r in rows if r.get(f"hp/{key}") is not None]
        kind = next(iter(space.get(key) or {}), None)
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if not numeric:
            out[key] = "category"
        elif kind == "loguniform":
            out[key] = "log"
        elif kind is None and values and min(values) > 0 and max(values) / min(values) >= 20:
            out[key] = "log"
        else:
            out[key] = "linear"
    return out


def _provenance(recorded: dict[str, Any] | None, exp: Experiment) -> dict[str, Any]:
    if recorded is not None:
        return {"recorded": True, **recorded}
    starts = [
        t.records[0].get("timestamp", 0) - (t.records[0].get("time_this_iter_s") or 0)
        for t in exp.trials
        if rules.is_finite_number(t.records[0].get("timestamp"))
    ]
    ends = [
        t.records[-1]["timestamp"]
        for t in exp.trials
        if rules.is_finite_number(t.records[-1].get("timestamp"))
    ]
    config = exp.trials[0].config if exp.trials else {}
    return {
        "recorded": False,
        "sweep_config": None,
        "base_config": config.get("base"),
        "data_root": config.get("data_root"),
        "git_commit": None,
        "versions": None,
        "started": _iso(min(starts)) if starts else None,
        "ended": _iso(max(ends)) if ends and exp.finished else None,
        "times_from": "the trials' results (first and last reports)",
    }


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


def _display_uri(uri: str) -> str:
    """The experiment's address as the page shows it: never a credential given in the URI."""
    return storage.display(uri)


# --- small helpers -------------------------------------------------------------------------


def _round(value: Any) -> float | None:
    return float(f"{value:.4g}") if rules.is_finite_number(value) else None


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="seconds")


def _plain(value: Any) -> Any:
    """JSON without NaN or infinities (JSON.parse refuses them): null instead."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _plain(value.item())
    return value
