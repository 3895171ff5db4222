"""Results tables (Ray-free): rows read from checkpoints, how a signature ended, winners, files."""

from __future__ import annotations

import json
import math

import pytest

from mmse_model.core.config import Config
from mmse_model.core.errors import CheckpointError
from mmse_model.sweeps.report import format_summary
from mmse_model.sweeps.results import choose_checkpoint, signature_rows
from mmse_model.sweeps.rules import (
    COMPLETED,
    EARLY_STOPPED,
    ERRORED,
    STOPPED_BY_ASHA,
    TrialRow,
    best_per_signature_task,
    ranked_by_task,
    read_trials_csv,
    winners_per_task,
)
from mmse_model.sweeps.summary import assemble_summary, task_result, write_results
from mmse_model.sweeps.summary_schema import Summary, comparator_record, read_summary
from mmse_model.training.checkpoint import load_checkpoint, save_checkpoint
from mmse_model.training.loop import RunSpec, train_run
from tests.conftest import SIG, WEAK_SIG
from tests.test_trainer import Recorder

SIG_A, SIG_B = SIG, WEAK_SIG


@pytest.fixture(scope="module")
def packed(data_root):
    """A run of two signatures in which the one without signal stops early."""
    config = Config().with_overrides(
        ["split.folds=3", "training.epochs=30", "training.lr=0.01", "early_stopping.patience=4"]
    )
    return train_run(RunSpec(str(data_root), (SIG_A, SIG_B), "Q1", config), Recorder()), config


def history(epochs, checkpoint_epochs):
    return [
        {
            "epoch": float(e),
            "val/loss": 1.0 / e,
            "checkpoint_path": f"/runs/t/epoch{e}" if e in checkpoint_epochs else math.nan,
        }
        for e in range(1, epochs + 1)
    ]


def test_the_newest_checkpoint_that_still_loads_is_named(tmp_path, packed):
    outcome, _ = packed
    saved = {}
    for epoch in (2, 5):
        saved[f"/runs/t/epoch{epoch}"] = outcome.checkpoint.model_copy(update={"epoch": epoch})

    def load(path):
        if path not in saved:
            raise CheckpointError(f"{path}: no such checkpoint file")
        return saved[path]

    # Epoch 8's checkpoint was rotated away (or half-written): epoch 5's is the newest usable.
    path, payload = choose_checkpoint(history(9, {2, 5, 8}), load)
    assert path == "/runs/t/epoch5" and payload.epoch == 5
    assert choose_checkpoint(history(3, set()), load) is None
    # A real file that is not a checkpoint is skipped the same way.
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "model.pt").write_bytes(b"half a file")
    save_checkpoint(tmp_path / "good", outcome.checkpoint)
    records = [
        {"epoch": 1.0, "checkpoint_path": str(tmp_path / "good")},
        {"epoch": 2.0, "checkpoint_path": str(tmp_path / "bad")},
    ]
    assert choose_checkpoint(records, load_checkpoint)[0] == str(tmp_path / "good")


def test_each_signature_gets_its_own_row_epochs_and_status(packed):
    outcome, config = packed
    payload = outcome.checkpoint
    rows = signature_rows(
        "t1",
        "Q1",
        "all",
        [SIG_A, SIG_B],
        0,
        {"training.lr": 0.01},
        outcome.fit.history,
        ("/runs/t1/ck", payload),
        max_epochs=config.training.epochs,
    )
    assert [r.signature for r in rows] == [SIG_A, SIG_B]
    for row, state in zip(rows, payload.states):
        assert row.best_epoch == state.best_epoch and row.loss == state.best_val_loss
        assert row.validation["rmse"] == state.best_metrics["rmse"]
        assert row.group == "all" and row.checkpoint_uri == "/runs/t1/ck"
        if not state.active:
            assert (row.status, row.epochs_run) == (EARLY_STOPPED, state.stop_epoch)
    assert {r.status for r in rows} <= {EARLY_STOPPED, COMPLETED}
    # The same checkpoint when the trial ended before the epoch limit with a signature still
    # training: ASHA stopped the trial; when the trial errored: an error.
    early = payload.model_copy(
        update={
            "epoch": 4,
            "states": [
                s.model_copy(update={"active": True, "stop_epoch": 0}) for s in payload.states
            ],
        }
    )
    asha = signature_rows(
        "t1",
        "Q1",
        "all",
        [SIG_A, SIG_B],
        0,
        {},
        outcome.fit.history[:4],
        ("u", early),
        max_epochs=30,
    )
    assert {(r.status, r.epochs_run) for r in asha} == {(STOPPED_BY_ASHA, 4)}
    failed = signature_rows(
        "t1", "Q1", SIG_A, [SIG_A], 0, {}, [], None, max_epochs=30, errored=True
    )
    assert (
        failed[0].status == ERRORED
        and failed[0].checkpoint_uri == ""
        and math.isnan(failed[0].loss)
    )


