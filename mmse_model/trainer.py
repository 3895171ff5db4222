"""The training loop: K fold-models trained as one batched model, on in-memory tensors.

`train_task` is the per-worker loop. It runs unchanged in-process (`QTrainer`, `mmse train
--no-ray`) and on every Ray Train worker; what differs is only the `Reporter` it is handed
(a local folder or `ray.train.report`), the device, and the rank/world size with which each
worker takes its shard of every batch.

An epoch, top to bottom: hooks; shuffle every fold's training rows into the same number of
batches; one forward/backward/step per batch for all K fold-models at once; validation of
every fold on its own held-out subjects; LR schedule on the mean validation loss; hooks
(early stopping, checkpoint + report, logs) on one metrics record. Held-out test subjects
are never loaded into these tensors.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.optim.adam import adam as functional_adam

from mmse_model import checkpoint as ckpt
from mmse_model.callbacks import (
    CallbackManager,
    DirectoryReporter,
    EarlyStopping,
    FileLogger,
    History,
    LRLogger,
    ModelCheckpoint,
    Reporter,
    TensorBoardLogger,
)
from mmse_model.config import Config
from mmse_model.data import (
    FoldTensors,
    Split,
    TaskData,
    build_fold_tensors,
    dataset_path,
    load_task_data,
    make_split,
)
from mmse_model.metrics import MONITOR, fold_metrics, summarise_folds
from mmse_model.model import FoldMLP, clip_grad_norm_per_model


def model_seeds(seed: int, n_folds: int) -> list[int]:
    """One init seed per fold-model, so fold k starts the same whatever K is."""
    return [_mix(seed, "init", k) for k in range(n_folds)]


def _mix(*parts: object) -> int:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def epoch_batches(
    train_counts: list[int], batch_size: int, min_rows: int, fold_seeds: list[int], epoch: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffle each fold's rows and cut them into the same number of batches.

    Every fold gets `ceil(max_count / batch_size)` batches (fewer if a batch would hold
    fewer than `min_rows` rows: batch-norm needs two), each within one row of equal size, so
    no row is dropped and no batch is tiny. Shuffles depend only on (fold seed, epoch), which
    makes a resumed run draw the same batches as an uninterrupted one.

    Returns row indices and a validity mask, both (K, n_batches, max_batch_rows).
    """
    n_batches = max(1, min(math.ceil(max(train_counts) / batch_size), min(train_counts) // min_rows))
    width = math.ceil(max(train_counts) / n_batches)
    K = len(train_counts)
    index = torch.zeros(K, n_batches, width, dtype=torch.long)
    valid = torch.zeros(K, n_batches, width, dtype=torch.bool)
    for k, n in enumerate(train_counts):
        generator = torch.Generator().manual_seed(_mix(fold_seeds[k], "epoch", epoch))
        perm = torch.randperm(n, generator=generator)
        q, r = divmod(n, n_batches)  # r batches of q + 1 rows, the rest of q
        pos = torch.arange(n)
        big = r * (q + 1)
        batch = torch.where(pos < big, pos // (q + 1), r + (pos - big) // max(q, 1))
        slot = torch.where(pos < big, pos % (q + 1), (pos - big) % max(q, 1))
        index[k, batch, slot] = perm
        valid[k, batch, slot] = True
    return index, valid


@dataclass
class FitOutcome:
    final_epoch: int
    stop_reason: str
    best_val_loss: float
    best_epoch: int
    history: list[dict[str, float]]
    total_time: float


@dataclass
class FoldFitter:
    """Owns the batched model, optimiser and scheduler for one task's K folds."""

    config: Config
    folds: FoldTensors
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    rank: int = 0
    world_size: int = 1
    # Ray passes `ray.train.torch.prepare_model` here to wrap the model for DDP.
    wrap_model: Callable[[nn.Module], nn.Module] | None = None

    def __post_init__(self) -> None:
        K = self.folds.n_folds
        self.fold_seeds = model_seeds(self.config.seed, K)
        self.module = FoldMLP(self.config.arch, n_models=K)
        self.module.reset_parameters(self.fold_seeds)
        self.module.to(device=self.device, dtype=self.folds.X_train.dtype)
        self.folds.to(self.device)
        self.model = self.wrap_model(self.module) if self.wrap_model else self.module
        # Adam is element-wise, so one optimiser over stacked weights is K independent ones.
        self.optimizer = torch.optim.Adam(
            self.module.parameters(),
            lr=self.config.training.lr,
            weight_decay=self.config.regularization.weight_decay,
            # The fused kernel is a few times faster per step here (CPU and CUDA alike).
            fused=True,
        )
        sched = self.config.lr_scheduler
        self.scheduler = None
        if sched.enable:
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer,
                mode="min",
                factor=sched.factor,
                patience=sched.patience,
                min_lr=sched.min_lr,
                threshold=sched.threshold,
                cooldown=sched.cooldown,
            )
        self.start_epoch = 1

    # --- one epoch -------------------------------------------------------------------------

    def train_epoch(self, epoch: int) -> torch.Tensor:
        """One pass over every fold's training rows; returns per-fold mean loss (K,)."""
        folds, cfg = self.folds, self.config
        counts = folds.train_counts.tolist()
        min_rows = 2 if cfg.arch.use_batch_norm else 1
        index, valid = epoch_batches(counts, cfg.training.batch_size, min_rows, self.fold_seeds, epoch)
        index, valid = index.to(self.device), valid.to(self.device)
        # Each row's weight in its fold's batch mean: 1 / rows in the whole batch, 0 for
        # padding. With several workers each takes every world_size-th row of each batch and
        # its loss is scaled by world_size, so DDP's gradient mean equals one worker's.
        row_weight = valid / valid.sum(dim=-1, keepdim=True).clamp(min=1) * self.world_size
        if self.world_size > 1:
            index = index[..., self.rank :: self.world_size]
            valid = valid[..., self.rank :: self.world_size]
            row_weight = row_weight[..., self.rank :: self.world_size]
        folds_ix = torch.arange(folds.n_folds, device=self.device).view(-1, 1, 1)
        X = folds.X_train[folds_ix, index]  # (K, n_batches, b, 10)
        y = folds.y_train[folds_ix, index]  # (K, n_batches, b)
        row_weight, valid_f = row_weight.to(y.dtype), valid.to(y.dtype)
        n_steps, width = index.shape[1], index.shape[2]
        masks = self.module.dropout_masks(_mix(cfg.seed, "dropout", epoch), n_steps, width)
        clip = cfg.regularization.grad_clip_norm
        params = list(self.module.parameters())
        sq_sum = torch.zeros_like(y[:, 0])  # (K, b), summed over batches

        self.model.train()
        # One view per step, made once per epoch rather than sliced in every step.
        steps = zip(X.unbind(1), y.unbind(1), valid.unbind(1), valid_f.unbind(1), row_weight.unbind(1),
                    zip(*(m.unbind(0) for m in masks)) if masks is not None else [None] * n_steps)
        for X_j, y_j, valid_j, valid_f_j, weight_j, dropout in steps:
            pred = self.model(X_j, valid_j, dropout)  # (K, b)
            sq = (pred - y_j) ** 2
            # Summing the K fold losses gives each fold-model its own gradient: they share
            # no parameters.
            loss = (sq * weight_j).sum()
            for p in params:
                p.grad = None
            loss.backward()
            if clip > 0:
                clip_grad_norm_per_model(params, clip)
            self._optimizer_step()
            sq_sum.addcmul_(sq.detach(), valid_f_j)
        sq_sum = sq_sum.sum(dim=1)
        if self.world_size > 1 and dist.is_initialized():
            dist.all_reduce(sq_sum)  # each worker saw only its shard of the rows
        return sq_sum / folds.train_counts.to(sq_sum.dtype)

    def _optimizer_step(self) -> None:
        """`optimizer.step()` without its per-call Python bookkeeping (hooks, profiler
        records, state set-up), which at this model size costs about as much as the fused
        kernel itself. The maths is torch's own functional Adam on the optimiser's own state,
        so `state_dict`, resuming and the LR scheduler work unchanged."""
        group = self.optimizer.param_groups[0]
        params = [p for p in group["params"] if p.grad is not None]
        states = [self.optimizer.state.get(p) for p in params]
        if not all(states):  # the first step creates the state
            self.optimizer.step()
            return
        beta1, beta2 = group["betas"]
        functional_adam(
            params,
            [p.grad for p in params],
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [],
            [s["step"] for s in states],
            fused=True,
            amsgrad=False,
            beta1=beta1,
            beta2=beta2,
            lr=group["lr"],
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=False,
        )

    @torch.no_grad()
    def validate(self) -> tuple[torch.Tensor, list[dict[str, float]]]:
        """Every fold on its own validation subjects: scaled MSE (K,) and metrics in points.

        Every worker validates the full (small) validation set with identical weights, so
        the metrics are whole, never one shard's.
        """
        folds = self.folds
        self.model.eval()
        pred = self.model(folds.X_val, folds.val_mask)  # (K, n_val)
        mask = folds.val_mask.to(pred.dtype)
        val_loss = ((pred - folds.y_val) ** 2 * mask).sum(dim=1) / mask.sum(dim=1)
        low, high = folds.score_range
        pred_points = (pred * (high - low) + low).clamp(low, high)
        true_points = folds.y_val * (high - low) + low
        return val_loss, fold_metrics(true_points, pred_points, folds.val_mask, folds.score_range)

    def epoch_record(
        self, epoch: int, train_loss: torch.Tensor, val_loss: torch.Tensor, per_fold: list[dict]
    ) -> dict[str, float]:
        low, high = self.folds.score_range
        train_loss_host = train_loss.cpu().numpy()
        record = {
            "epoch": float(epoch),
            "lr": float(self.optimizer.param_groups[0]["lr"]),
            "train/loss": float(train_loss_host.mean()),
            "train/rmse": float(np.sqrt(train_loss_host).mean() * (high - low)),
            MONITOR: float(val_loss.mean().item()),
        }
        for name, value in summarise_folds(per_fold).items():
            record[f"val/{name}"] = value
        return record

    # --- the loop --------------------------------------------------------------------------

    def fit(
        self,
        callbacks: CallbackManager,
        epochs: int,
        write_checkpoint: Callable[[Path, dict[str, float]], None],
    ) -> FitOutcome:
        started = time.perf_counter()
        callbacks.on_train_begin(model=self.module, optimizer=self.optimizer)
        stop_reason, epoch = "", self.start_epoch - 1
        for epoch in range(self.start_epoch, epochs + 1):
            callbacks.on_epoch_begin(epoch)
            train_loss = self.train_epoch(epoch)
            val_loss, per_fold = self.validate()
            if self.scheduler is not None:
                self.scheduler.step(val_loss.mean().item())
            record = self.epoch_record(epoch, train_loss, val_loss, per_fold)
            callbacks.on_epoch_end(
                epoch, record, model=self.module, write_checkpoint=write_checkpoint
            )
            stop, stop_reason = callbacks.should_stop()
            if stop:
                break
        callbacks.on_train_end(model=self.module, stop_reason=stop_reason)
        history = callbacks.find(History)
        early = callbacks.find(EarlyStopping)
        records = history.records if history else []
        if early is not None and early.best_epoch:
            best_val, best_epoch = early.best, early.best_epoch
        else:
            best_epoch = int(min(records, key=lambda r: r[MONITOR])["epoch"]) if records else 0
            best_val = min((r[MONITOR] for r in records), default=float("inf"))
        return FitOutcome(
            epoch, stop_reason, best_val, best_epoch, records, time.perf_counter() - started
        )

    # --- state -----------------------------------------------------------------------------

    def state(self, callbacks: CallbackManager, epoch: int) -> dict[str, Any]:
        return {
            "model_state": self.module.state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "scheduler_state": self.scheduler.state_dict() if self.scheduler else None,
            "epoch": epoch,
            "callbacks": callbacks.state_dict(),
            "config": self.config.to_dict(),
            "standardiser": {
                "mean": torch.from_numpy(self.folds.standardiser.mean).float(),
                "scale": torch.from_numpy(self.folds.standardiser.scale).float(),
            },
            "score_range": list(self.folds.score_range),
        }

    def load_state(self, payload: dict[str, Any], callbacks: CallbackManager) -> None:
        self.module.load_state_dict(payload["model_state"])
        self.optimizer.load_state_dict(payload["optimizer_state"])
        if self.scheduler is not None and payload.get("scheduler_state"):
            self.scheduler.load_state_dict(payload["scheduler_state"])
        callbacks.load_state_dict(payload["callbacks"])
        self.start_epoch = int(payload["epoch"]) + 1


# --- one task, end to end ------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """What one training run is about: which dataset, under which config."""

    data_root: str
    signature: str
    task: str
    config: Config

    def to_dict(self) -> dict[str, Any]:
        return {
            "data_root": self.data_root,
            "signature": self.signature,
            "task": self.task,
            "config": self.config.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunSpec":
        return cls(data["data_root"], data["signature"], data["task"], Config.from_dict(data["config"]))


@dataclass
class TaskOutcome:
    fit: FitOutcome
    final_metrics: dict[str, Any]
    checkpoint: dict[str, Any]  # the final payload (best weights restored)
    split: Split
    data: TaskData


def load_run_data(run: RunSpec) -> tuple[TaskData, Split]:
    cfg = run.config
    score_range = cfg.score_range(run.task)
    path = dataset_path(run.data_root, run.signature, run.task)
    data = load_task_data(path, score_range)
    split = make_split(
        data.subject_ids, data.y, cfg.training.folds, cfg.training.test_fraction, cfg.seed, str(path)
    )
    return data, split


def train_task(
    run: RunSpec,
    reporter: Reporter,
    *,
    device: torch.device | str = "cpu",
    rank: int = 0,
    world_size: int = 1,
    wrap_model: Callable[[nn.Module], nn.Module] | None = None,
    resume: dict[str, Any] | None = None,
    extra_callbacks: list | None = None,
) -> TaskOutcome:
    """The per-worker loop: load, split, build fold tensors, fit, evaluate (validation only)."""
    cfg = run.config
    data, split = load_run_data(run)
    folds = build_fold_tensors(data, split, cfg.score_range(run.task))
    fitter = FoldFitter(cfg, folds, torch.device(device), rank, world_size, wrap_model)
    es = cfg.early_stopping
    callbacks = CallbackManager(
        [
            History(),
            *([EarlyStopping(es.patience, es.min_delta, es.restore_best)] if es.enable else []),
            LRLogger(),
            *(extra_callbacks or []),
            # Last, so the checkpoint it writes holds the other callbacks' updated state.
            ModelCheckpoint(
                reporter,
                every=cfg.training.checkpoint_every,
                min_delta=es.min_delta if es.enable else 0.0,
                write=rank == 0,
            ),
        ]
    )
    if resume is not None:
        fitter.load_state(resume, callbacks)

    def payload(epoch: int, metrics: dict[str, Any]) -> dict[str, Any]:
        return {
            **fitter.state(callbacks, epoch),
            "task": run.task,
            "signature": run.signature,
            "feature_names": list(data.feature_names),
            "split": split.to_dict(),
            "metrics": metrics,
        }

    def write_checkpoint(directory: Path, record: dict[str, float]) -> None:
        ckpt.save_checkpoint(directory, payload(int(record["epoch"]), dict(record)))

    outcome = fitter.fit(callbacks, cfg.training.epochs, write_checkpoint)
    _, per_fold = fitter.validate()  # at the restored best weights
    final_metrics = {"per_fold": per_fold, "mean": summarise_folds(per_fold)}
    final = payload(outcome.final_epoch, {"final_metrics": final_metrics})
    return TaskOutcome(outcome, final_metrics, final, split, data)


# --- the seed's API ------------------------------------------------------------------------


class QTrainer:
    """Trainer for one MMSE task (Q1-Q5) on one RQA signature, in-process.

    Keeps the seed's interface: `QTrainer(q_tag, rqa_sig, config, device).fit(npz_path,
    epochs=..., batch_size=...)` returns its result dict. `out_dir`, when given, receives
    checkpoints, TensorBoard events and a log file.
    """

    def __init__(
        self,
        q_tag: str,
        rqa_sig: str,
        config: Config | dict[str, Any],
        device: str = "cpu",
        out_dir: str | Path | None = None,
    ):
        self.q_tag, self.rqa_sig = q_tag, rqa_sig
        self.config = config if isinstance(config, Config) else Config.from_dict(config)
        self.device = torch.device(device)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.outcome: TaskOutcome | None = None

    def fit(
        self,
        npz_path: str | Path,
        epochs: int | None = None,
        batch_size: int | None = None,
        folds: int | None = None,
    ) -> dict[str, Any]:
        npz_path = Path(npz_path)
        overrides = []
        if epochs is not None:
            overrides.append(f"training.epochs={epochs}")
        if batch_size is not None:
            overrides.append(f"training.batch_size={batch_size}")
        if folds is not None:
            overrides.append(f"training.folds={folds}")
        config = self.config.with_overrides(overrides)
        # The data contract puts a dataset at <root>/<sig>/<Q>.npz.
        run = RunSpec(str(npz_path.parent.parent), npz_path.parent.name, npz_path.stem, config)
        if npz_path.stem != self.q_tag:
            raise ValueError(f"{npz_path}: file is for task {npz_path.stem}, trainer for {self.q_tag}")
        extra = []
        if self.out_dir is not None:
            extra = [TensorBoardLogger(self.out_dir / "tensorboard"), FileLogger(self.out_dir / "train.log")]
            reporter: Reporter = DirectoryReporter(self.out_dir)
        else:
            reporter = _NullReporter()
        started = time.perf_counter()
        self.outcome = train_task(run, reporter, device=self.device, extra_callbacks=extra)
        fit = self.outcome.fit
        return {
            "success": True,
            "total_time": time.perf_counter() - started,
            "best_val_loss": fit.best_val_loss,
            "final_epoch": fit.final_epoch,
            "best_epoch": fit.best_epoch,
            "stop_reason": fit.stop_reason,
            "final_metrics": self.outcome.final_metrics,
            "history": seed_history(fit.history),
        }


class _NullReporter:
    def report(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None:
        pass


def seed_history(records: list[dict[str, float]]) -> dict[str, list]:
    """The seed's `training_history` layout, built from the epoch records."""
    return {
        "epochs": [int(r["epoch"]) for r in records],
        "train_loss": [r["train/loss"] for r in records],
        "val_loss": [r[MONITOR] for r in records],
        "train_metrics": [{"rmse": r["train/rmse"]} for r in records],
        "val_metrics": [
            {k.split("/", 1)[1]: v for k, v in r.items() if k.startswith("val/")} for r in records
        ],
        "lr": [r["lr"] for r in records],
    }
