"""Callbacks: what the loop does besides learning (checkpoints, reports, logs, history).

Every hook gets one typed `LoopContext` (as Lightning's hooks get the trainer and skorch's
the net): the model, the epoch, its flat metrics record, which signatures improved, whether
the run ends with this epoch, why, and how to write a checkpoint. Hooks are no-ops by
default. Deciding to stop is the loop's (mmse_model/training/loop.py), from the one tracker.

A callback with state (`state_dict`/`load_state_dict`) keeps it in every checkpoint under
its `state_key` (default: its class name, the key checkpoints have always used), so a
resumed run continues where it stopped; two callbacks of one class need distinct keys.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from mmse_model.core import atomic

log = logging.getLogger("mmse_model.train")

# Writes the run's checkpoint (model.pt) into a folder, with the epoch's record as metrics.
CheckpointWriter = Callable[[Path, Mapping[str, float]], None]


@dataclass(frozen=True)
class LoopContext:
    """What the loop tells a callback at a hook; one is made for each hook call."""

    model: nn.Module  # the batched members (MemberMLPs), never a DDP wrapper
    signatures: tuple[str, ...]
    write_checkpoint: CheckpointWriter
    epoch: int = 0  # the epoch the hook is about (0 before the first)
    record: Mapping[str, float] = field(default_factory=dict)  # the epoch's metrics (on_epoch_end)
    improved: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # per signature
    final: bool = False  # the run ends with this epoch
    stop_reason: str = ""  # set once the run ends ("epoch limit", "early stopping: ...")


class Callback:
    """A hook set for the loop; every hook is a no-op until a subclass says otherwise."""

    def __init__(self, state_key: str | None = None):
        self._state_key = state_key

    @property
    def state_key(self) -> str:
        """Where this callback's state sits in a checkpoint's `callbacks` dict."""
        return getattr(self, "_state_key", None) or type(self).__name__

    @property
    def has_state(self) -> bool:
        return type(self).state_dict is not Callback.state_dict

    def on_train_begin(self, ctx: LoopContext) -> None: ...
    def on_epoch_begin(self, ctx: LoopContext) -> None: ...
    def on_epoch_end(self, ctx: LoopContext) -> None: ...
    def on_train_end(self, ctx: LoopContext) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class CallbackManager:
    """Fans each hook out to its callbacks, in order, and gathers their state by key."""

    def __init__(self, callbacks: list[Callback] | None = None):
        self.callbacks = list(callbacks or [])
        keys = [cb.state_key for cb in self.callbacks if cb.has_state]
        clash = sorted({key for key in keys if keys.count(key) > 1})
        if clash:
            raise ValueError(
                f"callbacks share the state_key {', '.join(clash)}: give each its own state_key"
            )

    def on_train_begin(self, ctx: LoopContext) -> None:
        for cb in self.callbacks:
            cb.on_train_begin(ctx)

    def on_epoch_begin(self, ctx: LoopContext) -> None:
        for cb in self.callbacks:
            cb.on_epoch_begin(ctx)

    def on_epoch_end(self, ctx: LoopContext) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(ctx)

    def on_train_end(self, ctx: LoopContext) -> None:
        for cb in self.callbacks:
            cb.on_train_end(ctx)

    def find(self, kind: type) -> Any:
        return next((cb for cb in self.callbacks if isinstance(cb, kind)), None)

    def state_dict(self) -> dict[str, Any]:
        return {cb.state_key: cb.state_dict() for cb in self.callbacks if cb.has_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Keys of callbacks this run does not have (a stateless one's `{}`) are left alone.
        for cb in self.callbacks:
            if cb.has_state and cb.state_key in state:
                cb.load_state_dict(state[cb.state_key])


class Reporter(Protocol):
    """Where epoch metrics and checkpoints go: a local folder, or `ray.train.report`."""

    def report(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None: ...


class CheckpointReporter(Callback):
    """The loop's one reporter: every epoch's record goes to `reporter` (ASHA's input in a
    sweep), with a checkpoint when one is due.

    Due when some signature improved (the weights a results row names are then on disk),
    every `every` epochs (recent state to resume from), at `extra_epochs` (a sweep's ASHA
    rungs, where a trial may be stopped) and at the run's last epoch. Every epoch is
    reported, checkpoint or not: a scheduler such as ASHA must see each epoch's metric.
    """

    def __init__(
        self,
        reporter: Reporter,
        every: int = 10,
        extra_epochs: tuple[int, ...] = (),
        write: bool = True,
        state_key: str | None = None,
    ):
        super().__init__(state_key)
        self.reporter, self.every, self.extra_epochs = reporter, every, frozenset(extra_epochs)
        # Only one rank writes checkpoints; the others still report, since a distributed
        # report is a barrier that every worker must reach.
        self.write = write

    def due(self, epoch: int, improved: np.ndarray, final: bool) -> bool:
        return (
            bool(improved.any())
            or final
            or epoch in self.extra_epochs
            or (self.every > 0 and epoch % self.every == 0)
        )

    def on_epoch_end(self, ctx: LoopContext) -> None:
        record = dict(ctx.record)
        if not (self.write and self.due(ctx.epoch, ctx.improved, ctx.final)):
            self.reporter.report(record, None)
            return
        with tempfile.TemporaryDirectory(prefix="mmse-ckpt-") as tmp:
            ctx.write_checkpoint(Path(tmp), record)
            self.reporter.report(record, Path(tmp))


class DirectoryReporter:
    """In-process reporter: the latest checkpoint in `<out>/checkpoints/latest` (every
    checkpoint holds each signature's best weights, so the latest is all a reader needs)
    and every epoch's metrics."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.records: list[dict[str, float]] = []

    def report(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None:
        self.records.append(dict(metrics))
        if checkpoint_dir is not None:
            atomic.copy_dir(checkpoint_dir, self.out_dir / "checkpoints" / "latest")


class NullReporter:
    def report(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None:
        pass


class History(Callback):
    """Keeps every epoch's record (`loop.history_columns` lays them out by metric)."""

    def __init__(self, state_key: str | None = None) -> None:
        super().__init__(state_key)
        self.records: list[dict[str, float]] = []

    def on_epoch_end(self, ctx: LoopContext) -> None:
        self.records.append(dict(ctx.record))

    def state_dict(self) -> dict[str, Any]:
        return {"records": self.records}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.records = list(state["records"])


class LRLogger(Callback):
    """Logs every change of the learning rate (the plateau schedule decides them)."""

    def __init__(self, state_key: str | None = None) -> None:
        super().__init__(state_key)
        self.last: float | None = None

    def on_epoch_end(self, ctx: LoopContext) -> None:
        lr = ctx.record["lr"]
        if self.last is not None and lr != self.last:
            log.info("epoch %d: learning rate %.3g -> %.3g", ctx.epoch, self.last, lr)
        self.last = lr


class FileLogger(Callback):
    """One line per epoch to a log file (and the `mmse_model.train` logger)."""

    def __init__(self, path: Path, every: int = 1, state_key: str | None = None):
        super().__init__(state_key)
        self.path, self.every = Path(path), every
        self.handler: logging.Handler | None = None

    def on_train_begin(self, ctx: LoopContext) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handler = logging.FileHandler(self.path)
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(self.handler)
        log.setLevel(logging.INFO)

    def on_epoch_end(self, ctx: LoopContext) -> None:
        epoch, record = ctx.epoch, ctx.record
        if epoch % self.every == 0:
            log.info(
                "epoch %d train/loss %.5f val/loss %.5f val/rmse %.3f val/r2 %.3f lr %.2g",
                epoch,
                record["train/loss"],
                record["val/loss"],
                record["val/rmse"],
                record["val/r2"],
                record["lr"],
            )

    def on_train_end(self, ctx: LoopContext) -> None:
        if ctx.stop_reason:
            log.info("stopped: %s", ctx.stop_reason)
        if self.handler is not None:
            log.removeHandler(self.handler)
            self.handler.close()
            self.handler = None


class TensorBoardLogger(Callback):
    """Scalars per epoch and the model graph once (the first model, as a plain MLP)."""

    def __init__(self, log_dir: Path, state_key: str | None = None):
        super().__init__(state_key)
        self.log_dir = Path(log_dir)
        self.writer = None

    def on_train_begin(self, ctx: LoopContext) -> None:
        from torch.utils.tensorboard import SummaryWriter  # heavy import, only when used

        self.writer = SummaryWriter(log_dir=str(self.log_dir))
        single = ctx.model.fold_model(0).eval()
        with warnings.catch_warnings():
            # add_graph traces with torch.jit, which torch 2.x flags as deprecated.
            warnings.simplefilter("ignore", DeprecationWarning)
            self.writer.add_graph(single, torch.zeros(2, single[0].in_features))

    def on_epoch_end(self, ctx: LoopContext) -> None:
        for name, value in ctx.record.items():
            if name != "epoch":
                self.writer.add_scalar(name, value, ctx.epoch)

    def on_train_end(self, ctx: LoopContext) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