def row(trial, sig, task, loss, uri="/runs/x"):
    return TrialRow(
        trial_id=trial,
        signature=sig,
        task=task,
        group=sig,
        sample=0,
        hyperparameters={"training.lr": 0.01},
        epochs_run=5,
        best_epoch=3,
        status=COMPLETED,
        validation={"loss": loss, "rmse": 10 * loss, "rmse_sd": 0.1},
        checkpoint_uri=uri,
    )


def test_rankings_stay_within_a_task_and_need_a_checkpoint():
    rows = [
        row("a1", SIG_A, "Q1", 0.10),
        row("a2", SIG_A, "Q1", 0.08),
        row("b1", SIG_B, "Q1", 0.20),
        row("b0", SIG_B, "Q1", 0.01, uri=""),  # no usable checkpoint
        row("c1", SIG_A, "Q3", 0.90),
        row("d1", SIG_B, "Q3", 0.50),
    ]
    best = ranked_by_task(best_per_signature_task(rows).values())
    assert [(r.task, r.signature, r.trial_id) for r in best] == [
        ("Q1", SIG_A, "a2"),
        ("Q1", SIG_B, "b1"),
        ("Q3", SIG_B, "d1"),
        ("Q3", SIG_A, "c1"),
    ]
    winners = winners_per_task(rows)
    # Q3's winner has a loss far above every Q1 loss and still wins its own task.
    assert winners["Q1"].trial_id == "a2" and winners["Q3"].trial_id == "d1"


def summary_of(rows, tasks=None, **facts) -> Summary:
    """A summary of `rows` and scored tasks, as `summarise_sweep` assembles one."""
    facts = {
        "synthetic": False,
        "comparator": None,
        "excluded": None,
        "subtotal": None,
        "provenance": None,
        **facts,
    }
    return assemble_summary("exp", rows, tasks or {}, **facts)


def test_summary_files_and_table_round_trip(tmp_path):
    rows = [row("a1", SIG_A, "Q1", 0.10, uri="/runs/a1"), row("b1", SIG_B, "Q1", 0.2)]
    test = {
        "rmse": 1.0,
        "mae": 0.8,
        "r2": 0.4,
        "pearson_r": 0.7,
        "calibration_slope": 0.9,
        "calibration_intercept": 0.2,
        "n": 24,
    }
    baselines = {"train_mean": ({**test, "rmse": 1.5, "r2": 0.0}, {}), "ridge": (test, {})}
    summary = summary_of(
        rows, {"Q1": task_result(rows[0], (0.0, 5.0), test, baselines, {}, "ridge")}
    )
    winner = summary.tasks["Q1"].winner
    assert winner.signature == SIG_A and winner.hyperparameters == {"training.lr": 0.01}
    assert winner.checkpoint_uri == "/runs/a1" and winner.selection["val/rmse"] == pytest.approx(
        1.0
    )
    assert [(c.status, c.n) for c in summary.row_status] == [(COMPLETED, 2)]
    assert len(summary.best_per_signature_task) == 2
    text = format_summary(summary)
    assert (
        "network (winner)" in text
        and "train_mean" in text
        and SIG_B in text
        and "selection" in text
    )
    write_results(str(tmp_path), rows, summary, text, predictions=[])
    # The rows read back as the dashboard reads them: typed cells, a metric not kept is None.
    read = read_trials_csv((tmp_path / "trials.csv").read_text())
    assert read == [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.flat().items()}
        for r in rows
    ]
    assert (
        read[0]["hp/training.lr"] == 0.01
        and read[0]["sample"] == 0
        and read[0]["stopped_early"] is False
    )
    header = (tmp_path / "trials.csv").read_text().splitlines()[0].split(",")
    assert {"hp/training.lr", "val/loss", "val/rmse", "status", "checkpoint_uri"} <= set(header)
    # summary.json is the typed contract, and reads back equal.
    document = json.loads((tmp_path / "summary.json").read_text())
    assert document["format"] == "mmse-sweep-summary"
    assert document["format_version"] == Summary.FORMAT_VERSION == 2
    assert read_summary("summary.json", (tmp_path / "summary.json").read_text()) == summary
    assert (tmp_path / "summary.txt").read_text() == text + "\n"
    assert (
        tmp_path / "test_predictions.csv"
    ).read_text() == "task,signature,subject_id,true,predicted,fold_sd,lo,hi\n"


def test_summary_json_is_written_last(tmp_path):
    """summary.json's presence says the results are complete: a write that fails before it
    leaves none (the dashboard then reads the sweep as still running)."""
    rows = [row("a1", SIG_A, "Q1", 0.10)]
    summary = summary_of(rows)
    (tmp_path / "summary.txt").mkdir()  # the file written just before summary.json cannot be
    with pytest.raises(OSError):
        write_results(str(tmp_path), rows, summary, "text", predictions=[])
    assert (tmp_path / "trials.csv").is_file() and not (tmp_path / "summary.json").exists()
    (tmp_path / "summary.txt").rmdir()
    write_results(str(tmp_path), rows, summary, "text", predictions=[])
    assert json.loads((tmp_path / "summary.json").read_text())["n_rows"] == 1


