"""The training loop (no Ray): equivalences, early stopping, schedule, checkpoints, resume."""

import json

import numpy as np
import pytest
import torch

from mmse_model.compat import QTrainer
from mmse_model.core.config import Config
from mmse_model.data.dataset import build_member_tensors, load_group, make_split
from mmse_model.evaluation.metrics import MONITOR
from mmse_model.training.callbacks import (
    CallbackManager,
    CheckpointReporter,
    DirectoryReporter,
    History,
)
from mmse_model.training.checkpoint import load_checkpoint
from mmse_model.training.loop import FoldFitter, RunSpec, epoch_batches, train_run
from tests.conftest import SIG, WEAK_SIG


class Recorder:
    """A reporter that remembers (epoch, carried a checkpoint) of every report."""

    def __init__(self):
        self.calls = []

    def report(self, metrics, checkpoint_dir):
        self.calls.append((int(metrics["epoch"]), checkpoint_dir is not None))


def fitter_for(data_root, config, signatures, task="Q1", dtype=torch.float64):
    group = load_group(data_root, signatures, task, config.score_range(task))
    split = make_split(
        group.subject_ids,
        group.y,
        config.split.folds,
        config.split.test_fraction,
        config.split.seed,
    )
    folds = build_member_tensors(group, split, config.score_range(task), dtype=dtype)
    return FoldFitter(config, folds, tuple(signatures))


def fit(fitter, epochs, reporter=None, payloads=None):
    """Run the loop; `payloads` collects every checkpoint's state (epoch -> model_state)."""

    def write(directory, record):
        if payloads is not None:
            payloads[int(record["epoch"])] = {
                k: v.clone() for k, v in fitter.module.state_dict().items()
            }

    callbacks = CallbackManager([History(), CheckpointReporter(reporter or Recorder(), every=0)])
    return fitter.fit(callbacks, epochs, write)


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("decoupled", [False, True])
def test_batched_folds_equal_training_each_fold_alone(data_root, batch_norm, decoupled):
    """K fold-models trained as one batched model == K plain MLPs trained one by one with
    torch's own Adam (coupled weight decay) or AdamW (decoupled), float64."""
    config = Config().with_overrides(
        [
            "split.folds=3",
            "training.epochs=3",
            "training.batch_size=16",
            "training.lr=0.01",
            "arch.dropout=0",
            f"arch.use_batch_norm={str(batch_norm).lower()}",
            "arch.h1=16",
            "arch.h2=8",
            "regularization.grad_clip_norm=0.05",
            "regularization.weight_decay=0.01",
            f"regularization.decoupled_weight_decay={str(decoupled).lower()}",
            "lr_scheduler.enable=false",
            "early_stopping.enable=false",
        ]
    )
    fitter = fitter_for(data_root, config, [SIG])
    folds = fitter.folds
    singles = [fitter.module.fold_model(k).double() for k in range(3)]  # same initial weights
    for epoch in range(1, 4):
        fitter.train_epoch(epoch)

    counts = folds.train_counts.tolist()
    min_rows = 2 if batch_norm else 1
    optimizer_class = torch.optim.AdamW if decoupled else torch.optim.Adam
    for k, single in enumerate(singles):
        optimizer = optimizer_class(single.parameters(), lr=0.01, weight_decay=0.01)
        single.train()
        for epoch in range(1, 4):
            index, valid = epoch_batches(counts, 16, min_rows, fitter.fold_seeds, epoch)
            for j in range(index.shape[1]):
                rows = index[k, j][valid[k, j]]
                loss = torch.nn.functional.mse_loss(
                    single(folds.X_train[k, rows]), folds.y_train[k, rows]
                )
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(single.parameters(), 0.05)
                optimizer.step()
        trained = fitter.module.fold_model(k).double()
        for (name, expected), actual in zip(
            single.state_dict().items(), trained.state_dict().values()
        ):
            if name.endswith("num_batches_tracked"):
                continue
            torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-10, msg=name)


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("restore_best", [True, False])
def test_packed_signatures_equal_separate_runs_member_by_member(
    data_root, batch_norm, restore_best
):
    """Two signatures x 3 folds packed in one run == each signature trained alone, member by
    member: weights, best weights, best epochs, early stopping and learning rates (float64,
    dropout on, plateau schedule and early stopping both firing)."""
    config = Config().with_overrides(
        [
            "split.folds=3",
            "training.epochs=40",
            "training.lr=0.01",
            "arch.h1=16",
            "arch.h2=8",
            f"arch.use_batch_norm={str(batch_norm).lower()}",
            "arch.dropout=0.2",
            "lr_scheduler.patience=2",
            "lr_scheduler.cooldown=0",
            "early_stopping.patience=4",
            f"early_stopping.restore_best={str(restore_best).lower()}",
        ]
    )
    packed = fitter_for(data_root, config, [SIG, WEAK_SIG])
    packed_outcome = fit(packed, 40)
    alone = {}
    for s, signature in enumerate([SIG, WEAK_SIG]):
        fitter = fitter_for(data_root, config, [signature])
        outcome = fit(fitter, 40)
        alone[signature] = (fitter, outcome)
        rows = slice(3 * s, 3 * s + 3)
        for name, tensor in fitter.best_state.items():
            torch.testing.assert_close(
                packed.best_state[name][rows], tensor, rtol=1e-9, atol=1e-10, msg=name
            )
        # The weights at the end too (without restore_best, what predictions use): a signature
        # that stopped first keeps its weights and batch-norm statistics while the other trains.
        current = packed.module.state_dict()
        for name, tensor in fitter.module.state_dict().items():
            # (looser: up to 40 epochs of float64 rounding; the drift this catches is ~1e-2)
            torch.testing.assert_close(current[name][rows], tensor, rtol=1e-7, atol=1e-8, msg=name)
        assert packed.tracker.best_epoch[s] == fitter.tracker.best_epoch[0]
        assert packed.stop_epoch[s] == fitter.stop_epoch[0]
        assert packed.schedule.lr[s] == fitter.schedule.lr[0]
        mine, theirs = packed_outcome.signatures[s], outcome.signatures[0]
        assert mine.best_val_loss == pytest.approx(theirs.best_val_loss, rel=1e-9)
        assert (mine.best_epoch, mine.epochs_run, mine.early_stopped) == (
            theirs.best_epoch,
            theirs.epochs_run,
            theirs.early_stopped,
        )
    # One signature stopped early while the other trained on: the run is not over until
    # every signature has stopped.
    assert all(o.early_stopped for o in packed_outcome.signatures)
    assert 0 < min(packed.stop_epoch) < packed_outcome.final_epoch
    assert packed_outcome.final_epoch == max(o.final_epoch for _, o in alone.values())
    # The record's val/loss is the best signature's, what ASHA compares.
    for record in packed_outcome.history:
        assert record[MONITOR] == min(record[f"{SIG}/val/loss"], record[f"{WEAK_SIG}/val/loss"])


