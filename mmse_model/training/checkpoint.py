"""Checkpoints: everything needed to resume a run or to predict with any of its signatures.

A checkpoint is a folder holding `model.pt`: one `CheckpointPayload` saved as plain dicts,
lists, numbers, strings and tensors, so it loads with `torch.load(weights_only=True)`. A run
trains S signatures x K folds as M = S*K members (member s*K + k is signature s's fold-k
model); the payload holds the current weights (to resume) and every member's best weights
so far (what predictions use), each signature's tracker state and metrics at its best
epoch, the per-member standardiser, the config, split, task, feature names and score
range. `FoldEnsemble.from_checkpoint` reads one signature's K models out of it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import ConfigDict

from mmse_model.core import atomic, storage
from mmse_model.core.config import Config
from mmse_model.core.contract import check_version, version_of
from mmse_model.core.domain import N_FEATURES
from mmse_model.core.errors import CheckpointError, ConfigError, first_line
from mmse_model.core.schema import Schema
from mmse_model.training.model import MemberMLPs, state_shapes

FORMAT = "mmse-checkpoint"
FORMAT_VERSION = 2
FILENAME = "model.pt"


class SignatureState(Schema):
    """One signature's standing in its run."""

    signature: str
    best_epoch: int  # 0 until the first epoch
    best_val_loss: float
    active: bool  # still training (not stopped early)
    stop_epoch: int  # the epoch early stopping ended it; 0 while active
    best_metrics: dict[str, float]  # validation metrics at best_epoch, mean and sd over folds


class CheckpointPayload(Schema):
    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, arbitrary_types_allowed=True
    )

    format: Literal["mmse-checkpoint"] = FORMAT
    format_version: Literal[2] = FORMAT_VERSION
    task: str
    signatures: list[str]
    folds: int
    feature_names: list[str]
    score_range: list[float]
    config: dict[str, Any]
    split: dict[str, Any]
    epoch: int  # epochs completed
    finished: bool  # the run ended (every signature stopped, or the epoch limit)
    stop_reason: str
    states: list[SignatureState]  # one per signature, in `signatures` order
    model_state: dict[str, torch.Tensor]  # current weights, every tensor (M, ...)
    best_model_state: dict[str, torch.Tensor]  # each member's best weights so far
    standardiser_mean: torch.Tensor  # (M, 10)
    standardiser_scale: torch.Tensor  # (M, 10)
    optimizer: dict[str, Any]
    schedule: dict[str, Any] | None
    tracker: dict[str, Any]
    callbacks: dict[str, Any]
    metrics: dict[str, float]  # the epoch record this checkpoint was written with

    def state(self, signature: str) -> SignatureState:
        return self.states[self.signature_index(signature)]

    def signature_index(self, signature: str) -> int:
        if signature not in self.signatures:
            raise CheckpointError(
                f"checkpoint of {', '.join(self.signatures)}: holds no signature {signature!r}"
            )
        return self.signatures.index(signature)

    def training_config(self) -> Config:
        return Config.parse(self.config)


def save_checkpoint(directory: str | Path, payload: CheckpointPayload) -> Path:
    document = payload.model_dump()
    return atomic.write_with(Path(directory) / FILENAME, lambda tmp: torch.save(document, tmp))


def load_checkpoint(location: str | Path) -> CheckpointPayload:
    """Load a checkpoint file or folder, a local path or a storage URI
    (`s3://.../checkpoint_000004`, read into a temporary copy); anything else is a
    `CheckpointError` naming it, a storage that does not answer `StorageUnavailable`."""
    if storage.is_remote(str(location)):
        with _local_copy(str(location)) as path:
            return _load_file(path, shown=storage.redact(str(location)))
    path = Path(location)
    if path.is_dir():
        path = path / FILENAME
    return _load_file(path, shown=str(path))