def test_a_sweep_with_a_failed_trial_says_so_first():
    rows = [
        row("a1", SIG_A, "Q1", 0.10),
        row("b1", SIG_B, "Q1", math.nan, uri="").model_copy(
            update={"status": ERRORED, "epochs_run": 0}
        ),
    ]
    summary = summary_of(rows)
    assert summary.failed_trials == ("b1",)
    # Statuses in the order every view lists them, with their words.
    assert [(c.status, c.label, c.n) for c in summary.row_status] == [
        (COMPLETED, "ran every epoch", 1),
        (ERRORED, "failed", 1),
    ]
    first = format_summary(summary).splitlines()[0]
    assert first.startswith("INCOMPLETE: 1 of 2 trials failed (b1;") and "--resume" in first
    whole = summary_of([rows[0]])
    assert whole.failed_trials == () and not format_summary(whole).startswith("INCOMPLETE")


def scored_summary(synthetic: bool, failed: bool = False) -> Summary:
    """A summary as summarise_sweep leaves it, for the printed report's rules."""
    rows = [row("a1", SIG_A, "Q1", 0.10, uri="/runs/a1")]
    if failed:
        rows.append(
            row("b1", SIG_B, "Q1", math.nan, uri="").model_copy(
                update={"status": ERRORED, "epochs_run": 0}
            )
        )
    metrics = {
        "rmse": 1.0314,
        "rmse_ci": [0.8617, 1.1806],
        "mae": 0.8,
        "r2": 0.4,
        "pearson_r": 0.7,
        "calibration_slope": 0.9,
        "calibration_intercept": 0.2,
        "n": 24,
    }
    constant = {**metrics, "rmse": 1.5, "calibration_slope": None, "calibration_intercept": None}
    paired = {
        "train_mean": {
            "rmse_diff": -0.4686,
            "rmse_diff_ci": [-0.7, -0.2],
            "better": True,
            "worse": False,
        },
        "ridge": {"rmse_diff": 0.0, "rmse_diff_ci": [-0.05, 0.04], "better": False, "worse": False},
    }
    per_group = {
        "dementia": {"n": 8, "rmse": 1.2, "mae": 1.0, "bias": 0.5},
        "MCI": {"n": 8, "rmse": 1.0, "mae": 0.8, "bias": -0.1},
        "healthy": {"n": 8, "rmse": 0.9, "mae": 0.7, "bias": -0.3},
    }
    task = task_result(
        rows[0],
        (0.0, 5.0),
        metrics,
        {"train_mean": (constant, {}), "ridge": (metrics, {})},
        paired,
        "ridge",
        per_group=per_group,
    )
    subtotal = {
        "tasks": ["Q1"],
        "n": 24,
        "range": [0.0, 5.0],
        "all_five_tasks": False,
        "test": {
            "n": 24,
            "rmse": 1.03,
            "rmse_ci": [0.861, 1.181],
            "mae": 0.8,
            "mae_ci": [0.7, 0.9],
            "pearson_r": 0.7,
            "calibration_slope": None,
            "calibration_intercept": None,
        },
    }
    return summary_of(
        rows,
        {"Q1": task},
        synthetic=synthetic,
        excluded=3,
        comparator=comparator_record("ridge", 1, 0.95),
        subtotal=subtotal,
    )


def test_the_report_says_synthetic_first_and_judges_only_against_the_primary_comparator():
    lines = format_summary(scored_summary(synthetic=True)).splitlines()
    assert lines[0].startswith("SYNTHETIC cohort:")
    assert (
        format_summary(scored_summary(synthetic=True, failed=True))
        .splitlines()[1]
        .startswith("INCOMPLETE")
    )
    assert "SYNTHETIC" not in format_summary(scored_summary(synthetic=False))
    assert any("unadjusted for the 1 task" in line and "ridge (primary" in line for line in lines)
    assert (
        "recordings the data build excluded: 3 (listed in the data root's build_report.csv)"
        in lines
    )
    ridge = next(line for line in lines if line.startswith("  network - ridge:"))
    assert ridge.endswith(": no difference shown (primary: the verdict)")
    # The train mean's interval excludes 0, but it is secondary: no verdict is drawn from it.
    mean = next(line for line in lines if line.startswith("  network - train_mean:"))
    assert mean.endswith("(secondary)") and "better" not in mean
    assert lines.index(ridge) < lines.index(mean)
    groups = next(line for line in lines if "per group" in line)
    assert groups.index("healthy") < groups.index("MCI") < groups.index("dementia")


def test_intervals_carry_the_estimates_decimals_and_a_constant_has_no_calibration():
    lines = format_summary(scored_summary(synthetic=False)).splitlines()
    network = next(line for line in lines if line.startswith("  network (winner)"))
    assert "1.031  [0.862, 1.181]" in network and network.split()[-2:] == ["0.90", "0.20"]
    constant = next(line for line in lines if line.startswith("  train_mean"))
    assert constant.split()[-2:] == ["-", "-"]
    subtotal = next(line for line in lines if line.startswith("subtotal of Q1 (range 0-5)"))
    assert (
        "RMSE 1.03 [0.86, 1.18]" in subtotal
        and "calibration undefined (constant prediction)" in subtotal
    )