def test_early_stopping_restores_each_signatures_best_weights(data_root):
    config = Config().with_overrides(
        ["split.folds=3", "training.epochs=200", "early_stopping.patience=5"]
    )
    outcome = train_run(RunSpec(str(data_root), (WEAK_SIG,), "Q1", config), Recorder())
    fit_outcome = outcome.fit
    state = outcome.checkpoint.states[0]
    assert fit_outcome.final_epoch < 200 and "early stopping" in fit_outcome.stop_reason
    assert fit_outcome.final_epoch == state.best_epoch + 5 == state.stop_epoch
    # The checkpoint's metrics are those of the best epoch, and its weights reproduce them.
    best_record = fit_outcome.history[state.best_epoch - 1]
    assert state.best_metrics["rmse"] == pytest.approx(best_record["val/rmse"])
    assert state.best_val_loss == pytest.approx(best_record[MONITOR])


def test_schedule_follows_torchs_plateau_rule(data_root):
    config = Config().with_overrides(
        [
            "split.folds=3",
            "training.epochs=30",
            "training.lr=0.05",
            "early_stopping.enable=false",
            "lr_scheduler.patience=1",
            "lr_scheduler.cooldown=1",
            "lr_scheduler.factor=0.5",
        ]
    )
    outcome = train_run(RunSpec(str(data_root), (WEAK_SIG,), "Q1", config), Recorder())
    history = outcome.fit.history
    reference = torch.optim.lr_scheduler.ReduceLROnPlateau(
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.05),
        factor=0.5,
        patience=1,
        cooldown=1,
        threshold=1e-4,
        min_lr=1e-6,
    )
    expected = []
    for record in history:
        reference.step(record[MONITOR])
        expected.append(reference.get_last_lr()[0])
    assert [r["lr"] for r in history] == pytest.approx(expected)
    assert history[-1]["lr"] < 0.05 / 4  # it did reduce, more than once


def test_checkpoints_are_due_on_improvement_schedule_rungs_and_the_last_epoch(data_root):
    config = Config().with_overrides(
        [
            "split.folds=3",
            "training.epochs=12",
            "training.checkpoint_every=5",
            "early_stopping.enable=false",
            "training.lr=0.05",
        ]
    )
    reporter = Recorder()
    run = RunSpec(str(data_root), (WEAK_SIG,), "Q1", config, checkpoint_epochs=(7,))
    outcome = train_run(run, reporter)
    assert [e for e, _ in reporter.calls] == list(range(1, 13))  # every epoch is reported
    best, expected = np.inf, []
    for record in outcome.fit.history:
        epoch = int(record["epoch"])
        improved = record[MONITOR] < best
        best = min(best, record[MONITOR])
        expected.append(improved or epoch % 5 == 0 or epoch == 7 or epoch == 12)
    assert [c for _, c in reporter.calls] == expected
    assert not all(expected)  # some epochs carried none


