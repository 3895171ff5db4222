"""The original design's public names, callable with its signatures, each a thin shell over
the core.

    QTrainer(q_tag, rqa_sig, config, device).fit(npz_path, epochs, batch_size, val_split)
    make_loaders(npz_path, batch_size, val_split, seed) -> (train_loader, val_loader)
    EyeDataset, EarlyStopping, ModelCheckpoint, calculate_regression_metrics, MetricsCalculator

`QTrainer` runs `training.loop.train_run`; `EyeDataset` reads with `data.dataset.load_task_data`;
`make_loaders` uses the core's split, standardiser and batches; `EarlyStopping` and
`ModelCheckpoint` decide with `training.tracking.Improvement`; the metrics are
`evaluation.metrics.regression_metrics`. Where the original design was wrong, the core's
behaviour is kept, and the docstring says so in one line.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, TensorDataset

from mmse_model.core import atomic
from mmse_model.core.config import Config
from mmse_model.core.domain import TASKS, parse_signature
from mmse_model.core.errors import DataError, InputError
from mmse_model.core.identity import DatasetIdentity
from mmse_model.data.dataset import Standardiser, dataset_path, load_task_data, make_split
from mmse_model.evaluation.metrics import regression_metrics
from mmse_model.training.callbacks import (
    DirectoryReporter,
    FileLogger,
    NullReporter,
    Reporter,
    TensorBoardLogger,
)
from mmse_model.training.loop import RunOutcome, RunSpec, epoch_batches, history_columns, train_run
from mmse_model.training.tracking import Improvement

# --- which data a file holds -----------------------------------------------------------------


class IdentityMismatch(DataError, ValueError):
    """A dataset of another task or signature than asked for: a one-line DataError (exit
    status 2 in the CLI) that is also the ValueError the original design raised."""


def dataset_identity(path: Path) -> tuple[DatasetIdentity | None, str]:
    """What a dataset file is: its recorded identity, else what its path `<signature>/<Q>.npz`
    says (a part the path does not say is None), and where that came from."""
    if not path.is_file():
        raise DataError(f"{path}: no such dataset file")
    recorded = DatasetIdentity.from_npz(path)
    if recorded is not None:
        return recorded, "its recorded identity"
    task = path.stem if path.suffix == ".npz" and path.stem in TASKS else None
    try:
        signature: str | None = parse_signature(path.parent.name).name
    except InputError:
        signature = None
    if task is None and signature is None:
        return None, "its path"
    return DatasetIdentity(signature or "", task or ""), "its path"


def check_dataset(path: Path, task: str, signature: str) -> None:
    """Refuse a file that says it holds another task or signature (one line, naming it)."""
    found, source = dataset_identity(path)
    if found is None:
        return
    if found.task and found.task != task:
        raise IdentityMismatch(
            f"{path}: file is for task {found.task}, trainer for {task} ({source})"
        )
    if found.signature and found.signature != signature:
        raise IdentityMismatch(
            f"{path}: file is for signature {found.signature}, trainer for {signature} ({source})"
        )


def _task_of(path: Path) -> str:
    found, _ = dataset_identity(path)
    if found is None or not found.task:
        raise DataError(
            f"{path}: its task is unknown (name the file <Q>.npz, Q1..Q5, or record its identity)"
        )
    return found.task


def _folds_for(val_split: float) -> int:
    if not 0.0 < val_split < 1.0:
        raise InputError(f"val_split {val_split}: expected a fraction in (0, 1)")
    return max(2, round(1.0 / val_split))


# --- the trainer ------------------------------------------------------------------------------


def _config_of(config: Config | Mapping[str, Any]) -> Config:
    """A Config from the original design's dict: `training.val_split` becomes K folds."""
    if isinstance(config, Config):
        return config
    data = copy.deepcopy(dict(config))
    val_split = (data.get("training") or {}).pop("val_split", None)
    if val_split is not None:
        data.setdefault("split", {})["folds"] = _folds_for(float(val_split))
    return Config.from_dict(data)


