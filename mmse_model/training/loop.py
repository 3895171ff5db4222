"""The training loop: S signatures x K folds trained as one batched model, in memory.

`train_run` is the per-worker loop. It runs unchanged in-process (`mmse train --no-ray`,
`QTrainer`) and on every Ray Train worker; what differs is only the `Reporter` it is handed
(a local folder or `ray.train.report`), the device, and the rank/world size with which each
worker takes its share of every batch.

A run is one task under a group of signatures. Every signature of a task holds the same
subjects and the split is the same for all of them, so the group's S signatures x K folds
are M = S*K independent models in one `MemberMLPs`. Everything that was per run is per
signature: standardisers (per member), learning-rate schedule, early stopping, best epoch,
best weights. A run of one signature is S = 1.

An epoch, top to bottom: hooks; shuffle every fold's training rows into the same number of
batches (shared by every signature's fold k); one forward/backward/step per batch for all M
members; validation of every member on its fold's held-out subjects; per-signature
learning-rate schedule, tracker and early stopping; hooks (checkpoint + report, logs) on one
metrics record. Held-out test subjects are never loaded into these tensors.
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from mmse_model.core.config import Config
from mmse_model.data.dataset import (
    GroupData,
    MemberTensors,
    Split,
    build_member_tensors,
    load_group,
    shared_split,
)
from mmse_model.evaluation.metrics import MONITOR, member_metrics, summarise_signatures
from mmse_model.training.callbacks import (
    CallbackManager,
    CheckpointReporter,
    CheckpointWriter,
    History,
    LoopContext,
    LRLogger,
    Reporter,
)
from mmse_model.training.checkpoint import CheckpointPayload, SignatureState
from mmse_model.training.model import MemberMLPs, clip_grad_norm_per_model
from mmse_model.training.optim import MemberAdam, PlateauSchedule
from mmse_model.training.tracking import Improvement

# The validation metrics an epoch record and a checkpoint keep per signature.
RECORD_METRICS = ("rmse", "mae", "r2", "pearson_r", "explained_variance", "mape")


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
    n_batches = max(
        1, min(math.ceil(max(train_counts) / batch_size), min(train_counts) // min_rows)
    )
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
class SignatureOutcome:
    signature: str
    best_epoch: int
    best_val_loss: float
    epochs_run: int  # its stop epoch, or the run's last epoch
    early_stopped: bool


@dataclass
class FitOutcome:
    final_epoch: int
    stop_reason: str
    signatures: list[SignatureOutcome]
    history: list[dict[str, float]]
    total_time: float
    paused: bool = False  # stopped at `pause_at`, unfinished: its payload resumes it


@dataclass
class FoldFitter:
    """Owns the batched model, optimiser, schedule and per-signature tracker of one run."""

    config: Config
    folds: MemberTensors
    signatures: tuple[str, ...]
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    rank: int = 0
    world_size: int = 1
    # Ray passes `ray.train.torch.prepare_model` here to wrap the model for DDP.
    wrap_model: Callable[[nn.Module], nn.Module] | None = None

    def __post_init__(self) -> None:
        S, K, M = len(self.signatures), self.folds.n_folds, self.folds.n_members
        assert S * K == M, (S, K, M)
        cfg = self.config
        self.fold_seeds = model_seeds(cfg.seed, K)
        self.module = MemberMLPs(cfg.arch, n_models=M)
        # Signature s's fold k starts from the same weights as in a run of s alone.
        self.module.reset_parameters(self.fold_seeds * S)
        self.module.to(device=self.device, dtype=self.folds.X_train.dtype)
        self.folds.to(self.device)
        self.model = self.wrap_model(self.module) if self.wrap_model else self.module
        self.optimizer = MemberAdam(
            list(self.module.parameters()),
            cfg.training.lr,
            M,
            weight_decay=cfg.regularization.weight_decay,
            decoupled=cfg.regularization.decoupled_weight_decay,
        )
        sched = cfg.lr_scheduler
        self.schedule = None
        if sched.enable:
            self.schedule = PlateauSchedule(
                S,
                cfg.training.lr,
                factor=sched.factor,
                patience=sched.patience,
                min_lr=sched.min_lr,
                threshold=sched.threshold,
                cooldown=sched.cooldown,
            )
        es = cfg.early_stopping
        # One tracker: early stopping, checkpoints, best weights and the results table all
        # read "best so far" from it, with early stopping's min_delta.
        self.tracker = Improvement(S, es.min_delta if es.enable else 0.0)
        self.active = np.ones(S, dtype=bool)
        self.stop_epoch = np.zeros(S, dtype=np.int64)
        self.best_metrics: list[dict[str, float]] = [{} for _ in range(S)]
        self.best_state = copy.deepcopy(self.module.state_dict())
        self.start_epoch, self.stop_reason = 1, ""

    # --- one epoch -------------------------------------------------------------------------

    def train_epoch(self, epoch: int) -> torch.Tensor:
        """One pass over every fold's training rows; returns per-member mean loss (M,)."""
        folds, cfg = self.folds, self.config
        S, K = folds.n_signatures, folds.n_folds
        counts = folds.train_counts.tolist()
        min_rows = 2 if cfg.arch.use_batch_norm else 1
        index, valid = epoch_batches(
            counts, cfg.training.batch_size, min_rows, self.fold_seeds, epoch
        )
        index, valid = index.to(self.device), valid.to(self.device)
        # Each row's weight in its fold's batch mean: 1 / rows in the whole batch, 0 for
        # padding. With several workers each takes every world_size-th row of each batch and
        # its loss is scaled by world_size, so DDP's gradient mean equals one worker's
        # (exactly without dropout and batch-norm: masks and statistics are per shard).
        row_weight = valid / valid.sum(dim=-1, keepdim=True).clamp(min=1) * self.world_size
        if self.world_size > 1:
            index = index[..., self.rank :: self.world_size]
            valid = valid[..., self.rank :: self.world_size]
            row_weight = row_weight[..., self.rank :: self.world_size]
        # Fold k's batches serve every signature's fold-k member.
        index, valid, row_weight = (
            t.repeat(S, 1, 1) for t in (index, valid, row_weight)
        )  # (M, nb, b)
        X, y = folds.training_rows(index)  # (M, n_batches, b, 10), (M, n_batches, b)
        row_weight, valid_f = row_weight.to(y.dtype), valid.to(y.dtype)
        n_steps, width = index.shape[1], index.shape[2]
        masks = self.module.dropout_masks(_mix(cfg.seed, "dropout", epoch), n_steps, width, K)
        clip = cfg.regularization.grad_clip_norm
        params = list(self.module.parameters())
        sq_sum = torch.zeros_like(y[:, 0])  # (M, b), summed over batches

        self.model.train()
        # One view per step, made once per epoch rather than sliced in every step.
        steps = zip(
            X.unbind(1),
            y.unbind(1),
            valid.unbind(1),
            valid_f.unbind(1),
            row_weight.unbind(1),
            zip(*(m.unbind(0) for m in masks)) if masks is not None else [None] * n_steps,
        )
        for X_j, y_j, valid_j, valid_f_j, weight_j, dropout in steps:
            pred = self.model(X_j, valid_j, dropout)  # (M, b)
            sq = (pred - y_j) ** 2
            # Summing the M losses gives each member its own gradient: they share no
            # parameters.
            loss = (sq * weight_j).sum()
            for p in params:
                p.grad = None
            loss.backward()
            if clip > 0:
                clip_grad_norm_per_model(params, clip)
            self.optimizer.step()
            sq_sum.addcmul_(sq.detach(), valid_f_j)
        sq_sum = sq_sum.sum(dim=1)
        if self.world_size > 1 and dist.is_initialized():
            dist.all_reduce(sq_sum)  # each worker saw only its share of the rows
        return sq_sum / folds.train_counts.repeat(S).to(sq_sum.dtype)

    @torch.no_grad()
    def validate(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Every member on its fold's validation subjects: scaled MSE (M,) and metrics in
        points {name: (M,)}. Every worker validates the full (small) validation set with
        identical weights, so the metrics are whole, never one shard's."""
        folds = self.folds
        self.model.eval()
        pred = self.model(folds.X_val, folds.val_mask)  # (M, n_val)
        mask = folds.val_mask.to(pred.dtype)
        val_loss = ((pred - folds.y_val) ** 2 * mask).sum(dim=1) / mask.sum(dim=1)
        low, high = folds.score_range
        pred_points = (pred * (high - low) + low).clamp(low, high)
        true_points = folds.y_val * (high - low) + low
        metrics = member_metrics(
            true_points.cpu().numpy(),
            pred_points.cpu().numpy(),
            folds.val_mask.cpu().numpy(),
            folds.score_range,
        )
        return val_loss.cpu().numpy().astype(np.float64), metrics

    def signature_summaries(
        self, val_loss: np.ndarray, metrics: dict[str, np.ndarray]
    ) -> list[dict[str, float]]:
        """Per signature: its mean validation loss and every metric's mean and sd over folds."""
        K = self.folds.n_folds
        summaries = summarise_signatures({name: metrics[name] for name in RECORD_METRICS}, K)
        for summary, loss in zip(summaries, val_loss.reshape(-1, K).mean(axis=1).tolist()):
            summary["loss"] = loss
        return summaries

    def epoch_record(
        self,
        epoch: int,
        train_loss: torch.Tensor,
        summaries: list[dict[str, float]],
        seconds: float,
    ) -> dict[str, float]:
        """One flat record. `val/*` describe the best signature of this epoch (the only one
        in a run of one): `val/loss` is what ASHA compares. With several signatures each
        also has `<signature>/val/loss` and `<signature>/val/rmse`."""
        K = self.folds.n_folds
        low, high = self.folds.score_range
        best = int(np.argmin([s["loss"] for s in summaries]))
        train_host = train_loss.detach().cpu().numpy()[best * K : (best + 1) * K]
        lr = self.optimizer.lr.view(len(self.signatures), K)[:, 0].cpu().numpy()
        record = {
            "epoch": float(epoch),
            "lr": float(lr[best]),
            "train/loss": float(train_host.mean()),
            "train/rmse": float(np.sqrt(train_host).mean() * (high - low)),
            MONITOR: summaries[best]["loss"],
            "time/epoch_s": seconds,
            "signatures/active": float(self.active.sum()),
        }
        for name, value in summaries[best].items():
            if name != "loss":
                record[f"val/{name}"] = value
        if len(self.signatures) > 1:
            for signature, summary in zip(self.signatures, summaries):
                record[f"{signature}/val/loss"] = summary["loss"]
                record[f"{signature}/val/rmse"] = summary["rmse"]
        return record

    # --- the loop --------------------------------------------------------------------------

    def fit(
        self,
        callbacks: CallbackManager,
        epochs: int,
        write_checkpoint: CheckpointWriter,
        pause_at: int | None = None,
    ) -> FitOutcome:
        """Train to `epochs`, or pause after epoch `pause_at` (a rung of successive halving):
        a paused fit keeps its current weights, restores nothing and ends no callback, so a
        run resumed from its payload goes on as if it had not stopped."""
        started = time.perf_counter()
        es = self.config.early_stopping
        K = self.folds.n_folds
        context = LoopContext(self.module, self.signatures, write_checkpoint)
        callbacks.on_train_begin(context)
        stop_reason, epoch = "", self.start_epoch - 1
        final = epoch >= epochs or not self.active.any()
        last = epochs if pause_at is None else min(pause_at, epochs)
        for epoch in range(self.start_epoch, last + 1):
            callbacks.on_epoch_begin(replace(context, epoch=epoch))
            epoch_started = time.perf_counter()
            train_loss = self.train_epoch(epoch)
            val_loss, metrics = self.validate()
            summaries = self.signature_summaries(val_loss, metrics)
            signature_loss = np.array([s["loss"] for s in summaries])
            # Per-signature bookkeeping: schedule, tracker, best weights, early stopping.
            if self.schedule is not None:
                lr = self.schedule.step(signature_loss, self.active)
                self.optimizer.set_lr(
                    torch.as_tensor(np.repeat(lr * self.active, K), dtype=self.optimizer.lr.dtype)
                )
            improved = self.tracker.update(signature_loss, epoch, self.active)
            self._keep_best(improved, summaries)
            stopping = (
                self.active & (self.tracker.wait >= es.patience)
                if es.enable
                else np.zeros_like(self.active)
            )
            if stopping.any():
                self.active &= ~stopping
                self.stop_epoch[stopping] = epoch
                self.module.set_active_members(torch.as_tensor(np.repeat(self.active, K)))
                self.optimizer.set_lr(
                    self.optimizer.lr
                    * torch.as_tensor(
                        np.repeat(self.active, K),
                        dtype=self.optimizer.lr.dtype,
                        device=self.optimizer.lr.device,
                    )
                )
            final = epoch == epochs or not self.active.any()
            if final:
                stop_reason = (
                    "epoch limit"
                    if self.active.any()
                    else (
                        f"early stopping: {MONITOR} of every signature did not improve "
                        f"by {es.min_delta} "
                        f"for {es.patience} epochs"
                    )
                )
            record = self.epoch_record(
                epoch, train_loss, summaries, time.perf_counter() - epoch_started
            )
            self.stop_reason = stop_reason
            callbacks.on_epoch_end(
                replace(
                    context,
                    epoch=epoch,
                    record=record,
                    improved=improved,
                    final=final,
                    stop_reason=stop_reason,
                )
            )
            if final:
                break
        history = callbacks.find(History)
        if not final:
            return FitOutcome(
                epoch,
                "",
                self.outcomes(epoch),
                history.records if history else [],
                time.perf_counter() - started,
                paused=True,
            )
        if self.restores_best:
            self.module.load_state_dict(self.best_state)
        callbacks.on_train_end(replace(context, epoch=epoch, stop_reason=stop_reason))
        return FitOutcome(
            epoch,
            stop_reason,
            self.outcomes(epoch),
            history.records if history else [],
            time.perf_counter() - started,
        )

    def _keep_best(self, improved: np.ndarray, summaries: list[dict[str, float]]) -> None:
        """Copy the improved signatures' weights (all K of their members) and metrics."""
        if not improved.any():
            return
        rows = torch.as_tensor(np.repeat(improved, self.folds.n_folds), device=self.device)
        with torch.no_grad():
            for name, tensor in self.module.state_dict().items():
                if tensor.dim() > 0 and tensor.shape[0] == rows.shape[0]:
                    self.best_state[name][rows] = tensor[rows]
        for s in np.flatnonzero(improved):
            self.best_metrics[s] = dict(summaries[s])

    @property
    def restores_best(self) -> bool:
        """Does the run end on each member's best weights? (The original design's
        `restore_best`; with early stopping off there is nothing to restore from, and the best
        is kept too.)"""
        es = self.config.early_stopping
        return es.restore_best or not es.enable

    def deliverable_state(self) -> dict[str, torch.Tensor]:
        """The weights predictions use: each member's best so far, or its current ones."""
        return self.best_state if self.restores_best else self.module.state_dict()

    def outcomes(self, last_epoch: int) -> list[SignatureOutcome]:
        return [
            SignatureOutcome(
                sig,
                int(self.tracker.best_epoch[s]),
                float(self.tracker.best[s]),
                int(self.stop_epoch[s]) if not self.active[s] else last_epoch,
                not self.active[s],
            )
            for s, sig in enumerate(self.signatures)
        ]

    # --- state -----------------------------------------------------------------------------

    def payload(
        self,
        run: RunSpec,
        group: GroupData,
        split: Split,
        callbacks: CallbackManager,
        epoch: int,
        metrics: dict[str, float],
        finished: bool,
        stop_reason: str,
    ) -> CheckpointPayload:
        states = [
            SignatureState(
                signature=sig,
                best_epoch=int(self.tracker.best_epoch[s]),
                best_val_loss=float(self.tracker.best[s]),
                active=bool(self.active[s]),
                stop_epoch=int(self.stop_epoch[s]),
                best_metrics={k: float(v) for k, v in self.best_metrics[s].items()},
            )
            for s, sig in enumerate(self.signatures)
        ]
        standardiser = self.folds.standardiser
        return CheckpointPayload(
            task=run.task,
            signatures=list(self.signatures),
            folds=self.folds.n_folds,
            feature_names=list(group.feature_names),
            score_range=[float(v) for v in self.folds.score_range],
            config=self.config.to_dict(),
            split=split.to_dict(),
            epoch=int(epoch),
            finished=finished,
            stop_reason=stop_reason,
            states=states,
            model_state={k: v.detach().cpu().clone() for k, v in self.module.state_dict().items()},
            best_model_state={
                k: v.detach().cpu().clone() for k, v in self.deliverable_state().items()
            },
            standardiser_mean=torch.from_numpy(standardiser.mean).float(),
            standardiser_scale=torch.from_numpy(standardiser.scale).float(),
            optimizer=self.optimizer.state_dict(),
            schedule=self.schedule.state_dict() if self.schedule else None,
            tracker=self.tracker.state_dict(),
            callbacks=callbacks.state_dict(),
            metrics={k: float(v) for k, v in metrics.items()},
        )

    def load_state(self, payload: CheckpointPayload, callbacks: CallbackManager) -> None:
        if list(payload.signatures) != list(self.signatures):
            raise ValueError(
                f"checkpoint holds {payload.signatures}, this run {list(self.signatures)}"
            )
        self.module.load_state_dict(payload.model_state)
        # Copies: the best weights are written into in place, the payload is the caller's.
        self.best_state = {
            k: v.to(self.device, copy=True) for k, v in payload.best_model_state.items()
        }
        self.optimizer.load_state_dict(payload.optimizer)
        if self.schedule is not None and payload.schedule:
            self.schedule.load_state_dict(payload.schedule)
        self.tracker.load_state_dict(payload.tracker)
        self.active = np.array([s.active for s in payload.states])
        self.module.set_active_members(torch.as_tensor(np.repeat(self.active, self.folds.n_folds)))
        self.stop_epoch = np.array([s.stop_epoch for s in payload.states], dtype=np.int64)
        self.best_metrics = [dict(s.best_metrics) for s in payload.states]
        callbacks.load_state_dict(payload.callbacks)
        self.start_epoch = payload.epoch + 1


# --- one run, end to end --------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """What one training run is about: which task under which signatures, which config;
    `checkpoint_epochs` adds epochs at which a checkpoint is due (a sweep's ASHA rungs)."""

    data_root: str
    signatures: tuple[str, ...]
    task: str
    config: Config
    checkpoint_epochs: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "data_root": self.data_root,
            "signatures": list(self.signatures),
            "task": self.task,
            "config": self.config.to_dict(),
            "checkpoint_epochs": list(self.checkpoint_epochs),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        return cls(
            data["data_root"],
            tuple(data["signatures"]),
            data["task"],
            Config.from_dict(data["config"]),
            tuple(data.get("checkpoint_epochs", ())),
        )


@dataclass
class RunOutcome:
    fit: FitOutcome
    checkpoint: CheckpointPayload  # at its end (best weights restored) or its pause
    split: Split
    group: GroupData


def load_run_data(run: RunSpec) -> tuple[GroupData, Split]:
    """The run's task under its signatures, and the data root's one shared split."""
    cfg = run.config
    group = load_group(run.data_root, run.signatures, run.task, cfg.score_range(run.task))
    split = shared_split(
        run.data_root,
        run.signatures[0],
        cfg.split.folds,
        cfg.split.test_fraction,
        cfg.split.seed,
        cfg.score_ranges,
        cfg.split.outer_folds,
        cfg.split.outer_fold,
        cfg.split.test_subjects,
    )
    return group, split


def train_run(
    run: RunSpec,
    reporter: Reporter,
    *,
    device: torch.device | str = "cpu",
    rank: int = 0,
    world_size: int = 1,
    wrap_model: Callable[[nn.Module], nn.Module] | None = None,
    resume: CheckpointPayload | None = None,
    extra_callbacks: list | None = None,
    pause_at: int | None = None,
) -> RunOutcome:
    """The per-worker loop: load, split, build member tensors, fit (validation only).
    With `pause_at` the run stops after that epoch unfinished (`FoldFitter.fit`): its
    payload resumes it."""
    cfg = run.config
    group, split = load_run_data(run)
    folds = build_member_tensors(group, split, cfg.score_range(run.task))
    fitter = FoldFitter(
        cfg, folds, tuple(run.signatures), torch.device(device), rank, world_size, wrap_model
    )
    callbacks = CallbackManager(
        [
            History(),
            LRLogger(),
            *(extra_callbacks or []),
            # Last, so the checkpoint it writes holds the other callbacks' updated state.
            CheckpointReporter(
                reporter,
                every=cfg.training.checkpoint_every,
                extra_epochs=run.checkpoint_epochs,
                write=rank == 0,
            ),
        ]
    )
    if resume is not None:
        fitter.load_state(resume, callbacks)

    def write_checkpoint(directory: Path, record: Mapping[str, float]) -> None:
        from mmse_model.training.checkpoint import save_checkpoint

        epoch = int(record["epoch"])
        save_checkpoint(
            directory,
            fitter.payload(
                run,
                group,
                split,
                callbacks,
                epoch,
                record,
                finished=bool(fitter.stop_reason),
                stop_reason=fitter.stop_reason,
            ),
        )

    outcome = fitter.fit(callbacks, cfg.training.epochs, write_checkpoint, pause_at)
    history = callbacks.find(History).records
    last = history[-1] if history else {}
    final = fitter.payload(
        run,
        group,
        split,
        callbacks,
        outcome.final_epoch,
        last,
        not outcome.paused,
        outcome.stop_reason,
    )
    return RunOutcome(outcome, final, split, group)


def history_columns(records: list[dict[str, float]]) -> dict[str, list]:
    """The epoch records as one list per metric: the original design's `training_history`
    layout (`epochs`, `train_loss`, `val_loss`, `train_metrics`, `val_metrics`, and `lr`)."""
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
