"""The original design's public names (mmse_model.compat), used as its document uses them."""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from sklearn.metrics import (
    explained_variance_score,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
)
from torch import nn

from mmse_model.compat import (
    EarlyStopping,
    EyeDataset,
    MetricsCalculator,
    ModelCheckpoint,
    QTrainer,
    calculate_regression_metrics,
    make_loaders,
)
from mmse_model.core import atomic
from mmse_model.core.config import Config
from mmse_model.core.errors import DataError
from mmse_model.core.identity import BUILDER_VERSION, BuildParams, DatasetIdentity
from mmse_model.data.dataset import make_split
from mmse_model.training.model import MLP
from tests.conftest import SIG, WEAK_SIG

# The original design's config.yaml: its keys, `training.val_split` included.
ORIGINAL_CONFIG = {
    "arch": {"h1": 32, "h2": 16, "dropout": 0.1, "use_batch_norm": False},
    "training": {"lr": 0.005, "batch_size": 16, "epochs": 100, "val_split": 0.3},
    "regularization": {"weight_decay": 1e-4, "grad_clip_norm": 1.0},
    "lr_scheduler": {"enable": True, "factor": 0.5, "patience": 8, "min_lr": 1e-6},
    "seed": 42,
}


def test_the_basic_training_example(data_root, tmp_path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(ORIGINAL_CONFIG))
    with open(tmp_path / "config.yaml") as handle:
        trainer = QTrainer(
            q_tag="Q1",
            rqa_sig="m2_tau1_eps0.055_lmin2",
            config=yaml.safe_load(handle),
            device="cpu",
        )
    assert trainer.config.split.folds == 3  # the config's val_split 0.3: K = round(1 / 0.3)
    result = trainer.fit(
        npz_path=Path(data_root / "m2_tau1_eps0.055_lmin2" / "Q1.npz"),
        epochs=40,
        batch_size=16,
        val_split=0.3,
    )
    assert f"{result['best_val_loss']:.4f}" == f"{trainer.best_val_loss:.4f}"
    assert result["success"] and trainer.outcome.checkpoint.folds == 3
    history = result["history"]
    assert (
        history["epochs"]
        == list(range(1, result["final_epoch"] + 1))
        == list(range(1, trainer.current_epoch + 1))
    )
    assert result["best_val_loss"] == history["val_loss"][result["best_epoch"] - 1]
    assert result["best_val_loss"] <= min(history["val_loss"]) + Config().early_stopping.min_delta
    best = result["final_metrics"]["mean"]
    # In points on Q1's 0-5 range (a [0, 1]-scaled RMSE would be below 0.3), and learned.
    assert 0.4 < best["rmse"] < 1.5 and best["r2"] > 0.15
    assert best["mape"] == pytest.approx(100 * best["mae"] / 5, rel=0.05)


def test_the_custom_config_example_is_refused_for_a_label_that_is_not_the_datas_signature(
    data_root, tmp_path
):
    custom_config = {
        "arch": {"h1": 64, "h2": 32, "dropout": 0.3, "use_batch_norm": True},
        "training": {"lr": 0.0005, "batch_size": 32},
        "lr_scheduler": {"enable": True, "factor": 0.7, "patience": 15},
    }
    # A file written before identity existed: its path says what it is.
    with np.load(data_root / SIG / "Q3.npz", allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in ("X", "y", "subject_id", "feature_names")}
    npz_path = atomic.write_npz(tmp_path / SIG / "Q3.npz", arrays)
    trainer = QTrainer("Q3", "custom_config", custom_config)
    with pytest.raises(
        DataError,
        match=rf"Q3.npz: file is for signature {SIG}, trainer for custom_config \(its path\)$",
    ):
        trainer.fit(npz_path, epochs=200)
    with pytest.raises(
        DataError, match=rf"file is for signature {SIG}, trainer for {WEAK_SIG} \(its path\)"
    ):
        QTrainer("Q3", WEAK_SIG, custom_config).fit(npz_path, epochs=200)
    result = QTrainer("Q3", SIG, custom_config).fit(npz_path, epochs=3, val_split=0.25)
    assert result["final_epoch"] == 3 and len(result["history"]["lr"]) == 3
    assert 0.0 < result["final_metrics"]["mean"]["rmse"] < 3.0  # points on Q3's 0-3 range


