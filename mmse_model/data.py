"""The dataset contract (DESIGN.md section 3), subject-grouped splits and fold tensors.

A task dataset is `<data_root>/<sig>/<Q>.npz` with `X` (N, 10) and `y` (N,), optionally
`subject_id` (N,) and `feature_names` (10,). Every problem with such a file is a `DataError`
whose one-line message starts with the file's path.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from mmse_model.errors import DataError

N_FEATURES = 10
SIGNATURE_RE = re.compile(r"^m(\d+)_tau(\d+)_eps(\d+(?:\.\d+)?(?:e-?\d+)?)_lmin(\d+)$")
TASK_RE = re.compile(r"^Q[1-5]$")
DEFAULT_FEATURE_NAMES = tuple(f"f{i}" for i in range(N_FEATURES))


@dataclass(frozen=True)
class TaskData:
    """One (signature, task) dataset, validated. Rows may repeat a subject."""

    path: Path
    X: np.ndarray  # (N, 10) float64
    y: np.ndarray  # (N,) float64, in sub-score points
    subject_ids: np.ndarray  # (N,) str
    feature_names: tuple[str, ...]

    @property
    def subjects(self) -> np.ndarray:
        return np.unique(self.subject_ids)


def dataset_path(data_root: str | Path, signature: str, task: str) -> Path:
    if not SIGNATURE_RE.match(signature):
        raise DataError(
            f"signature {signature!r}: expected m<int>_tau<int>_eps<float>_lmin<int>, "
            "e.g. m2_tau1_eps0.055_lmin2"
        )
    if not TASK_RE.match(task):
        raise DataError(f"task {task!r}: expected one of Q1..Q5")
    return Path(data_root) / signature / f"{task}.npz"


def load_task_data(path: str | Path, score_range: tuple[float, float]) -> TaskData:
    """Load and check one npz dataset; `y` must lie in `score_range` (sub-score points)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such dataset file")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable npz archive ({_first_line(exc)})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: not an npz archive (a single .npy array)")
    with archive:
        arrays = {}
        for key in ("X", "y", "subject_id", "feature_names"):
            if key not in archive.files:
                continue
            try:
                arrays[key] = archive[key]
            except ValueError:
                # numpy refuses object arrays when allow_pickle=False.
                raise DataError(f"{path}: array {key!r} holds pickled objects, refused") from None
            except (OSError, zipfile.BadZipFile, EOFError) as exc:
                raise DataError(f"{path}: array {key!r} unreadable ({_first_line(exc)})") from None

    for key in ("X", "y"):
        if key not in arrays:
            raise DataError(f"{path}: missing array {key!r} (has {sorted(archive.files)})")
    X, y = arrays["X"], arrays["y"]
    if not np.issubdtype(X.dtype, np.number) or not np.issubdtype(y.dtype, np.number):
        raise DataError(f"{path}: X and y must be numeric, got {X.dtype} and {y.dtype}")
    if X.ndim != 2 or X.shape[1] != N_FEATURES:
        raise DataError(f"{path}: X must have shape (N, {N_FEATURES}), got {X.shape}")
    y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1:
        raise DataError(f"{path}: y must have shape (N,), got {y.shape}")
    if X.shape[0] != y.shape[0]:
        raise DataError(f"{path}: X has {X.shape[0]} rows but y has {y.shape[0]}")
    if X.shape[0] == 0:
        raise DataError(f"{path}: no rows")
    X, y = X.astype(np.float64), y.astype(np.float64)
    for key, arr in (("X", X), ("y", y)):
        bad = ~np.isfinite(arr)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise DataError(f"{path}: {key} has {int(bad.sum())} NaN/Inf values (first in row {row})")
    low, high = score_range
    outside = (y < low) | (y > high)
    if outside.any():
        row = int(np.argmax(outside))
        raise DataError(
            f"{path}: y has {int(outside.sum())} values outside the task's range "
            f"[{low:g}, {high:g}] (row {row}: {y[row]:g})"
        )

    if "subject_id" in arrays:
        subject_ids = arrays["subject_id"]
        if subject_ids.shape != (X.shape[0],):
            raise DataError(
                f"{path}: subject_id must have shape ({X.shape[0]},), got {subject_ids.shape}"
            )
        subject_ids = subject_ids.astype(str)
    else:
        subject_ids = np.array([f"row{i}" for i in range(X.shape[0])])
    _check_consistent_labels(path, subject_ids, y)

    feature_names = DEFAULT_FEATURE_NAMES
    if "feature_names" in arrays:
        names = arrays["feature_names"]
        if names.shape != (N_FEATURES,):
            raise DataError(f"{path}: feature_names must have shape ({N_FEATURES},), got {names.shape}")
        feature_names = tuple(str(n) for n in names)
    return TaskData(path, X, y, subject_ids, feature_names)


