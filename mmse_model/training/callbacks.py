"""Callbacks: what the loop does besides learning (checkpoints, reports, logs, history).

The loop builds one record per epoch (a flat dict of namespaced floats) and hands it to
`CallbackManager.on_epoch_end`, with the epoch's context as keyword arguments (`improved`:
which signatures improved, `final`: the run ends with this epoch, `write_checkpoint`).
Every hook takes `**kwargs` and is a no-op by default, so a new argument breaks nobody.
Callbacks with state expose `state_dict`/`load_state_dict` so a resumed run continues where
it stopped. Deciding to stop is the loop's (mmse_model/training/loop.py), from the one tracker.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from mmse_model.core import atomic

log = logging.getLogger("mmse_model.train")


class Callback:
    def on_train_begin(self, **kwargs: Any) -> None: ...
    def on_epoch_begin(self, epoch: int, **kwargs: Any) -> None: ...
    def on_epoch_end(self, epoch: int, record: dict[str, float], **kwargs: Any) -> None: ...
    def on_train_end(self, **kwargs: Any) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class CallbackManager(Callback):
    """Fans each hook out to its callbacks, in order."""

    def __init__(self, callbacks: list[Callback] | None = None):
        self.callbacks = list(callbacks or [])

    def on_train_begin(self, **kwargs: Any) -> None:
        for cb in self.callbacks:
            cb.on_train_begin(**kwargs)

    def on_epoch_begin(self, epoch: int, **kwargs: Any) -> None:
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, **kwargs)

    def on_epoch_end(self, epoch: int, record: dict[str, float], **kwargs: Any) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, record, **kwargs)

    def on_train_end(self, **kwargs: Any) -> None:
        for cb in self.callbacks:
            cb.on_train_end(**kwargs)

    def find(self, kind: type) -> Any:
        return next((cb for cb in self.callbacks if isinstance(cb, kind)), None)

    def state_dict(self) -> dict[str, Any]:
        return {type(cb).__name__: cb.state_dict() for cb in self.callbacks}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for cb in self.callbacks:
            if type(cb).__name__ in state:
                cb.load_state_dict(state[type(cb).__name__])


class Reporter(Protocol):
    """Where epoch metrics and checkpoints go: a local folder, or `ray.train.report`."""

    def report(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None: ...


class ModelCheckpoint(Callback):
    """Decides when a checkpoint is due and hands it, with the epoch's metrics, to a reporter.

    Due when some signature improved (the weights a results row names are then on disk),
    every `every` epochs (recent state to resume from), at `extra_epochs` (a sweep's ASHA
    rungs, where a trial may be stopped) and at the run's last epoch. Every epoch is
    reported, checkpoint or not: a scheduler such as ASHA must see each epoch's metric.
    """

    def __init__(self, reporter: Reporter, every: int = 10, extra_epochs: tuple[int, ...] = (), write: bool = True):
        self.reporter, self.every, self.extra_epochs = reporter, every, frozenset(extra_epochs)
        # Only one rank writes checkpoints; the others still report, since a distributed
        # report is a barrier that every worker must reach.
        self.write = write

    def due(self, epoch: int, improved: np.ndarray, final: bool) -> bool:
        return bool(improved.any()) or final or epoch in self.extra_epochs or (self.every > 0 and epoch % self.every == 0)

    def on_epoch_end(self, epoch: int, record: dict[str, float], **kwargs: Any) -> None:
        if not (self.write and self.due(epoch, kwargs["improved"], kwargs["final"])):
            self.reporter.report(record, None)
            return
        with tempfile.TemporaryDirectory(prefix="mmse-ckpt-") as tmp:
            kwargs["write_checkpoint"](Path(tmp), record)
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
    """Keeps every epoch's record; the seed's `training_history` is built from it."""

    def __init__(self) -> None:
        self.records: list[dict[str, float]] = []

    def on_epoch_end(self, epoch: int, record: dict[str, float], **kwargs: Any) -> None:
        self.records.append(dict(record))

    def state_dict(self) -> dict[str, Any]:
        return {"records": self.records}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.records = list(state["records"])


class LRLogger(Callback):
    """Logs every change of the learning rate (the plateau schedule decides them)."""

    def __init__(self) -> None:
        self.last: float | None = None

    def on_epoch_end(self, epoch: int, record: dict[str, float], **kwargs: Any) -> None:
        lr = record["lr"]
        if self.last is not None and lr != self.last:
            log.info("epoch %d: learning rate %.3g -> %.3g", epoch, self.last, lr)
        self.last = lr


class FileLogger(Callback):
    """One line per epoch to a log file (and the `mmse_model.train` logger)."""

    def __init__(self, path: Path, every: int = 1):
        self.path, self.every = Path(path), every
        self.handler: logging.Handler | None = None

    def on_train_begin(self, **kwargs: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handler = logging.FileHandler(self.path)
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(self.handler)
        log.setLevel(logging.INFO)

    def on_epoch_end(self, epoch: int, record: dict[str, float], **kwargs: Any) -> None:
        if epoch % self.every == 0:
            log.info(
                "epoch %d train/loss %.5f val/loss %.5f val/rmse %.3f val/r2 %.3f lr %.2g",
                epoch, record["train/loss"], record["val/loss"], record["val/rmse"],
                record["val/r2"], record["lr"],
            )

    def on_train_end(self, **kwargs: Any) -> None:
        if kwargs.get("stop_reason"):
            log.info("stopped: %s", kwargs["stop_reason"])
        if self.handler is not None:
            log.removeHandler(self.handler)
            self.handler.close()
            self.handler = None


class TensorBoardLogger(Callback):
    """Scalars per epoch and the model graph once (the first model, as a plain MLP)."""

    def __init__(self, log_dir: Path):
        self.log_dir = Path(log_dir)
        self.writer = None

    def on_train_begin(self, **kwargs: Any) -> None:
        from torch.utils.tensorboard import SummaryWriter  # heavy import, only when used

        self.writer = SummaryWriter(log_dir=str(self.log_dir))
        single = kwargs["model"].fold_model(0).eval()
        with warnings.catch_warnings():
            # add_graph traces with torch.jit, which torch 2.x flags as deprecated.
            warnings.simplefilter("ignore", DeprecationWarning)
            self.writer.add_graph(single, torch.zeros(2, single[0].in_features))

    def on_epoch_end(self, epoch: int, record: dict[str, float], **kwargs: Any) -> None:
        for name, value in record.items():
            if name != "epoch":
                self.writer.add_scalar(name, value, epoch)

    def on_train_end(self, **kwargs: Any) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