@pytest.mark.parametrize("signatures", [(SIG,), (SIG, WEAK_SIG)])
def test_a_resumed_run_ends_where_an_uninterrupted_one_does(data_root, tmp_path, signatures):
    overrides = [
        "split.folds=3",
        "training.checkpoint_every=3",
        "arch.dropout=0.3",
        "training.lr=0.01",
        "early_stopping.patience=2",
    ]
    run6 = RunSpec(
        str(data_root), signatures, "Q1", Config().with_overrides([*overrides, "training.epochs=8"])
    )
    straight = train_run(run6, Recorder())
    run3 = RunSpec(
        str(data_root), signatures, "Q1", Config().with_overrides([*overrides, "training.epochs=3"])
    )
    train_run(run3, DirectoryReporter(tmp_path))
    payload = load_checkpoint(tmp_path / "checkpoints" / "latest")
    assert payload.epoch == 3 and payload.finished
    resumed = train_run(run6, Recorder(), resume=payload.model_copy(update={"finished": False}))
    assert [r["epoch"] for r in resumed.fit.history] == [
        float(e) for e in range(1, straight.fit.final_epoch + 1)
    ]
    for key, value in straight.checkpoint.best_model_state.items():
        torch.testing.assert_close(resumed.checkpoint.best_model_state[key], value)
    assert resumed.checkpoint.states == straight.checkpoint.states


def test_a_linear_model_is_one_of_the_family(data_root):
    config = Config().with_overrides(
        [
            "split.folds=3",
            "training.epochs=40",
            "arch.hidden_layers=0",
            "training.lr=0.02",
            "arch.dropout=0.3",
        ]
    )
    outcome = train_run(RunSpec(str(data_root), (SIG,), "Q1", config), Recorder())
    assert set(outcome.checkpoint.model_state) == {"flat"}
    assert outcome.checkpoint.model_state["flat"].shape == (3, 11)  # 10 weights and a bias each
    assert outcome.checkpoint.states[0].best_metrics["r2"] > 0.1


def test_qtrainer_keeps_the_seed_api_and_result_dict(data_root, tmp_path):
    trainer = QTrainer(
        "Q1", SIG, Config().with_overrides(["split.folds=3"]), device="cpu", out_dir=tmp_path
    )
    result = trainer.fit(data_root / SIG / "Q1.npz", epochs=5, batch_size=32)
    assert result["final_epoch"] == 5 and result["history"]["epochs"] == [1, 2, 3, 4, 5]
    # "Best" is early stopping's: an epoch improves when it beats the best by min_delta.
    best, best_epoch = np.inf, 0
    for epoch, loss in enumerate(result["history"]["val_loss"], start=1):
        if loss < best - Config().early_stopping.min_delta:
            best, best_epoch = loss, epoch
    assert (result["best_val_loss"], result["best_epoch"]) == (best, best_epoch)
    assert 1.0 < result["final_metrics"]["mean"]["rmse"] < 5.0  # points on a 0-5 task, not [0, 1]
    assert load_checkpoint(tmp_path / "checkpoints" / "latest").epoch == 5
    assert (tmp_path / "train.log").read_text().count("epoch") >= 5
    with pytest.raises(ValueError, match="file is for task Q1, trainer for Q3"):
        QTrainer("Q3", SIG, Config()).fit(data_root / SIG / "Q1.npz")


def test_mmse_train_no_ray_learns_the_planted_signal(data_root, tmp_path, capsys):
    from mmse_app.cli import main

    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--no-ray",
            "--data",
            str(data_root),
            "--sig",
            SIG,
            "--q",
            "Q1",
            "--out",
            str(out),
            "--set",
            "training.epochs=60",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "RMSE" in printed and "test" in printed
    result = json.loads((out / "result.json").read_text())
    assert result["runner"] == "in-process"
    assert result["selection"]["r2"] > 0.15  # Ridge on all 120 subjects reaches ~0.38
    assert result["test"]["r2"] > 0.1
    assert result["test"]["n"] == len(result["test_subjects"]) == 24
    # Metrics are in points: an RMSE on a 0-5 task, not a [0, 1]-scaled one.
    assert 0.3 < result["selection"]["rmse"] < 1.5
    payload = load_checkpoint(out / "model")
    assert payload.task == "Q1" and payload.signatures == [SIG]
    assert payload.standardiser_mean.shape == (5, 10)
    assert set(payload.split["test_subjects"]) == set(result["test_subjects"])
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    assert {"train/loss", "val/loss", "val/rmse", "lr", "time/epoch_s"} <= set(
        acc.Tags()["scalars"]
    )
    assert acc.Tags()["graph"]
    # A second run into the same folder is refused, and nothing there changes.
    before = (out / "result.json").read_bytes()
    assert (
        main(
            [
                "train",
                "--no-ray",
                "--data",
                str(data_root),
                "--sig",
                SIG,
                "--q",
                "Q1",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "already holds a run" in capsys.readouterr().err
    assert (out / "result.json").read_bytes() == before