def load_features(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...] | None]:
    """Features for prediction: an npz with `X` (and optional `subject_id`, `feature_names`)
    or a CSV with a `subject_id` column and 10 feature columns. Returns (X, ids, names)."""
    if not path.is_file():
        raise DataError(f"{path}: no such input file")
    if path.suffix == ".csv":
        try:
            table = np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding="utf-8")
        except ValueError as exc:
            raise DataError(f"{path}: not a readable CSV ({_first_line(exc)})") from None
        columns = [c for c in (table.dtype.names or ()) if c != "subject_id"]
        if len(columns) != N_FEATURES:
            raise DataError(f"{path}: expected subject_id and {N_FEATURES} feature columns, got {len(columns)}")
        table = np.atleast_1d(table)
        try:
            X = np.stack([table[c].astype(np.float64) for c in columns], axis=1)
        except ValueError:
            raise DataError(f"{path}: feature columns must be numeric") from None
        ids = table["subject_id"].astype(str) if "subject_id" in table.dtype.names else None
        names: tuple[str, ...] | None = tuple(columns)
    else:
        try:
            with np.load(path, allow_pickle=False) as archive:
                if "X" not in archive.files:
                    raise DataError(f"{path}: missing array 'X'")
                X = archive["X"].astype(np.float64)
                ids = archive["subject_id"].astype(str) if "subject_id" in archive.files else None
                names = tuple(str(n) for n in archive["feature_names"]) if "feature_names" in archive.files else None
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise DataError(f"{path}: not a readable npz archive ({_first_line(exc)})") from None
    if X.ndim != 2 or X.shape[1] != N_FEATURES:
        raise DataError(f"{path}: X must have shape (N, {N_FEATURES}), got {X.shape}")
    if not np.isfinite(X).all():
        raise DataError(f"{path}: features hold NaN or Inf")
    if ids is None:
        ids = np.array([f"row{i}" for i in range(X.shape[0])])
    return X, ids, names


def _check_consistent_labels(path: Path, subject_ids: np.ndarray, y: np.ndarray) -> None:
    order = np.argsort(subject_ids, kind="stable")
    ids, ys = subject_ids[order], y[order]
    same_subject = ids[1:] == ids[:-1]
    conflict = same_subject & (ys[1:] != ys[:-1])
    if conflict.any():
        i = int(np.argmax(conflict))
        raise DataError(
            f"{path}: subject {str(ids[i])!r} has conflicting y values ({ys[i]:g} and {ys[i + 1]:g})"
        )


class EyeDataset(Dataset):
    """The seed's map-style dataset over one npz file, targets scaled by the task's range.

    Kept for code that wants a `DataLoader`; the trainer itself works on whole tensors.
    """

    def __init__(self, npz_path: str | Path, score_range: tuple[float, float]):
        self.data = load_task_data(npz_path, score_range)
        low, high = score_range
        self.X = torch.from_numpy(self.data.X).float()
        self.y = torch.from_numpy((self.data.y - low) / (high - low)).float()

    def __len__(self) -> int:
        return self.X.shape[0]

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.X[idx], self.y[idx]


# --- splits --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """Held-out test subjects and a fold number for every other subject."""

    test_subjects: tuple[str, ...]
    fold_of_subject: dict[str, int]  # subject -> fold in [0, folds)
    folds: int

    def fold_subjects(self, fold: int) -> tuple[str, ...]:
        return tuple(s for s, f in self.fold_of_subject.items() if f == fold)

    def to_dict(self) -> dict:
        return {
            "test_subjects": list(self.test_subjects),
            "fold_of_subject": dict(self.fold_of_subject),
            "folds": self.folds,
        }


def min_subjects(folds: int, test_fraction: float) -> int:
    """Smallest cohort that leaves >= 1 test subject and >= 2 validation subjects per fold."""
    n = 2 * folds + 1
    while n - _n_test(n, test_fraction) < 2 * folds or _n_test(n, test_fraction) < 1:
        n += 1
    return n


def _n_test(n_subjects: int, test_fraction: float) -> int:
    return max(1, int(round(test_fraction * n_subjects)))