@contextlib.contextmanager
def _local_copy(location: str) -> Iterator[Path]:
    """The `model.pt` of a remote checkpoint (its folder or the file itself), copied to
    local disk for as long as the context lasts."""
    storage.check_location(location, "checkpoint")
    if storage.name(location) != FILENAME:
        location = storage.join(location, FILENAME)
    base = location.partition("?")[0]
    folder = base.rsplit("/", 2)[-2]  # checkpoint_000004
    with contextlib.ExitStack() as stack:
        try:
            path = stack.enter_context(storage.local_copy(location, what=f"reading {folder}"))
        except FileNotFoundError as exc:
            raise CheckpointError(
                f"{base}: cannot read the checkpoint ({first_line(exc)})"
            ) from None
        yield path


def _load_file(path: Path, shown: str) -> CheckpointPayload:
    if not path.is_file():
        raise CheckpointError(f"{shown}: no such checkpoint file")
    try:
        document = torch.load(path, map_location="cpu", weights_only=True)
    # A torn or foreign file fails in many ways (KeyError, EOFError, ...): catch them all.
    except Exception as exc:  # noqa: BLE001 - any failure here is an unreadable checkpoint
        raise CheckpointError(
            f"{shown}: not a readable checkpoint ({first_line(exc, 200)})"
        ) from None
    version = version_of(shown, document, FORMAT, "an mmse checkpoint", error=CheckpointError)
    check_version(shown, FORMAT, version, FORMAT_VERSION, FORMAT_VERSION, CheckpointError)
    try:
        return CheckpointPayload.parse(document)
    except ConfigError as exc:
        raise CheckpointError(f"{shown}: {exc}") from None


def _check_members(payload: CheckpointPayload, config: Config, rows: slice, where: str) -> None:
    """Refuse, in one line, a checkpoint whose best weights or standardisers do not fit its
    own architecture, signatures and folds, whose chosen members (`rows`) hold NaN or
    infinite values, or whose score range is empty: what would otherwise be a traceback or
    NaN predictions."""
    members = len(payload.signatures) * payload.folds
    if payload.folds < 1:
        raise CheckpointError(f"{where}: folds {payload.folds}, expected 1 or more")
    if len(payload.feature_names) != N_FEATURES:
        raise CheckpointError(
            f"{where}: {len(payload.feature_names)} feature names, expected {N_FEATURES}"
        )
    bounds = payload.score_range
    if len(bounds) != 2 or not all(map(math.isfinite, bounds)) or not bounds[0] < bounds[1]:
        raise CheckpointError(f"{where}: score_range {list(bounds)} is not [low, high], low < high")
    expected = {
        **{f"best_model_state.{k}": v for k, v in state_shapes(config.arch, members).items()},
        "standardiser_mean": (members, N_FEATURES),
        "standardiser_scale": (members, N_FEATURES),
    }
    found = {
        **{f"best_model_state.{k}": t for k, t in payload.best_model_state.items()},
        "standardiser_mean": payload.standardiser_mean,
        "standardiser_scale": payload.standardiser_scale,
    }
    for name, shape in expected.items():
        tensor = found.get(name)
        if tensor is None:
            raise CheckpointError(f"{where}: no tensor {name} (its architecture has one)")
        if tuple(tensor.shape) != shape:
            raise CheckpointError(
                f"{where}: {name} has shape {list(tensor.shape)}, expected {list(shape)} "
                f"({len(payload.signatures)} signature(s) x {payload.folds} folds)"
            )
        if not tensor.dtype.is_floating_point or not bool(torch.isfinite(tensor[rows]).all()):
            raise CheckpointError(f"{where}: {name} holds NaN, infinite or non-float values")
    extra = sorted(set(found) - set(expected))
    if extra:
        raise CheckpointError(f"{where}: unexpected tensor(s) {', '.join(extra[:5])}")
    if not bool((payload.standardiser_scale[rows] > 0).all()):
        raise CheckpointError(f"{where}: standardiser_scale holds values <= 0")


