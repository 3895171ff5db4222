"""Results tables (Ray-free): trial rows, how a trial ended, winners per task, files."""

from __future__ import annotations

import csv
import json
import math

import pytest

from mmse_model.results import (
    COMPLETED, EARLY_STOPPED, ERRORED, STOPPED_BY_ASHA, best_per_signature_task, build_summary,
    format_summary, trial_row, winners_per_task, write_json, write_trials_csv,
)

SIG_A, SIG_B = "m2_tau1_eps0.055_lmin2", "m3_tau2_eps0.1_lmin2"


def history(losses, checkpoint_every_improvement=True):
    out, best = [], math.inf
    for epoch, loss in enumerate(losses, start=1):
        record = {"epoch": float(epoch), "val/loss": loss, "val/rmse": 10 * loss, "val/rmse_sd": 0.1,
                  "val/mae": 5 * loss, "val/r2": 0.5, "val/pearson_r": 0.7, "checkpoint_path": math.nan}
        if checkpoint_every_improvement and loss < best:
            best, record["checkpoint_path"] = loss, f"/runs/t/checkpoint_{epoch}"
        out.append(record)
    return out


def row(trial, sig, task, losses, max_epochs=6, patience=2, checkpoint_uri="", **kw):
    out = trial_row(trial, sig, task, {"training.lr": 0.01}, history(losses), max_epochs=max_epochs,
                    early_stopping=(patience, 0.0), **kw)
    out.pop("checkpoint_path")
    return {**out, "checkpoint_uri": checkpoint_uri}


def test_row_takes_the_best_checkpointed_epoch():
    r = row("t1", SIG_A, "Q1", [0.5, 0.3, 0.4, 0.2, 0.25, 0.3])
    assert r["best_epoch"] == 4 and r["val/loss"] == 0.2 and r["val/rmse"] == pytest.approx(2.0)
    assert r["hp/training.lr"] == 0.01 and r["epochs_run"] == 6 and r["status"] == COMPLETED
    assert r["stopped_early"] is False


def test_row_names_the_best_checkpoint_that_still_loads():
    # Train's rotation deleted epoch 4's checkpoint (the best Tune saw): the row falls back to
    # the best epoch whose checkpoint is usable and reports that epoch's metrics.
    losses = [0.5, 0.3, 0.4, 0.2, 0.25, 0.3]
    gone = {"/runs/t/checkpoint_4"}
    r = trial_row("t1", SIG_A, "Q1", {}, history(losses), max_epochs=6, early_stopping=None,
                  checkpoint_usable=lambda record: record["checkpoint_path"] not in gone)
    assert (r["best_epoch"], r["val/loss"], r["checkpoint_path"]) == (2, 0.3, "/runs/t/checkpoint_2")
    nothing = trial_row("t1", SIG_A, "Q1", {}, history(losses), max_epochs=6, early_stopping=None,
                        checkpoint_usable=lambda record: False)
    assert nothing["checkpoint_path"] == "" and nothing["best_epoch"] == 4


def test_status_tells_asha_from_early_stopping_from_errors():
    # Two epochs without improvement at the end with patience 2: the core's early stopping.
    assert row("t", SIG_A, "Q1", [0.5, 0.3, 0.4, 0.4])["status"] == EARLY_STOPPED
    # Fewer epochs than configured while still improving: only ASHA stops a trial there.
    asha = row("t", SIG_A, "Q1", [0.5, 0.4])
    assert asha["status"] == STOPPED_BY_ASHA and asha["stopped_early"] is True
    assert row("t", SIG_A, "Q1", [0.5], errored=True)["status"] == ERRORED
    # A resumed trial reports some epochs twice; each epoch counts once.
    dup = trial_row("t", SIG_A, "Q1", {}, history([0.5, 0.4]) + history([0.5, 0.4, 0.3]),
                    max_epochs=3, early_stopping=None)
    assert dup["epochs_run"] == 3 and dup["status"] == COMPLETED


def test_rankings_stay_within_a_task():
    rows = [
        row("a1", SIG_A, "Q1", [0.10]), row("a2", SIG_A, "Q1", [0.08]),
        row("b1", SIG_B, "Q1", [0.20]),
        row("c1", SIG_A, "Q3", [0.90]), row("d1", SIG_B, "Q3", [0.50]),
    ]
    best = best_per_signature_task(rows)
    assert [(r["task"], r["signature"], r["trial_id"]) for r in best] == [
        ("Q1", SIG_A, "a2"), ("Q1", SIG_B, "b1"), ("Q3", SIG_B, "d1"), ("Q3", SIG_A, "c1")]
    winners = winners_per_task(rows)
    # Q3's winner has a loss far above every Q1 loss and still wins its own task.
    assert winners["Q1"]["trial_id"] == "a2" and winners["Q3"]["trial_id"] == "d1"


def test_summary_files_and_table(tmp_path):
    rows = [row("a1", SIG_A, "Q1", [0.10], max_epochs=1, checkpoint_uri="/runs/a1"),
            row("b1", SIG_B, "Q1", [0.2], max_epochs=1)]
    test = {"Q1": {"rmse": 1.0, "mae": 0.8, "r2": 0.4, "pearson_r": 0.7, "calibration_slope": 0.9,
                   "calibration_intercept": 0.2, "n": 24}}
    baselines = {"Q1": {"train_mean": {**test["Q1"], "rmse": 1.5, "r2": 0.0}, "ridge": test["Q1"]}}
    summary = build_summary(rows, test, baselines, experiment="exp")
    assert summary["tasks"]["Q1"]["winner"]["signature"] == SIG_A
    assert summary["tasks"]["Q1"]["winner"]["hyperparameters"] == {"training.lr": 0.01}
    assert summary["trial_status"] == {COMPLETED: 2} and len(summary["best_per_signature_task"]) == 2
    text = format_summary(summary)
    assert "network (winner)" in text and "train_mean" in text and SIG_B in text
    write_trials_csv(rows, tmp_path / "trials.csv")
    write_json(summary, tmp_path / "summary.json")
    read = list(csv.DictReader(open(tmp_path / "trials.csv")))
    assert [r["trial_id"] for r in read] == ["a1", "b1"] and "val/rmse" in read[0]
    assert json.loads((tmp_path / "summary.json").read_text())["n_trials"] == 2
