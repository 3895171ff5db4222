"""Best-so-far of a minimised metric: the one tracker behind early stopping, checkpointing,
the reporter and the results table (the learning-rate schedule keeps its own best, with
torch's relative threshold).

A run trains S signatures at once, so the tracker holds S values; a run of one signature
is S = 1. An epoch improves a signature when its value drops below `best - min_delta`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


class Improvement:
    def __init__(self, n: int = 1, min_delta: float = 0.0):
        self.min_delta = float(min_delta)
        self.best = np.full(n, np.inf)
        self.best_epoch = np.zeros(n, dtype=np.int64)
        self.wait = np.zeros(n, dtype=np.int64)  # epochs since the last improvement

    def update(
        self, values: Iterable[float] | float, epoch: int, active: np.ndarray | None = None
    ) -> np.ndarray:
        """Record one epoch; returns which entries improved (bool, (n,)). Entries that are
        not `active` (a signature that has stopped) are left as they are."""
        values = np.atleast_1d(np.asarray(values, dtype=np.float64))
        active = np.ones_like(self.best, dtype=bool) if active is None else active
        improved = active & (values < self.best - self.min_delta)
        self.best = np.where(improved, values, self.best)
        self.best_epoch = np.where(improved, epoch, self.best_epoch)
        self.wait = np.where(improved, 0, np.where(active, self.wait + 1, self.wait))
        return improved

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best.tolist(),
            "best_epoch": self.best_epoch.tolist(),
            "wait": self.wait.tolist(),
            "min_delta": self.min_delta,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = np.asarray(state["best"], dtype=np.float64)
        self.best_epoch = np.asarray(state["best_epoch"], dtype=np.int64)
        self.wait = np.asarray(state["wait"], dtype=np.int64)
        self.min_delta = float(state["min_delta"])
