"""The seed's API, kept callable: `QTrainer(q_tag, rqa_sig, config, device).fit(npz_path, ...)`.

A thin shell over `mmse_model.training.loop.train_run` that returns the seed's result dict
(`best_val_loss`, `final_epoch`, `history` in the seed's `training_history` layout, ...).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from mmse_model.core.config import Config
from mmse_model.training.callbacks import (
    DirectoryReporter,
    FileLogger,
    NullReporter,
    Reporter,
    TensorBoardLogger,
)
from mmse_model.training.loop import RunOutcome, RunSpec, seed_history, train_run


class QTrainer:
    """Trainer for one MMSE task (Q1-Q5) on one RQA signature, in-process.

    `out_dir`, when given, receives checkpoints, TensorBoard events and a log file.
    """

    def __init__(self, q_tag: str, rqa_sig: str, config: Config | dict[str, Any], device: str = "cpu",
                 out_dir: str | Path | None = None):
        self.q_tag, self.rqa_sig = q_tag, rqa_sig
        self.config = config if isinstance(config, Config) else Config.from_dict(config)
        self.device = torch.device(device)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.outcome: RunOutcome | None = None

    def fit(self, npz_path: str | Path, epochs: int | None = None, batch_size: int | None = None,
            folds: int | None = None) -> dict[str, Any]:
        npz_path = Path(npz_path)
        if npz_path.stem != self.q_tag:
            raise ValueError(f"{npz_path}: file is for task {npz_path.stem}, trainer for {self.q_tag}")
        values = {"training.epochs": epochs, "training.batch_size": batch_size, "split.folds": folds}
        config = self.config.with_values({k: v for k, v in values.items() if v is not None})
        # The data contract puts a dataset at <root>/<sig>/<Q>.npz.
        run = RunSpec(str(npz_path.parent.parent), (npz_path.parent.name,), npz_path.stem, config)
        extra: list = []
        reporter: Reporter = NullReporter()
        if self.out_dir is not None:
            extra = [TensorBoardLogger(self.out_dir / "tensorboard"), FileLogger(self.out_dir / "train.log")]
            reporter = DirectoryReporter(self.out_dir)
        started = time.perf_counter()
        self.outcome = train_run(run, reporter, device=self.device, extra_callbacks=extra)
        fit = self.outcome.fit
        state = self.outcome.checkpoint.states[0]
        return {
            "total_time": time.perf_counter() - started,
            "best_val_loss": state.best_val_loss,
            "final_epoch": fit.final_epoch,
            "best_epoch": state.best_epoch,
            "stop_reason": fit.stop_reason,
            "final_metrics": {"mean": dict(state.best_metrics)},
            "history": seed_history(fit.history),
        }