class QTrainer:
    """Trainer for one MMSE task (Q1-Q5) on one RQA signature, in-process (`train_run`).

    `fit` refuses a file whose recorded identity, or else path `<signature>/<Q>.npz`, names
    another task than `q_tag` or another signature than `rqa_sig`. `val_split` gives K-fold
    CV with K = round(1 / val_split) on subject-grouped folds (the original design split rows
    at random, so one subject's rows could sit on both sides). `out_dir`, when given,
    receives checkpoints, TensorBoard events and a log file.
    """

    def __init__(
        self,
        q_tag: str,
        rqa_sig: str,
        config: Config | Mapping[str, Any],
        device: str = "cpu",
        out_dir: str | Path | None = None,
    ):
        self.q_tag, self.rqa_sig = q_tag, rqa_sig
        self.config = _config_of(config)
        self.device = torch.device(device)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.outcome: RunOutcome | None = None
        self.training_history: dict[str, list] = {}
        self.best_val_loss = math.inf
        self.current_epoch = 0

    def fit(
        self,
        npz_path: str | Path,
        epochs: int | None = None,
        batch_size: int | None = None,
        val_split: float | None = None,
        *,
        folds: int | None = None,
    ) -> dict[str, Any]:
        npz_path = Path(npz_path)
        check_dataset(npz_path, self.q_tag, self.rqa_sig)
        data_root = npz_path.parent.parent
        # The run reads <root>/<signature>/<Q>.npz: it must be this very file.
        if dataset_path(data_root, self.rqa_sig, self.q_tag).resolve() != npz_path.resolve():
            raise DataError(
                f"{npz_path}: QTrainer reads <data_root>/{self.rqa_sig}/{self.q_tag}.npz, "
                "not a file at another place"
            )
        if val_split is not None and folds is None:
            folds = _folds_for(val_split)
        values = {
            "training.epochs": epochs,
            "training.batch_size": batch_size,
            "split.folds": folds,
        }
        config = self.config.with_values({k: v for k, v in values.items() if v is not None})
        run = RunSpec(str(data_root), (self.rqa_sig,), self.q_tag, config)
        extra: list = []
        reporter: Reporter = NullReporter()
        if self.out_dir is not None:
            extra = [
                TensorBoardLogger(self.out_dir / "tensorboard"),
                FileLogger(self.out_dir / "train.log"),
            ]
            reporter = DirectoryReporter(self.out_dir)
        started = time.perf_counter()
        self.outcome = train_run(run, reporter, device=self.device, extra_callbacks=extra)
        fit = self.outcome.fit
        state = self.outcome.checkpoint.states[0]
        self.training_history = history_columns(fit.history)
        self.best_val_loss, self.current_epoch = state.best_val_loss, fit.final_epoch
        return {
            "success": True,
            "total_time": time.perf_counter() - started,
            "best_val_loss": state.best_val_loss,
            "final_epoch": fit.final_epoch,
            "best_epoch": state.best_epoch,
            "stop_reason": fit.stop_reason,
            "final_metrics": {"mean": dict(state.best_metrics)},
            "history": self.training_history,
        }


# --- data ---------------------------------------------------------------------------------------


class EyeDataset(Dataset):
    """One `<Q>.npz` as (features, target) rows, read and checked by `load_task_data` (no pickle).

    With `normalize_targets`, y is scaled to [0, 1] by the task's score range (the original
    design min-max scaled by the file's own y, a scale that moves with every file). X is as
    in the file: `make_loaders` standardises it with training statistics.
    """

    def __init__(
        self, npz_path: str | Path, normalize_targets: bool = True, config: Config | None = None
    ):
        path = Path(npz_path)
        self.task = _task_of(path)
        self.score_range = (config or Config()).score_range(self.task)
        self.data = load_task_data(path, self.score_range)
        low, high = self.score_range
        y = (self.data.y - low) / (high - low) if normalize_targets else self.data.y
        self.X = torch.from_numpy(self.data.X).float()  # (N, 10)
        self.y = torch.from_numpy(y).float()  # (N,)
        self.subject_ids = self.data.subject_ids
        self.n_samples = self.X.shape[0]

    def __len__(self) -> int:
        return self.n_samples

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.X[idx], self.y[idx]


