"""Callbacks: everything the loop does besides learning (stopping, checkpoints, logs, reports).

The loop builds one record per epoch (a flat dict of namespaced floats) and hands it to
`CallbackManager.on_epoch_end`. Every hook takes `**kwargs` and is a no-op by default, so a
new argument breaks nobody. Callbacks with state expose `state_dict`/`load_state_dict` so a
resumed run continues where it stopped.
"""

from __future__ import annotations

import copy
import logging
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Protocol

import torch

from mmse_model.metrics import MONITOR

log = logging.getLogger("mmse_model.train")


class Callback:
    def on_train_begin(self, **kwargs: Any) -> None: ...
    def on_epoch_begin(self, epoch: int, **kwargs: Any) -> None: ...
    def on_epoch_end(self, epoch: int, record: dict[str, float], **kwargs: Any) -> None: ...
    def on_train_end(self, **kwargs: Any) -> None: ...

    def should_stop(self) -> tuple[bool, str]:
        return False, ""

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

    def should_stop(self) -> tuple[bool, str]:
        for cb in self.callbacks:
            stop, reason = cb.should_stop()
            if stop:
                return True, reason
        return False, ""

    def find(self, kind: type) -> Any:
        return next((cb for cb in self.callbacks if isinstance(cb, kind)), None)

    def state_dict(self) -> dict[str, Any]:
        return {type(cb).__name__: cb.state_dict() for cb in self.callbacks}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for cb in self.callbacks:
            if type(cb).__name__ in state:
                cb.load_state_dict(state[type(cb).__name__])


def is_improvement(value: float, best: float, min_delta: float) -> bool:
    return value < best - min_delta


class EarlyStopping(Callback):
    """Stop after `patience` epochs without an improvement of `min_delta` in `monitor`.

    With `restore_best` it keeps a copy of the best weights and puts them back at the end.
    The decision (`should_stop`) is separate from the action, which the loop takes.
    """

    def __init__(
        self,
        patience: int = 10,
        min_delta: float = 0.001,
        restore_best: bool = True,
        monitor: str = MONITOR,
    ):
        self.patience, self.min_delta = patience, min_delta
        self.restore_best, self.monitor = restore_best, monitor
        self.best = float("inf")
        self.best_epoch = 0
        self.wait = 0
        self.best_weights: dict[str, torch.Tensor] | None = None

    def on_epoch_end(self, epoch: int, record: dict[str, float], **kwargs: Any) -> None:
        value = record[self.monitor]
        if is_improvement(value, self.best, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self.best_weights = copy.deepcopy(kwargs["model"].state_dict())
        else:
            self.wait += 1

    def should_stop(self) -> tuple[bool, str]:
        if self.wait >= self.patience:
            return True, (
                f"{self.monitor} did not improve by {self.min_delta} for {self.patience} epochs "
                f"(best {self.best:.5f} at epoch {self.best_epoch})"
            )
        return False, ""

    def on_train_end(self, **kwargs: Any) -> None:
        self.restore_model(kwargs["model"])

    def restore_model(self, model: torch.nn.Module) -> None:
        if self.restore_best and self.best_weights is not None:
            model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.wait, self.best_weights = state["wait"], state["best_weights"]


class Reporter(Protocol):
    """Where epoch metrics and checkpoints go: a local folder, or `ray.train.report`."""

    def report(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None: ...


class ModelCheckpoint(Callback):
    """Decides when a checkpoint is due and hands it, with the epoch's metrics, to a reporter.

    A checkpoint is due when `monitor` improves (by the same `min_delta` as early stopping,
    so the best checkpoint holds exactly the weights early stopping restores) and every
    `every` epochs. Every epoch is reported, checkpoint or not, because a scheduler such as
    ASHA must see each epoch's metric.
    """

    def __init__(
        self,
        reporter: Reporter,
        every: int = 10,
        min_delta: float = 0.0,
        monitor: str = MONITOR,
        write: bool = True,
    ):
        self.reporter, self.every, self.min_delta = reporter, every, min_delta
        self.monitor = monitor
        # Only one rank writes checkpoints; the others still report, since a distributed
        # report is a barrier that every worker must reach.
        self.write = write
        self.best = float("inf")

    def on_epoch_end(self, epoch: int, record: dict[str, float], **kwargs: Any) -> None:
        improved = is_improvement(record[self.monitor], self.best, self.min_delta)
        if improved:
            self.best = record[self.monitor]
        due = improved or (self.every > 0 and epoch % self.every == 0)
        if not (due and self.write):
            self.reporter.report(record, None)
            return
        with tempfile.TemporaryDirectory(prefix="mmse-ckpt-") as tmp:
            kwargs["write_checkpoint"](Path(tmp), record)
            self.reporter.report(record, Path(tmp))

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]


class DirectoryReporter:
    """In-process reporter: keeps `latest/` and `best/` checkpoints and a metrics log."""

    def __init__(self, out_dir: Path, monitor: str = MONITOR):
        self.out_dir = Path(out_dir)
        self.monitor = monitor
        self.best = float("inf")
        self.records: list[dict[str, float]] = []

    def report(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None:
        self.records.append(dict(metrics))
        if checkpoint_dir is None:
            return
        root = self.out_dir / "checkpoints"
        root.mkdir(parents=True, exist_ok=True)
        _replace_dir(checkpoint_dir, root / "latest")
        if metrics[self.monitor] < self.best:
            self.best = metrics[self.monitor]
            _replace_dir(checkpoint_dir, root / "best")


def _replace_dir(source: Path, target: Path) -> None:
    """Copy `source` to `target` so that `target` is never seen half-written."""
    staging = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    old = target.with_name(f".{target.name}.old")
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


class LRLogger(Callback):
    """Logs every change of the learning rate (ReduceLROnPlateau decides them)."""

    def __init__(self) -> None:
        self.last: float | None = None

    def on_epoch_end(self, epoch: int, record: dict[str, float], **kwargs: Any) -> None:
        lr = record["lr"]
        if self.last is not None and lr != self.last:
            log.info("epoch %d: learning rate %.3g -> %.3g", epoch, self.last, lr)
        self.last = lr


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
            log.info("stopped early: %s", kwargs["stop_reason"])
        if self.handler is not None:
            log.removeHandler(self.handler)
            self.handler.close()
            self.handler = None


class TensorBoardLogger(Callback):
    """Scalars per epoch and the model graph once (fold 0's network, as a plain MLP)."""

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
