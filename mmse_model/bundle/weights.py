"""A task's weights file: safetensors, tensors only, nothing that executes when read.

    model.<name>            the K fold-models (`MemberMLPs` state: weights, batch-norm statistics)
    standardiser.mean       (K, 10) each fold-model's training mean
    standardiser.scale      (K, 10) and scale
    conformal.residual      (n,) |y_i - mu_{-k(i)}(x_i)| of the n training subjects (no ids)
    conformal.fold          (n,) k(i), the fold each was held out in
    features.min            (10,) the training subjects' range of each feature
    features.max            (10,)

The subtotal's file holds only `conformal.residual` and `conformal.fold`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mmse_model.core import atomic
from mmse_model.core.config import ArchConfig
from mmse_model.core.errors import InputError, first_line
from mmse_model.training.checkpoint import FoldEnsemble
from mmse_model.training.model import MemberMLPs

MODEL = "model."


def ensemble_tensors(ensemble: FoldEnsemble) -> dict[str, torch.Tensor]:
    state = {
        f"{MODEL}{name}": t.detach().cpu().contiguous()
        for name, t in ensemble.model.state_dict().items()
    }
    return {
        **state,
        "standardiser.mean": ensemble.mean.contiguous(),
        "standardiser.scale": ensemble.scale.contiguous(),
    }


def conformal_tensors(residuals: np.ndarray, folds: np.ndarray) -> dict[str, torch.Tensor]:
    return {
        "conformal.residual": torch.as_tensor(np.asarray(residuals, dtype=np.float64)).contiguous(),
        "conformal.fold": torch.as_tensor(np.asarray(folds, dtype=np.int64)).contiguous(),
    }


def range_tensors(feature_min: np.ndarray, feature_max: np.ndarray) -> dict[str, torch.Tensor]:
    return {
        "features.min": torch.as_tensor(np.asarray(feature_min, dtype=np.float64)),
        "features.max": torch.as_tensor(np.asarray(feature_max, dtype=np.float64)),
    }


def write_weights(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    return atomic.write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable safetensors file ({first_line(exc)})") from None


def ensemble_from_tensors(
    path: Path,
    tensors: dict[str, torch.Tensor],
    arch: ArchConfig,
    folds: int,
    task: str,
    signature: str,
    feature_names: tuple[str, ...],
    score_range: tuple[float, float],
) -> FoldEnsemble:
    """The K fold-models a weights file holds, predicting in points as a checkpoint's do."""
    model = MemberMLPs(arch, n_models=folds).double()
    state = {name[len(MODEL) :]: t for name, t in tensors.items() if name.startswith(MODEL)}
    try:
        model.load_state_dict({name: t.double() for name, t in state.items()})
        mean, scale = tensors["standardiser.mean"].double(), tensors["standardiser.scale"].double()
    except (RuntimeError, KeyError) as exc:
        raise InputError(
            f"{path}: does not hold {folds} fold-models of the manifest's architecture "
            f"({first_line(exc, 160)})"
        ) from None
    model.eval()
    return FoldEnsemble(model, mean, scale, score_range, task, signature, feature_names)
