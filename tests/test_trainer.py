import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mmse_model.callbacks import CallbackManager, DirectoryReporter, EarlyStopping, History
from mmse_model.checkpoint import load_checkpoint
from mmse_model.config import Config
from mmse_model.data import build_fold_tensors, load_task_data, make_split
from mmse_model.metrics import MONITOR
from mmse_model.trainer import FoldFitter, QTrainer, RunSpec, epoch_batches, train_task

from tests.conftest import SIG, WEAK_SIG


def fold_tensors(data_root, config, sig=SIG, task="Q1", dtype=torch.float64):
    score_range = config.score_range(task)
    data = load_task_data(data_root / sig / f"{task}.npz", score_range)
    split = make_split(data.subject_ids, data.y, config.training.folds, config.training.test_fraction, config.seed)
    return build_fold_tensors(data, split, score_range, dtype=dtype)


def no_checkpoint(directory, record):
    raise AssertionError("no checkpoint expected")


@pytest.mark.parametrize("batch_norm", [False, True])
def test_batched_folds_equal_training_each_fold_alone(data_root, batch_norm):
    config = Config().with_overrides([
        "training.folds=3", "training.epochs=3", "training.batch_size=16", "training.lr=0.01",
        "arch.dropout=0", f"arch.use_batch_norm={str(batch_norm).lower()}", "arch.h1=16", "arch.h2=8",
        "regularization.grad_clip_norm=0.05", "lr_scheduler.enable=false", "early_stopping.enable=false",
    ])
    folds = fold_tensors(data_root, config)
    fitter = FoldFitter(config, folds)
    singles = [fitter.module.fold_model(k).double() for k in range(3)]  # same initial weights
    fitter.fit(CallbackManager([History()]), config.training.epochs, no_checkpoint)

    counts = folds.train_counts.tolist()
    min_rows = 2 if batch_norm else 1
    for k, single in enumerate(singles):
        optimizer = torch.optim.Adam(single.parameters(), lr=0.01, weight_decay=config.regularization.weight_decay)
        single.train()
        for epoch in range(1, 4):
            index, valid = epoch_batches(counts, 16, min_rows, fitter.fold_seeds, epoch)
            for j in range(index.shape[1]):
                rows = index[k, j][valid[k, j]]
                loss = torch.nn.functional.mse_loss(single(folds.X_train[k, rows]), folds.y_train[k, rows])
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(single.parameters(), 0.05)
                optimizer.step()
        trained = fitter.module.fold_model(k).double()
        for (name, expected), actual in zip(single.state_dict().items(), trained.state_dict().values()):
            if name.endswith("num_batches_tracked"):
                continue
            torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-10, msg=name)


