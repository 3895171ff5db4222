"""A synthetic sweep experiment folder, for the dashboard's tests, benchmark and screenshots.

It writes what a real sweep leaves in `<storage>/<name>/`, in the same formats: one Tune
trial folder per trial with `result.json` (one JSON line per epoch, the keys Tune and the
training loop write) and `params.json`; when finished, `trials.csv` (written by
`mmse_model.results.write_trials_csv`), `summary.json` (`results.build_summary`, plus, with
`extras`, the intervals, paired comparisons, provenance and `test_predictions.csv` that
newer sweeps record). Nothing is trained: learning curves are drawn from a simple law, and
ASHA's rule (stop at a rung when the loss is worse than the best 1/reduction_factor of the
losses recorded there so far, trials in order) is applied per task. The returned
`SyntheticSweep` holds the ground truth a test compares the dashboard's data with.

Deterministic: a seed, no clock.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mmse_model import atomic
from mmse_model.domain import SCORE_RANGES
from mmse_model.results import (
    COMPLETED, EARLY_STOPPED, ERRORED, STOPPED_BY_ASHA, TrialRow, build_summary, write_json, write_trials_csv,
)
from ray_jobs.rungs import rungs as asha_rungs

SIGNATURES = ("m2_tau1_eps0.055_lmin2", "m3_tau2_eps0.1_lmin2")
START = 1_795_000_000.0  # the sweep's (fixed) start, seconds since the epoch
SEARCH_SPACE = {
    "training.lr": {"loguniform": [0.0001, 0.01]},
    "arch.h1": {"choice": [16, 32, 64]},
    "arch.dropout": {"uniform": [0.0, 0.5]},
    "arch.use_batch_norm": {"choice": [False, True]},
}
BASE = {
    "arch": {"hidden_layers": 2, "h1": 64, "h2": 32, "dropout": 0.25, "use_batch_norm": False},
    "training": {"lr": 0.001, "batch_size": 16, "epochs": 8, "checkpoint_every": 0},
    "split": {"seed": 0, "folds": 3, "test_fraction": 0.2},
    "early_stopping": {"enable": True, "patience": 20, "min_delta": 0.001, "restore_best": True},
    "seed": 42,
}


def many_signatures(n: int) -> tuple[str, ...]:
    """n distinct, canonically spelt signatures (up to 36)."""
    out = [f"m{m}_tau{tau}_eps{eps}_lmin{lmin}" for m in (2, 3, 4) for tau in (1, 2, 3)
           for eps in ("0.05", "0.1") for lmin in (2, 3)]
    return tuple(out[:n])


@dataclass
class SyntheticTrial:
    trial_id: str
    folder: str
    task: str
    label: str
    signatures: list[str]
    sample: int
    hp: dict[str, Any]
    status: str  # trial level: completed, asha, early_stopping, error, running
    last_epoch: int  # the last epoch in result.json
    losses: dict[str, list[float]]  # per signature, per epoch run (epoch 1 first)
    rmses: dict[str, list[float]]


@dataclass
class SyntheticSweep:
    path: Path
    name: str
    tasks: tuple[str, ...]
    signatures: tuple[str, ...]
    rungs: tuple[int, ...]
    max_t: int
    finished: bool
    trials: list[SyntheticTrial]
    rows: list[TrialRow] = field(default_factory=list)
    summary: dict[str, Any] | None = None


def write_synthetic_sweep(
    path: str | Path,
    *,
    name: str = "synthetic",
    tasks: Sequence[str] = ("Q1", "Q3"),
    signatures: Sequence[str] = SIGNATURES,
    samples: int = 3,
    signatures_per_trial: int = 0,
    max_t: int = 8,
    grace_period: int = 2,
    reduction_factor: float = 2,
    finished: bool = True,
    running: int = 0,
    errored: int = 0,
    early_stopped: int = 1,
    extras: bool = True,
    baseline_wins: Sequence[str] = ("Q3",),
    readable_names: bool = True,
    seed: int = 0,
) -> SyntheticSweep:
    """Write a sweep of `samples` trials per (task, signature group) into `path` (created).

    `running` trials (the last ones) are still training (their last line has done false), and
    an unfinished sweep (`finished=False`) has no trials.csv, summary.json or predictions yet.
    `errored` trials end with Tune's error.txt; `early_stopped` trials end by early stopping
    before max_t (not at a rung). `extras` adds what newer sweeps record (95 % intervals,
    paired comparisons, provenance, test_predictions.csv). Each task in `baseline_wins` gets
    a baseline better than its winner on test.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rung_epochs = asha_rungs(max_t, grace_period, reduction_factor)
    size = signatures_per_trial or len(signatures)
    chunks = [list(signatures[i:i + size]) for i in range(0, len(signatures), size)]
    groups = [(c[0] if len(c) == 1 else ("all" if len(chunks) == 1 else f"g{i}"), c) for i, c in enumerate(chunks)]
    grid = [(task, label, sigs) for task in tasks for label, sigs in groups]
    quality = {sig: 0.05 + 0.04 * i / max(1, len(signatures) - 1) for i, sig in enumerate(signatures)}
    base = {**BASE, "training": {**BASE["training"], "epochs": max_t}}

    specs = []
    for sample in range(samples):
        for g, (task, label, sigs) in enumerate(grid):
            counter = sample * len(grid) + g
            hp = {"arch.dropout": round(float(rng.uniform(0, 0.5)), 4),
                  "arch.h1": int(rng.choice([16, 32, 64])),
                  "arch.use_batch_norm": bool(rng.integers(2)),
                  "training.lr": float(10 ** rng.uniform(-4, -2))}
            specs.append((counter, task, label, sigs, sample, hp))
    n_trials = len(specs)
    running_ids = set(range(n_trials - running, n_trials)) if running else set()
    errored_ids = set(range(1, 1 + 2 * errored, 2)) - running_ids
    early_ids = set(range(2, 2 + 3 * early_stopped, 3)) - running_ids - errored_ids
    early_epoch = next((e for e in range(max_t - 1, 0, -1) if e not in rung_epochs), max_t - 1)

    recorded: dict[tuple[str, int], list[float]] = {}
    trials: list[SyntheticTrial] = []
    rows: list[TrialRow] = []
    clock = START
    for counter, task, label, sigs, sample, hp in specs:
        low, high = SCORE_RANGES[task]
        score_range = high - low
        lr_penalty = 0.02 * abs(math.log10(hp["training.lr"]) + 2.5)
        tau = 1.5 + 2 * abs(math.log10(hp["training.lr"]) + 2.5)  # epochs to learn: fastest near 3e-3
        curves = {}
        for sig in sigs:
            floor = quality[sig] + lr_penalty + 0.01 * rng.random()
            curve = [floor + 0.25 * math.exp(-e / tau) + 0.004 * rng.standard_normal() for e in range(1, max_t + 1)]
            curves[sig] = [max(1e-4, v) for v in curve]
        best_per_epoch = [min(curves[s][e] for s in sigs) for e in range(max_t)]
        status, last = COMPLETED, max_t
        if counter in early_ids:
            status, last = EARLY_STOPPED, early_epoch
        for r in rung_epochs:  # ASHA, per task, trials in order
            if r > last:
                break
            losses = recorded.setdefault((task, r), [])
            losses.append(best_per_epoch[r - 1])
            if len(losses) > 1 and best_per_epoch[r - 1] > np.percentile(losses, 100 / reduction_factor):
                status, last = STOPPED_BY_ASHA, r
                break
        if counter in errored_ids:
            status, last = ERRORED, max(1, min(last, grace_period + 1))
        if counter in running_ids:
            status, last = "running", max(1, min(last, grace_period + 1))
        folder = f"{task}-{label}-{sample}" if readable_names else (
            f"run_trial_{'5eed0'}_{counter:05d}_{counter}_group=label_{label},task={task}_2026-11-29_12-00-00")
        trial_id = f"5eed0_{counter:05d}"
        config = {"task": task, "group": {"label": label, "signatures": sigs}, "hp": hp,
                  "data_root": "/data/synthetic", "base": base, "train_storage": str(path / "train_runs"),
                  "rungs": list(rung_epochs)}
        lines, total = [], 0.0
        for e in range(1, last + 1):
            best_sig = min(sigs, key=lambda s: curves[s][e - 1])
            loss = curves[best_sig][e - 1]
            step = float(rng.integers(1, 4))  # whole seconds: report times are whole seconds
            total += step
            clock += step
            record = {"epoch": float(e), "lr": hp["training.lr"], "train/loss": loss * 0.9,
                      "train/rmse": math.sqrt(loss * 0.9) * score_range, "val/loss": loss,
                      "time/epoch_s": step / 10,
                      "signatures/active": 0.0 if (status == EARLY_STOPPED and e == last) else float(len(sigs)),
                      "val/rmse": math.sqrt(loss) * score_range, "val/rmse_sd": 0.1 * math.sqrt(loss) * score_range,
                      "val/mae": 0.8 * math.sqrt(loss) * score_range}
            if len(sigs) > 1:
                for s in sigs:
                    record[f"{s}/val/loss"] = curves[s][e - 1]
                    record[f"{s}/val/rmse"] = math.sqrt(curves[s][e - 1]) * score_range
            record["checkpoint_path"] = (str(path / "train_runs" / trial_id / f"checkpoint_{e:06d}")
                                         if e in rung_epochs or e == last else None)
            record.update({"timestamp": int(clock), "checkpoint_dir_name": None,
                           "done": e == last and status != "running", "training_iteration": e,
                           "trial_id": trial_id, "date": "2026-11-29_12-00-00", "time_this_iter_s": step,
                           "time_total_s": total, "pid": 1, "hostname": "synthetic", "node_ip": "127.0.0.1",
                           "config": config, "time_since_restore": total, "iterations_since_restore": e})
            lines.append(json.dumps(record))
        trial_dir = path / folder
        trial_dir.mkdir(parents=True, exist_ok=True)
        (trial_dir / "result.json").write_text("\n".join(lines) + "\n")
        (trial_dir / "params.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        if status == ERRORED:
            (trial_dir / "error.txt").write_text("Failure # 1 (occurred at 2026-11-29_12-00-00)\nRuntimeError: synthetic\n")
        run = {s: curves[s][:last] for s in sigs}
        trials.append(SyntheticTrial(trial_id, folder, task, label, list(sigs), sample, hp, status, last, run,
                                     {s: [math.sqrt(v) * score_range for v in run[s]] for s in sigs}))
        if status == "running":
            continue
        for s in sigs:
            best = int(np.argmin(run[s])) + 1
            rmse = math.sqrt(run[s][best - 1]) * score_range
            validation = {"loss": run[s][best - 1], "rmse": rmse, "rmse_sd": 0.1 * rmse, "mae": 0.8 * rmse,
                          "mae_sd": 0.05 * rmse, "r2": 1 - run[s][best - 1] * 12, "r2_sd": 0.05,
                          "pearson_r": 0.6, "pearson_r_sd": 0.05}
            rows.append(TrialRow(trial_id=trial_id, signature=s, task=task, group=label, sample=sample,
                                 hyperparameters=hp, epochs_run=last, best_epoch=best, status=status,
                                 validation=validation,
                                 checkpoint_uri=str(path / "train_runs" / trial_id / f"checkpoint_{last:06d}")))

    sweep = SyntheticSweep(path, name, tuple(tasks), tuple(signatures), rung_epochs, max_t, finished, trials, rows)
    if not finished:
        return sweep
    write_trials_csv(rows, path / "trials.csv")
    test, baselines = {}, {}
    summary = build_summary(rows, {}, {}, experiment=name)
    for task, entry in summary["tasks"].items():
        winner_rmse = entry["winner"]["selection"]["val/rmse"] * 1.05
        test[task] = _metrics(winner_rmse, extras)
        ridge = winner_rmse * (0.7 if task in baseline_wins else 1.15)
        baselines[task] = {"train_mean": _metrics(winner_rmse * 1.4, extras), "ridge": _metrics(ridge, extras),
                           "hist_gradient_boosting": _metrics(winner_rmse * 1.25, extras)}
    summary = build_summary(rows, test, baselines, experiment=name)
    if extras:
        for task, entry in summary["tasks"].items():
            entry["comparisons"] = {
                base: {"rmse_diff": entry["test"]["rmse"] - m["rmse"],
                       "rmse_diff_ci": [entry["test"]["rmse"] - m["rmse"] - 0.1, entry["test"]["rmse"] - m["rmse"] + 0.1],
                       "better": entry["test"]["rmse"] - m["rmse"] + 0.1 < 0,
                       "worse": entry["test"]["rmse"] - m["rmse"] - 0.1 > 0}
                for base, m in entry["baselines"].items()}
        summary["provenance"] = {
            "sweep_config": {"name": name, "samples": samples, "signatures_per_trial": signatures_per_trial,
                             "search_space": SEARCH_SPACE, "search_seed": seed,
                             "asha": {"max_t": max_t, "grace_period": grace_period,
                                      "reduction_factor": reduction_factor, "brackets": 1},
                             "config": {"training": {"epochs": max_t}}},
            "data_root": "/data/synthetic", "git_commit": "0123456789abcdef0123456789abcdef01234567",
            "versions": {"ray": "2.60.0", "torch": "2.13.0+cpu", "python": "3.11.7"},
            "started": "2026-11-29T12:00:00+00:00", "ended": "2026-11-29T12:30:00+00:00"}
        summary["subtotal"] = {"note": "synthetic"}
        _write_predictions(path / "test_predictions.csv", summary, rng)
    write_json(summary, path / "summary.json")
    atomic.write_text(path / "summary.txt", f"synthetic sweep {name}\n")
    sweep.summary = summary
    return sweep


def _metrics(rmse: float, extras: bool) -> dict[str, Any]:
    out = {"rmse": rmse, "mae": 0.8 * rmse, "r2": 0.3, "pearson_r": 0.6, "calibration_slope": 0.9,
           "calibration_intercept": 0.2, "n": 20}
    if extras:
        out.update({"rmse_ci": [rmse * 0.85, rmse * 1.15], "mae_ci": [0.7 * rmse, 0.9 * rmse]})
    return out


def _write_predictions(path: Path, summary: dict[str, Any], rng: np.random.Generator) -> None:
    lines = ["task,signature,subject_id,true,predicted,fold_sd"]
    for task, entry in summary["tasks"].items():
        low, high = SCORE_RANGES[task]
        for i in range(entry["test"]["n"]):
            true = float(rng.integers(int(low), int(high) + 1))
            predicted = min(high, max(low, 0.8 * true + 0.2 * (low + high) / 2 + 0.3 * rng.standard_normal()))
            lines.append(f"{task},{entry['winner']['signature']},S{i:03d},{true},{predicted:.4f},{0.1 + 0.1 * rng.random():.4f}")
    atomic.write_text(path, "\n".join(lines) + "\n")
