"""Checkpoints: everything needed to resume a run or to predict with its models.

A checkpoint is a directory holding `model.pt` (a plain dict of tensors and Python values,
so it loads with `torch.load(weights_only=True)`). It carries the fold-models' weights, the
optimiser and scheduler state, the epoch, the callbacks' state, the config, the per-fold
standardiser, feature names, task, signature, score range, split, metrics and a format
version. Files are written to a temporary name and renamed, so a reader never sees half a
file.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmse_model.config import Config
from mmse_model.errors import CheckpointError
from mmse_model.model import FoldMLP

FORMAT = "mmse-checkpoint"
FORMAT_VERSION = 1
FILENAME = "model.pt"


def save_checkpoint(directory: Path, payload: dict[str, Any]) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / FILENAME
    tmp = directory / f".{FILENAME}.{os.getpid()}.tmp"
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, **payload}, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(location: str | Path) -> dict[str, Any]:
    """Load a checkpoint file or directory; anything else is a `CheckpointError`."""
    path = Path(location)
    if path.is_dir():
        path = path / FILENAME
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({first[:200]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an mmse checkpoint (no '{FORMAT}' format tag)")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r}, this code reads {FORMAT_VERSION}"
        )
    missing = [k for k in ("model_state", "config", "standardiser", "score_range", "task") if k not in payload]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing}")
    return payload


@dataclass
class FoldEnsemble:
    """The K fold-models of a checkpoint, predicting in points (mean over folds).

    Each fold-model standardises with its own training statistics; its prediction is clamped
    to the task's score range (a sub-score cannot leave it) and the K are averaged.
    """

    model: FoldMLP
    mean: torch.Tensor  # (K, 10)
    scale: torch.Tensor  # (K, 10)
    score_range: tuple[float, float]
    task: str
    signature: str
    feature_names: tuple[str, ...]

    @classmethod
    def from_checkpoint(cls, payload: dict[str, Any]) -> "FoldEnsemble":
        config = Config.from_dict(payload["config"])
        mean = payload["standardiser"]["mean"].double()
        model = FoldMLP(config.arch, n_models=mean.shape[0]).double()
        model.load_state_dict(payload["model_state"])
        model.eval()
        return cls(
            model,
            mean,
            payload["standardiser"]["scale"].double(),
            tuple(payload["score_range"]),
            payload["task"],
            payload.get("signature", ""),
            tuple(payload.get("feature_names", ())),
        )

    @torch.no_grad()
    def predict_folds(self, X: np.ndarray) -> np.ndarray:
        """(N, 10) features -> (K, N) predictions in points, one row per fold-model."""
        x = torch.as_tensor(np.asarray(X, dtype=np.float64))
        z = (x.unsqueeze(0) - self.mean.unsqueeze(1)) / self.scale.unsqueeze(1)  # (K, N, 10)
        low, high = self.score_range
        scaled = self.model(z)  # (K, N)
        return (scaled * (high - low) + low).clamp(low, high).numpy()

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_folds(X).mean(axis=0)