def make_split(
    subject_ids: np.ndarray,
    y: np.ndarray,
    folds: int,
    test_fraction: float,
    seed: int,
    source: str = "dataset",
) -> Split:
    """Seeded, score-stratified, subject-grouped split.

    Subjects are ordered by sub-score and, within a score, by a keyed hash of (seed, id);
    test subjects are taken at evenly spaced positions of that order and the rest are dealt
    to folds in turn. The result depends only on the set of (subject, score) pairs and the
    seed, so every signature of a task (same subjects, same scores) gets the same split.
    """
    subject_score: dict[str, float] = {}
    for sid, score in zip(subject_ids.astype(str), y):
        subject_score[str(sid)] = float(score)
    n = len(subject_score)
    need = min_subjects(folds, test_fraction)
    if n < need:
        raise DataError(
            f"{source}: {n} subjects, need at least {need} for {folds} folds and a "
            f"{test_fraction:.0%} test set"
        )
    order = sorted(subject_score, key=lambda s: (subject_score[s], _subject_hash(seed, s)))
    n_test = _n_test(n, test_fraction)
    # Evenly spaced picks through the score-sorted order stratify the test set by score;
    # the offset keeps the pattern from always starting at the lowest score.
    picks = {int((i + 0.5) * n / n_test) for i in range(n_test)}
    test = [s for i, s in enumerate(order) if i in picks]
    rest = [s for i, s in enumerate(order) if i not in picks]
    fold_of_subject = {s: i % folds for i, s in enumerate(rest)}
    return Split(tuple(sorted(test)), fold_of_subject, folds)


def _subject_hash(seed: int, subject: str) -> str:
    return hashlib.blake2b(f"{seed}:{subject}".encode(), digest_size=8).hexdigest()


# --- fold tensors --------------------------------------------------------------------------


@dataclass(frozen=True)
class Standardiser:
    """Per-fold feature mean and scale, fitted on that fold's training subjects only."""

    mean: np.ndarray  # (K, 10)
    scale: np.ndarray  # (K, 10)

    @classmethod
    def fit(cls, fold_train_X: list[np.ndarray]) -> "Standardiser":
        mean = np.stack([x.mean(axis=0) for x in fold_train_X])
        std = np.stack([x.std(axis=0) for x in fold_train_X])
        # A constant feature would divide by zero; it carries no information, so leave it
        # centred at zero rather than blowing it up.
        scale = np.where(std > 1e-12, std, 1.0)
        return cls(mean, scale)

    def transform(self, fold: int, X: np.ndarray) -> np.ndarray:
        return (X - self.mean[fold]) / self.scale[fold]


@dataclass
class FoldTensors:
    """Every fold's train and validation rows, padded to a common length.

    Rows past `train_counts[k]` (or `val_counts[k]`) are padding and never enter a loss or
    metric. X is standardised with fold k's own statistics; y is scaled to [0, 1] by the
    task's score range.
    """

    X_train: torch.Tensor  # (K, n_train_max, 10)
    y_train: torch.Tensor  # (K, n_train_max)
    train_counts: torch.Tensor  # (K,) long
    X_val: torch.Tensor  # (K, n_val_max, 10)
    y_val: torch.Tensor  # (K, n_val_max)
    val_mask: torch.Tensor  # (K, n_val_max) bool
    standardiser: Standardiser
    score_range: tuple[float, float]

    @property
    def n_folds(self) -> int:
        return self.X_train.shape[0]

    def to(self, device: torch.device) -> "FoldTensors":
        for name in ("X_train", "y_train", "train_counts", "X_val", "y_val", "val_mask"):
            setattr(self, name, getattr(self, name).to(device))
        return self


def build_fold_tensors(
    data: TaskData,
    split: Split,
    score_range: tuple[float, float],
    dtype: torch.dtype = torch.float32,
) -> FoldTensors:
    low, high = score_range
    y_scaled = (data.y - low) / (high - low)
    fold_of_row = np.array([split.fold_of_subject.get(s, -1) for s in data.subject_ids])
    train_X, train_y, val_X, val_y = [], [], [], []
    for k in range(split.folds):
        train_rows = (fold_of_row >= 0) & (fold_of_row != k)
        val_rows = fold_of_row == k
        train_X.append(data.X[train_rows])
        train_y.append(y_scaled[train_rows])
        val_X.append(data.X[val_rows])
        val_y.append(y_scaled[val_rows])
    standardiser = Standardiser.fit(train_X)
    train_X = [standardiser.transform(k, x) for k, x in enumerate(train_X)]
    val_X = [standardiser.transform(k, x) for k, x in enumerate(val_X)]
    X_train, y_train, train_counts = _pad(train_X, train_y, dtype)
    X_val, y_val, val_counts = _pad(val_X, val_y, dtype)
    val_mask = torch.arange(X_val.shape[1])[None, :] < val_counts[:, None]
    return FoldTensors(
        X_train, y_train, train_counts, X_val, y_val, val_mask, standardiser, score_range
    )


def _pad(
    xs: list[np.ndarray], ys: list[np.ndarray], dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    counts = [len(y) for y in ys]
    n_max = max(counts)
    X = torch.zeros(len(xs), n_max, N_FEATURES, dtype=dtype)
    Y = torch.zeros(len(xs), n_max, dtype=dtype)
    for k, (x, y) in enumerate(zip(xs, ys)):
        X[k, : len(y)] = torch.from_numpy(x).to(dtype)
        Y[k, : len(y)] = torch.from_numpy(y).to(dtype)
    return X, Y, torch.tensor(counts, dtype=torch.long)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