class EqualBatches(Sampler[list[int]]):
    """The core's batches (`epoch_batches`): each epoch a fresh shuffle cut into batches
    within one row of equal size, none of fewer than 2 rows, no row dropped (the original
    design's drop_last=True lost up to batch_size - 1 rows every epoch)."""

    def __init__(self, n_rows: int, batch_size: int, seed: int):
        self.n_rows, self.batch_size, self.seed, self.epoch = n_rows, batch_size, seed, 0

    def _batches(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        return epoch_batches([self.n_rows], self.batch_size, 2, [self.seed], epoch)

    def __len__(self) -> int:
        return self._batches(1)[0].shape[1]

    def __iter__(self) -> Iterator[list[int]]:
        self.epoch += 1
        index, valid = self._batches(self.epoch)
        for j in range(index.shape[1]):
            yield index[0, j][valid[0, j]].tolist()


def make_loaders(
    npz_path: str | Path, batch_size: int, val_split: float | None = None, seed: int = 42
) -> tuple[DataLoader, DataLoader]:
    """Training and validation loaders of one dataset, on the core's subject-grouped split.

    The core's score-stratified split (`make_split`, seeded by `seed`) holds out test
    subjects (config `split.test_fraction`; in neither loader) and deals the rest into
    K = round(1 / val_split) folds, of which fold 0 validates (the original design split
    rows at random). X is standardised with the training rows' statistics (the original
    design did not scale X); y is in [0, 1] by the task's score range.
    """
    path = Path(npz_path)
    dataset = EyeDataset(path)
    split = make_split(
        dataset.subject_ids,
        dataset.data.y,
        _folds_for(0.2 if val_split is None else val_split),
        Config().split.test_fraction,
        seed,
        str(path),
    )
    fold = np.array([split.fold_of_subject.get(s, -1) for s in dataset.subject_ids])
    train_rows, val_rows = (fold >= 0) & (fold != 0), fold == 0
    standardiser = Standardiser.fit([dataset.data.X[train_rows]])

    def rows(mask: np.ndarray) -> TensorDataset:
        X = torch.from_numpy(standardiser.transform(0, dataset.data.X[mask])).float()
        return TensorDataset(X, dataset.y[torch.from_numpy(mask)])

    pin = torch.cuda.is_available()
    train_loader = DataLoader(
        rows(train_rows),
        batch_sampler=EqualBatches(int(train_rows.sum()), batch_size, seed),
        pin_memory=pin,
    )
    val_loader = DataLoader(
        rows(val_rows), batch_size=batch_size, shuffle=False, drop_last=False, pin_memory=pin
    )
    return train_loader, val_loader


# --- callbacks of a hand-written loop (`on_epoch_end(epoch, logs)`, as the original design) -------


class EarlyStopping:
    """Stops after `patience` epochs whose `logs['val_loss']` did not beat the best by
    `min_delta`; keeps the best weights of `logs['model']` to restore. The decision is the
    core's tracker (`Improvement`), the one the loop's early stopping uses."""

    def __init__(self, patience: int = 10, min_delta: float = 0.001, restore_best: bool = True):
        self.patience, self.min_delta, self.restore_best = patience, min_delta, restore_best
        self.tracker = Improvement(1, min_delta)
        self.best_weights: dict[str, torch.Tensor] | None = None

    @property
    def best_loss(self) -> float:
        return float(self.tracker.best[0])

    @property
    def wait(self) -> int:
        return int(self.tracker.wait[0])

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        improved = self.tracker.update(logs.get("val_loss", math.inf), epoch)[0]
        if improved and self.restore_best:
            self.best_weights = copy.deepcopy(logs["model"].state_dict())

    def should_stop(self) -> bool:
        return self.wait >= self.patience

    def restore_model(self, model: torch.nn.Module) -> None:
        if self.restore_best and self.best_weights is not None:
            model.load_state_dict(self.best_weights)


class ModelCheckpoint:
    """Saves `{epoch, model_state_dict, optimizer_state_dict, loss, config}` to
    `filepath.format(epoch=epoch)` when `logs[monitor]` improves (every epoch without
    `save_best_only`), written atomically and loadable with `torch.load(weights_only=True)`.
    (The loop's own per-epoch checkpoint and report is `training.callbacks.CheckpointReporter`.)"""

    def __init__(self, filepath: str, monitor: str = "val_loss", save_best_only: bool = True):
        self.filepath, self.monitor, self.save_best_only = filepath, monitor, save_best_only
        self.tracker = Improvement(1, 0.0)

    @property
    def best_score(self) -> float:
        return float(self.tracker.best[0])

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        current = float(logs.get(self.monitor, math.inf))
        improved = bool(self.tracker.update(current, epoch)[0])
        if self.save_best_only and not improved:
            return
        config = logs.get("config", {})
        document = {
            "epoch": epoch,
            "model_state_dict": logs["model"].state_dict(),
            "optimizer_state_dict": logs["optimizer"].state_dict(),
            "loss": current,
            "config": config.to_dict() if isinstance(config, Config) else dict(config),
        }
        atomic.write_with(
            Path(self.filepath.format(epoch=epoch)), lambda tmp: torch.save(document, tmp)
        )


# --- metrics --------------------------------------------------------------------------------------


def _flat(values: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float64).reshape(-1)


def calculate_regression_metrics(
    y_true: torch.Tensor | np.ndarray,
    y_pred: torch.Tensor | np.ndarray,
    score_range: tuple[float, float] = (0.0, 1.0),
) -> dict[str, float]:
    """mse, rmse, mae, r2, mape, explained_variance (and pearson_r) by the core's
    `regression_metrics`.

    `score_range` is the scale of the values: [0, 1] for the loaders' targets, the task's
    range for points. MAPE is 100 * MAE / range (the original design divided by
    y + 1e-8, which explodes at a true score of 0).
    """
    return regression_metrics(_flat(y_true), _flat(y_pred), score_range)


class MetricsCalculator:
    """Collects batches of (true, predicted) and scores them together."""

    def __init__(self, score_range: tuple[float, float] = (0.0, 1.0)):
        self.score_range = score_range
        self.reset()

    def reset(self) -> None:
        self.y_true_list: list[torch.Tensor] = []
        self.y_pred_list: list[torch.Tensor] = []

    def update(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> None:
        self.y_true_list.append(y_true.detach().cpu().reshape(-1))
        self.y_pred_list.append(y_pred.detach().cpu().reshape(-1))

    def compute(self) -> dict[str, float]:
        if not self.y_true_list:
            return {}
        return calculate_regression_metrics(
            torch.cat(self.y_true_list), torch.cat(self.y_pred_list), self.score_range
        )
