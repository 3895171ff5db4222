"""A task's weights file: safetensors, tensors only, nothing that executes when read.

    model.<name>            the K fold-models (`MemberMLPs` state: weights, batch-norm statistics)
    standardiser.mean       (K, 10) each fold-model's training mean
    standardiser.scale      (K, 10) and scale
    conformal.residual      (n,) |y_i - mu_{-k(i)}(x_i)| of the n training subjects (no ids)
    conformal.fold          (n,) k(i), the fold each was held out in
    features.min            (10,) the training subjects' range of each feature
    features.max            (10,)

The subtotal's file holds only `conformal.residual` and `conformal.fold`.

Each file's metadata (the safetensors header's strings) says what it is: `format`
(mmse-bundle-weights), `task`, and for a task's model its
`signature`, `folds`, `feature_names` and `score_range` (the subtotal's: `tasks`, `folds`,
`score_range`), so that weights moved, renamed or listed under another task in the manifest
are refused at load (`check_metadata`; a bundle of format 2 or older recorded only `format`,
`task` and `signature`, and those are checked). `check_task_tensors` and
`check_subtotal_tensors` refuse, in one line naming the file, a tensor missing or of another
shape, NaN or infinite values, a scale that is not positive, a negative residual or a fold
index outside the fold-models: nothing malformed reaches a prediction.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from mmse_model.core import atomic
from mmse_model.core.config import ArchConfig
from mmse_model.core.errors import InputError, first_line
from mmse_model.training.checkpoint import FoldEnsemble
from mmse_model.training.model import MemberMLPs, state_shapes

MODEL = "model."
FORMAT = "mmse-bundle-weights"
# Metadata every bundle's weights record; the rest only from bundle format 3 on.
ALWAYS_RECORDED = ("format", "task", "signature")
TEXT_KEYS = ("format", "task", "signature")  # as they are; the other values are JSON


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


def task_metadata(
    task: str,
    signature: str,
    folds: int,
    feature_names: tuple[str, ...],
    score_range: tuple[float, float],
) -> dict[str, Any]:
    """What a task's weights file records (and, at load, must record): the manifest's word."""
    return {
        "format": FORMAT,
        "task": task,
        "signature": signature,
        "folds": int(folds),
        "feature_names": [str(n) for n in feature_names],
        "score_range": [float(score_range[0]), float(score_range[1])],
    }


def subtotal_metadata(
    tasks: tuple[str, ...], folds: int, score_range: tuple[float, float]
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "task": "subtotal",
        "tasks": list(tasks),
        "folds": int(folds),
        "score_range": [float(score_range[0]), float(score_range[1])],
    }


def encode_metadata(values: dict[str, Any]) -> dict[str, str]:
    """safetensors metadata holds strings: text as it is, everything else as JSON."""
    return {k: v if k in TEXT_KEYS else json.dumps(v) for k, v in values.items()}


def write_weights(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Path:
    encoded = encode_metadata(metadata)
    return atomic.write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata=encoded))


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The file's tensors and its metadata (empty when it records none)."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = dict(handle.metadata() or {})
            names = handle.keys()
            tensors = {name: handle.get_tensor(name) for name in names}
    # A damaged header fails in several ways (the library's error, a JSON or type error).
    except (SafetensorError, OSError, ValueError, TypeError, RuntimeError) as exc:
        raise InputError(f"{path}: not a readable safetensors file ({first_line(exc)})") from None
    return tensors, metadata


def check_metadata(
    path: Path, metadata: dict[str, str], expected: dict[str, Any], complete: bool, what: str
) -> None:
    """Refuse weights whose recorded identity differs from what the manifest says of them
    (`what`: "the manifest's tasks.Q1"). With `complete` (a bundle of format 3 or newer) the
    file must record all of it; an older one is checked on what it recorded, ALWAYS_RECORDED
    at least."""
    for key, value in expected.items():
        if key not in metadata:
            if complete or key in ALWAYS_RECORDED:
                raise InputError(f"{path}: records no {key} ({what} says {_shown(value)})")
            continue
        raw = metadata[key]
        try:
            found = raw if key in TEXT_KEYS else json.loads(raw)
        except ValueError:
            found = raw
        if key == "score_range" and isinstance(found, list):
            found = [float(v) if isinstance(v, (int, float)) else v for v in found]
        if found != value:
            raise InputError(
                f"{path}: records {key} {_shown(found)}, but {what} says {_shown(value)}; "
                "the weights and the manifest do not belong together"
            )


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)[:200]


def check_task_tensors(
    path: Path,
    tensors: dict[str, torch.Tensor],
    arch: ArchConfig,
    folds: int,
    n_subjects: int,
    feature_min: tuple[float, ...],
    feature_max: tuple[float, ...],
) -> None:
    """Every tensor a task's model needs, of the manifest's shapes, finite, and in range."""
    n_features = len(feature_min)
    # One residual per training row: at least one per training subject (rows may repeat one).
    rows = _residual_rows(path, tensors, n_subjects)
    shapes = {f"{MODEL}{k}": v for k, v in state_shapes(arch, folds, n_features).items()}
    shapes.update(
        {
            "standardiser.mean": (folds, n_features),
            "standardiser.scale": (folds, n_features),
            "conformal.residual": (rows,),
            "conformal.fold": (rows,),
            "features.min": (n_features,),
            "features.max": (n_features,),
        }
    )
    _check_shapes(path, tensors, shapes, integer=("conformal.fold",))
    if not bool((tensors["standardiser.scale"] > 0).all()):
        raise InputError(f"{path}: standardiser.scale holds values <= 0 (a scale divides)")
    for name in (f"{MODEL}{k}" for k in shapes if k.endswith("running_var")):
        if not bool((tensors[name] >= 0).all()):
            raise InputError(f"{path}: {name} holds negative variances")
    _check_conformal(path, tensors, folds)
    for key, recorded in (("min", feature_min), ("max", feature_max)):
        if not np.array_equal(tensors[f"features.{key}"].double().numpy(), np.asarray(recorded)):
            raise InputError(
                f"{path}: features.{key} differs from the manifest's feature_{key}; "
                "the weights and the manifest do not belong together"
            )


def check_subtotal_tensors(
    path: Path, tensors: dict[str, torch.Tensor], folds: int, n_subjects: int
) -> None:
    shapes = {"conformal.residual": (n_subjects,), "conformal.fold": (n_subjects,)}
    _check_shapes(path, tensors, shapes, integer=("conformal.fold",))
    _check_conformal(path, tensors, folds)


def _residual_rows(path: Path, tensors: dict[str, torch.Tensor], n_subjects: int) -> int:
    residual = tensors.get("conformal.residual")
    if residual is None or residual.ndim != 1:
        return n_subjects  # _check_shapes names what is wrong
    if len(residual) < n_subjects:
        raise InputError(
            f"{path}: conformal.residual holds {len(residual)} residuals for {n_subjects} "
            "training subjects (the manifest's n_training_subjects)"
        )
    return len(residual)


def _check_shapes(
    path: Path,
    tensors: dict[str, torch.Tensor],
    shapes: dict[str, tuple[int, ...]],
    integer: tuple[str, ...],
) -> None:
    for name, shape in shapes.items():
        if name not in tensors:
            raise InputError(f"{path}: no tensor {name!r} (a bundle's weights file holds it)")
        tensor = tensors[name]
        if tuple(tensor.shape) != shape:
            raise InputError(
                f"{path}: {name} has shape {list(tensor.shape)}, expected {list(shape)} "
                "(from the manifest)"
            )
        if name in integer:
            if (
                tensor.dtype.is_floating_point
                or tensor.dtype.is_complex
                or tensor.dtype == torch.bool
            ):
                raise InputError(f"{path}: {name} is {tensor.dtype}, expected integers")
        elif not tensor.dtype.is_floating_point:
            raise InputError(f"{path}: {name} is {tensor.dtype}, expected floating point")
        elif not bool(torch.isfinite(tensor).all()):
            raise InputError(f"{path}: {name} holds NaN or infinite values")
    extra = sorted(set(tensors) - set(shapes))
    if extra:
        raise InputError(f"{path}: holds unexpected tensor(s) {', '.join(extra[:5])}")


def _check_conformal(path: Path, tensors: dict[str, torch.Tensor], folds: int) -> None:
    if not bool((tensors["conformal.residual"] >= 0).all()):
        raise InputError(
            f"{path}: conformal.residual holds negative values (residuals are |y - ŷ|)"
        )
    fold = tensors["conformal.fold"]
    outside = fold[(fold < 0) | (fold >= folds)]
    if len(outside):
        raise InputError(
            f"{path}: conformal.fold holds fold index {int(outside[0])}; expected 0 to "
            f"{folds - 1} ({folds} fold-models)"
        )


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
    """The K fold-models a weights file holds (checked by `check_task_tensors`), predicting
    in points as a checkpoint's do."""
    model = MemberMLPs(arch, n_models=folds, n_features=len(feature_names)).double()
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