def _with_identity(source: Path, target: Path, signature: str, task: str) -> Path:
    with np.load(source, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    build = BuildParams(mode="trajectory", rate_hz=90.0, theiler_window=1)
    arrays.update(DatasetIdentity(signature, task, build, BUILDER_VERSION).arrays())
    return atomic.write_npz(target, arrays)


def test_rqa_sig_is_checked_against_the_recorded_identity_first(data_root, tmp_path):
    good = _with_identity(data_root / SIG / "Q1.npz", tmp_path / SIG / "Q1.npz", SIG, "Q1")
    assert QTrainer("Q1", SIG, Config()).fit(good, epochs=2, folds=3)["final_epoch"] == 2
    with pytest.raises(
        DataError,
        match=rf"file is for signature {SIG}, trainer for {WEAK_SIG} \(its recorded identity\)",
    ):
        QTrainer("Q1", WEAK_SIG, Config()).fit(good)
    # Its folder says WEAK_SIG, the data says SIG: the data's word counts.
    moved = _with_identity(data_root / SIG / "Q1.npz", tmp_path / WEAK_SIG / "Q1.npz", SIG, "Q1")
    with pytest.raises(
        DataError,
        match=(
            rf"{WEAK_SIG}/Q1.npz: file is for signature {SIG}, "
            rf"trainer for {WEAK_SIG} \(its recorded identity\)"
        ),
    ):
        QTrainer("Q1", WEAK_SIG, Config()).fit(moved)
    other_task = _with_identity(
        data_root / SIG / "Q1.npz", tmp_path / "b" / SIG / "Q1.npz", SIG, "Q3"
    )
    with pytest.raises(
        ValueError, match=r"file is for task Q3, trainer for Q1 \(its recorded identity\)"
    ):
        QTrainer("Q1", SIG, Config()).fit(other_task)


def test_eye_dataset_scales_y_by_the_tasks_range_not_by_the_file(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(1, 4, size=40).astype(float)  # Q1 scores 1..3 of 0..5
    X = rng.normal(size=(40, 10))
    path = atomic.write_npz(tmp_path / SIG / "Q1.npz", {"X": X, "y": y})
    dataset = EyeDataset(path)
    assert len(dataset) == 40 and dataset.score_range == (0.0, 5.0)
    np.testing.assert_allclose(dataset.y.numpy(), y / 5, rtol=1e-6)  # min-max by data: (y - 1) / 2
    np.testing.assert_allclose(dataset[3][0].numpy(), X[3], rtol=1e-6)
    raw = EyeDataset(path, normalize_targets=False)
    assert raw.y.max().item() == 3.0
    unnamed = atomic.write_npz(tmp_path / "features.npz", {"X": X, "y": y})
    with pytest.raises(DataError, match="features.npz: its task is unknown"):
        EyeDataset(unnamed)


def test_make_loaders_and_a_hand_written_loop_with_the_original_callbacks(data_root, tmp_path):
    npz_path = data_root / SIG / "Q1.npz"
    train_loader, val_loader = make_loaders(npz_path, batch_size=16, val_split=0.2, seed=42)
    train_X, train_y = train_loader.dataset.tensors
    val_X, val_y = val_loader.dataset.tensors
    # Subject-grouped: 24 of 120 subjects held out for testing, fold 0 of 5 validates.
    data = EyeDataset(npz_path).data
    split = make_split(data.subject_ids, data.y, 5, 0.2, 42)
    assert (
        len(val_y) == list(split.fold_of_subject.values()).count(0) == 20
        and len(train_y) == 120 - 24 - 20
    )
    # X standardised with the training rows' statistics; y in [0, 1] by the 0-5 range.
    np.testing.assert_allclose(train_X.mean(0).numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(train_X.std(0, unbiased=False).numpy(), 1.0, atol=1e-4)
    np.testing.assert_allclose((val_y * 5).numpy(), np.round((val_y * 5).numpy()), atol=1e-5)
    # Every training row in every epoch, in equal batches (none dropped, none tiny).
    for _ in range(2):
        sizes = [len(by) for _, by in train_loader]
        assert sum(sizes) == len(train_y) and max(sizes) - min(sizes) <= 1 and len(sizes) == 5

    torch.manual_seed(0)
    config = Config()
    model = MLP(config.arch)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.training.lr)
    criterion = nn.MSELoss()
    stopper = EarlyStopping(patience=10, min_delta=0.001)
    saver = ModelCheckpoint(str(tmp_path / "best_{epoch}.pt"))
    train_metrics, val_metrics = MetricsCalculator(), MetricsCalculator()
    val_losses = {}
    for epoch in range(1, 201):
        model.train()
        train_metrics.reset()
        for batch_x, batch_y in train_loader:
            optimizer.zero_grad()
            predictions = model(batch_x)
            loss = criterion(predictions, batch_y)
            loss.backward()
            optimizer.step()
            train_metrics.update(batch_y, predictions)
        model.eval()
        val_metrics.reset()
        with torch.no_grad():
            for batch_x, batch_y in val_loader:
                val_metrics.update(batch_y, model(batch_x))
        val_losses[epoch] = val_metrics.compute()["mse"]
        logs = {
            "epoch": epoch,
            "val_loss": val_losses[epoch],
            "model": model,
            "optimizer": optimizer,
            "config": config,
        }
        stopper.on_epoch_end(epoch, logs)
        saver.on_epoch_end(epoch, logs)
        if stopper.should_stop():
            break
    assert train_metrics.compute()["rmse"] > 0
    best_epoch = int(stopper.tracker.best_epoch[0])
    assert epoch == best_epoch + 10 < 200 and stopper.best_loss == val_losses[best_epoch]
    # A file for every epoch that beat the best so far, none for the others.
    running, improved = np.inf, []
    for e, value in val_losses.items():
        if value < running:
            running, improved = value, [*improved, e]
    assert sorted(int(p.stem.split("_")[1]) for p in tmp_path.glob("best_*.pt")) == improved
    saved = torch.load(tmp_path / f"best_{improved[-1]}.pt", weights_only=True)
    assert saved["epoch"] == improved[-1] and saved["loss"] == saver.best_score == min(
        val_losses.values()
    )
    assert saved["config"]["arch"]["h1"] == 64 and saved["optimizer_state_dict"]["state"]

    stopper.restore_model(model)
    model.eval()
    with torch.no_grad():
        y01, p01 = val_y, model(val_X)
    scaled = calculate_regression_metrics(y01, p01)
    assert scaled["mse"] == pytest.approx(val_losses[best_epoch], rel=1e-5)
    points = calculate_regression_metrics(y01 * 5, p01 * 5, score_range=(0.0, 5.0))
    t, p = (y01 * 5).double().numpy(), (p01 * 5).double().numpy()
    assert points["mse"] == pytest.approx(mean_squared_error(t, p), rel=1e-9)
    assert points["mae"] == pytest.approx(mean_absolute_error(t, p), rel=1e-9)
    assert points["r2"] == pytest.approx(r2_score(t, p), rel=1e-9)
    assert points["explained_variance"] == pytest.approx(explained_variance_score(t, p), rel=1e-9)
    assert points["rmse"] == pytest.approx(5 * scaled["rmse"], rel=1e-6)
    # In points, and the planted signal found (on 20 validation subjects where least squares
    # reaches r2 = 0.0; this model 0.07, pearson r 0.52).
    assert 0.4 < points["rmse"] < 1.5 and points["r2"] > 0.0 and points["pearson_r"] > 0.3
    # MAPE relative to the range: the same on both scales, finite though some true scores are 0.
    assert (t == 0).any() and points["mape"] == pytest.approx(scaled["mape"], rel=1e-6)
    assert (
        points["mape"] == pytest.approx(100 * points["mae"] / 5, rel=1e-9) and points["mape"] < 40
    )
    assert MetricsCalculator().compute() == {}