def select_signatures(payload: CheckpointPayload, keep: Sequence[str]) -> CheckpointPayload:
    """The payload of the `keep` signatures alone, in that order, each as it stood: its K
    members' weights, best weights, Adam moments and rates, standardisers, tracker, schedule
    and state. The members of a run share nothing (mmse_model/training/loop.py), so a run
    resumed from this goes on for them as the whole run would have: successive halving
    drops the others this way (mmse_model/sweeps/nested.py)."""
    index = [payload.signature_index(signature) for signature in keep]
    K, M = payload.folds, payload.folds * len(payload.signatures)
    rows = torch.tensor([s * K + k for s in index for k in range(K)], dtype=torch.long)

    def members(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.index_select(0, rows) if tensor.dim() and tensor.shape[0] == M else tensor

    def signatures(values: dict[str, Any]) -> dict[str, Any]:
        """A per-signature state (the tracker's, the schedule's): lists of S, scalars kept."""
        return {
            k: [v[i] for i in index]
            if isinstance(v, list) and len(v) == len(payload.signatures)
            else v
            for k, v in values.items()
        }

    optimizer = dict(payload.optimizer)
    optimizer["lr"] = members(optimizer["lr"])
    for key in ("exp_avg", "exp_avg_sq"):
        optimizer[key] = [members(t) for t in optimizer[key]]
    return payload.model_copy(
        update={
            "signatures": list(keep),
            "states": [payload.states[i] for i in index],
            "model_state": {k: members(v) for k, v in payload.model_state.items()},
            "best_model_state": {k: members(v) for k, v in payload.best_model_state.items()},
            "standardiser_mean": members(payload.standardiser_mean),
            "standardiser_scale": members(payload.standardiser_scale),
            "optimizer": optimizer,
            "schedule": signatures(payload.schedule) if payload.schedule else None,
            "tracker": signatures(payload.tracker),
        }
    )


def member_rows(signature_index: int, folds: int) -> slice:
    return slice(signature_index * folds, (signature_index + 1) * folds)


@dataclass
class FoldEnsemble:
    """One signature's K fold-models from a checkpoint, predicting in points.

    Each fold-model standardises with its own training statistics; its prediction is clamped
    to the task's score range (a sub-score cannot leave it) and the K are averaged.
    """

    model: MemberMLPs
    mean: torch.Tensor  # (K, 10)
    scale: torch.Tensor  # (K, 10)
    score_range: tuple[float, float]
    task: str
    signature: str
    feature_names: tuple[str, ...]

    @classmethod
    def from_checkpoint(
        cls, payload: CheckpointPayload, signature: str | None = None, where: str = "checkpoint"
    ) -> FoldEnsemble:
        """One signature's K fold-models, checked first (`where` names the checkpoint in the
        one-line CheckpointError): every tensor of the architecture's shapes, finite, with
        positive scales, and a score range low < high."""
        if signature is None:
            if len(payload.signatures) != 1:
                raise CheckpointError(
                    f"{where}: a checkpoint of {len(payload.signatures)} signatures "
                    f"({', '.join(payload.signatures)}); name one with --signature"
                )
            signature = payload.signatures[0]
        try:
            index = payload.signature_index(signature)
        except CheckpointError as exc:
            raise CheckpointError(f"{where}: {exc}") from None
        config = payload.training_config()
        rows = member_rows(index, payload.folds)
        _check_members(payload, config, rows, where)
        model = MemberMLPs(config.arch, n_models=payload.folds).double()
        model.load_state_dict({name: t[rows] for name, t in payload.best_model_state.items()})
        model.eval()
        return cls(
            model,
            payload.standardiser_mean[rows].double(),
            payload.standardiser_scale[rows].double(),
            (payload.score_range[0], payload.score_range[1]),
            payload.task,
            signature,
            tuple(payload.feature_names),
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