def test_early_stopping_decision_and_restore():
    model = torch.nn.Linear(1, 1)
    es = EarlyStopping(patience=2, min_delta=0.1)
    losses = [1.0, 0.5, 0.45, 0.6, 0.3]
    stops = []
    for epoch, loss in enumerate(losses, start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        es.on_epoch_end(epoch, {MONITOR: loss}, model=model)
        stops.append(es.should_stop()[0])
    # 0.45 is not 0.1 better than 0.5: epochs 3 and 4 are waits, so training stops after 4.
    assert stops == [False, False, False, True, False]
    assert es.best_epoch == 5 and es.best == 0.3
    es2 = EarlyStopping(patience=2, min_delta=0.1)
    for epoch, loss in enumerate(losses[:4], start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        es2.on_epoch_end(epoch, {MONITOR: loss}, model=model)
    es2.on_train_end(model=model)
    assert model.weight.item() == 2.0  # the weights of the best epoch


def test_training_without_signal_stops_early_and_restores_best(data_root):
    config = Config().with_overrides(["training.folds=3", "training.epochs=200", "early_stopping.patience=5"])
    run = RunSpec(str(data_root), WEAK_SIG, "Q1", config)
    outcome = train_task(run, _Null())
    assert outcome.fit.final_epoch < 200
    assert outcome.fit.final_epoch == outcome.fit.best_epoch + 5
    assert "did not improve" in outcome.fit.stop_reason
    # The final metrics come from the restored best weights.
    best_record = outcome.fit.history[outcome.fit.best_epoch - 1]
    assert outcome.final_metrics["mean"]["rmse"] == pytest.approx(best_record["val/rmse"])


class _Null:
    def __init__(self):
        self.calls = []

    def report(self, metrics, checkpoint_dir):
        self.calls.append((metrics["epoch"], checkpoint_dir is not None))


def test_scheduler_follows_mean_validation_loss(data_root):
    config = Config().with_overrides([
        "training.folds=3", "training.epochs=30", "training.lr=0.05", "early_stopping.enable=false",
        "lr_scheduler.patience=1", "lr_scheduler.cooldown=0", "lr_scheduler.factor=0.5",
    ])
    outcome = train_task(RunSpec(str(data_root), WEAK_SIG, "Q1", config), _Null())
    history = outcome.fit.history
    reference = torch.optim.lr_scheduler.ReduceLROnPlateau(
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.05),
        factor=0.5, patience=1, cooldown=0, threshold=1e-4, min_lr=1e-6,
    )
    expected = []
    for record in history:
        reference.step(record[MONITOR])
        expected.append(reference.get_last_lr()[0])
    assert [r["lr"] for r in history] == pytest.approx(expected)
    assert history[-1]["lr"] < 0.05 / 4  # it did reduce, more than once


def test_reports_every_epoch_with_checkpoints_on_improvement_and_schedule(data_root):
    config = Config().with_overrides(["training.folds=3", "training.epochs=12", "training.checkpoint_every=5",
                                      "early_stopping.enable=false"])
    reporter = _Null()
    outcome = train_task(RunSpec(str(data_root), SIG, "Q1", config), reporter)
    assert [e for e, _ in reporter.calls] == list(range(1, 13))
    history = outcome.fit.history
    best, expected = math.inf, []
    for record in history:
        improved = record[MONITOR] < best
        best = min(best, record[MONITOR])
        expected.append(improved or record["epoch"] % 5 == 0)
    assert [c for _, c in reporter.calls] == expected


def test_resumed_run_ends_where_an_uninterrupted_one_does(data_root, tmp_path):
    overrides = ["training.folds=3", "training.checkpoint_every=3", "arch.dropout=0.3", "training.lr=0.01"]
    run6 = RunSpec(str(data_root), SIG, "Q1", Config().with_overrides([*overrides, "training.epochs=6"]))
    straight = train_task(run6, _Null())
    run3 = RunSpec(str(data_root), SIG, "Q1", Config().with_overrides([*overrides, "training.epochs=3"]))
    train_task(run3, DirectoryReporter(tmp_path))
    payload = load_checkpoint(tmp_path / "checkpoints" / "latest")
    assert payload["epoch"] == 3
    resumed = train_task(run6, _Null(), resume=payload)
    assert [r["epoch"] for r in resumed.fit.history] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    for key, value in straight.checkpoint["model_state"].items():
        torch.testing.assert_close(resumed.checkpoint["model_state"][key], value)
    assert resumed.checkpoint["optimizer_state"]["state"].keys() == straight.checkpoint["optimizer_state"]["state"].keys()


def test_qtrainer_keeps_the_seed_api_and_result_dict(data_root, tmp_path):
    trainer = QTrainer("Q1", SIG, Config().with_overrides(["training.folds=3"]), device="cpu", out_dir=tmp_path)
    result = trainer.fit(data_root / SIG / "Q1.npz", epochs=5, batch_size=32)
    assert {"success", "total_time", "best_val_loss", "final_epoch", "final_metrics", "history"} <= set(result)
    assert result["success"] is True and result["final_epoch"] == 5
    assert result["history"]["epochs"] == [1, 2, 3, 4, 5]
    assert len(result["final_metrics"]["per_fold"]) == 3
    assert result["best_val_loss"] == min(result["history"]["val_loss"])
    assert (tmp_path / "checkpoints" / "best" / "model.pt").is_file()
    assert (tmp_path / "train.log").read_text().count("epoch") >= 5


def test_mmse_train_no_ray_learns_the_planted_signal(data_root, tmp_path, capsys):
    from mmse_model.cli import main

    out = tmp_path / "run"
    code = main(["train", "--no-ray", "--data", str(data_root), "--sig", SIG, "--q", "Q1", "--out", str(out),
                 "--set", "training.epochs=60"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "RMSE" in printed and "test" in printed
    result = json.loads((out / "result.json").read_text())
    assert result["cv"]["mean"]["r2"] > 0.15  # Ridge on all 120 subjects reaches ~0.38
    assert result["test"]["r2"] > 0.1
    assert result["test"]["n"] == len(result["test_subjects"]) == 24
    # Metrics are in points: an RMSE on a 0-5 task, not a [0, 1]-scaled one.
    assert 0.3 < result["cv"]["mean"]["rmse"] < 1.5
    payload = load_checkpoint(out / "model")
    assert payload["task"] == "Q1" and payload["signature"] == SIG
    assert payload["standardiser"]["mean"].shape == (5, 10)
    assert set(payload["split"]["test_subjects"]) == set(result["test_subjects"])
    events = list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert events
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    assert {"train/loss", "val/loss", "val/rmse", "lr"} <= set(acc.Tags()["scalars"])
    assert acc.Tags()["graph"]
