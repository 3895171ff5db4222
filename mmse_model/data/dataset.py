"""The dataset contract (docs/design.md, "Data"), subject-grouped splits and fold tensors.

A task dataset is `<data_root>/<sig>/<Q>.npz` with `X` (N, 10) and `y` (N,), optionally
`subject_id` (N,) and `feature_names` (10,), and (written by `mmse data build`) its identity:
signature, task, build parameters, builder version (`core/identity.py`). A recorded identity
that contradicts the file's path is refused; a file without one is taken for what its path
says. Subject ids are strings exactly as written (`007` is not `7`). Every problem with such
a file is a `DataError` whose one-line message starts with the file's path.
"""

from __future__ import annotations

import csv
import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmse_model.core.csvsafe import unescape
from mmse_model.core.domain import N_FEATURES, TASKS, check_task, parse_signature
from mmse_model.core.errors import DataError, first_line
from mmse_model.core.identity import IDENTITY_KEYS, DatasetIdentity, check_against_path
from mmse_model.core.inputs import MAX_FILE_MB, regular_file_problem, too_big

DEFAULT_FEATURE_NAMES = tuple(f"f{i}" for i in range(N_FEATURES))


@dataclass(frozen=True)
class TaskData:
    """One (signature, task) dataset, validated. Rows may repeat a subject."""

    path: Path
    X: np.ndarray  # (N, 10) float64
    y: np.ndarray  # (N,) float64, in sub-score points
    subject_ids: np.ndarray  # (N,) str
    feature_names: tuple[str, ...]
    identity: DatasetIdentity | None = None  # None: written before identity existed

    @property
    def subjects(self) -> np.ndarray:
        return np.unique(self.subject_ids)


def dataset_path(data_root: str | Path, signature: str, task: str) -> Path:
    return Path(data_root) / parse_signature(signature).name / f"{check_task(task)}.npz"


def load_task_data(path: str | Path, score_range: tuple[float, float]) -> TaskData:
    """Load and check one npz dataset; `y` must lie in `score_range` (sub-score points)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such dataset file")
    arrays, present = _read_npz(path, ("X", "y", "subject_id", "feature_names", *IDENTITY_KEYS))
    identity = DatasetIdentity.from_arrays(path, arrays)
    check_against_path(path, identity)

    for key in ("X", "y"):
        if key not in arrays:
            raise DataError(f"{path}: missing array {key!r} (has {sorted(present)})")
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
            raise DataError(
                f"{path}: {key} has {int(bad.sum())} NaN/Inf values (first in row {row})"
            )
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
        subject_ids = subject_id_strings(path, subject_ids)
    else:
        subject_ids = np.array([f"row{i}" for i in range(X.shape[0])])
    _check_consistent_labels(path, subject_ids, y)

    feature_names = DEFAULT_FEATURE_NAMES
    if "feature_names" in arrays:
        names = arrays["feature_names"]
        if names.shape != (N_FEATURES,):
            raise DataError(
                f"{path}: feature_names must have shape ({N_FEATURES},), got {names.shape}"
            )
        feature_names = tuple(str(n) for n in names)
    return TaskData(path, X, y, subject_ids, feature_names, identity)


def _read_npz(path: Path, keys: tuple[str, ...]) -> tuple[dict[str, np.ndarray], list[str]]:
    """The named arrays an npz holds (allow_pickle=False), and the names of all it holds."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable npz archive ({first_line(exc)})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: not an npz archive (a single .npy array)")
    with archive:
        arrays = {}
        for key in keys:
            if key not in archive.files:
                continue
            try:
                arrays[key] = archive[key]
            except ValueError:
                # numpy refuses object arrays when allow_pickle=False.
                raise DataError(f"{path}: array {key!r} holds pickled objects, refused") from None
            except (OSError, zipfile.BadZipFile, EOFError) as exc:
                raise DataError(f"{path}: array {key!r} unreadable ({first_line(exc)})") from None
        return arrays, list(archive.files)


def subject_id_strings(path: object, ids: np.ndarray) -> np.ndarray:
    """Subject ids as strings, exactly as written. Text arrays are taken as they are and
    integers spelt in decimal; floating-point ids are refused, because a number has already
    lost how the id was written (`007` became 7.0, `1e3` became 1000.0)."""
    if ids.dtype.kind == "U":
        return ids
    if ids.dtype.kind == "S":
        try:
            return np.array([s.decode("utf-8") for s in ids.tolist()], dtype=np.str_)
        except UnicodeDecodeError:
            raise DataError(f"{path}: subject_id holds bytes that are not UTF-8 text") from None
    if ids.dtype.kind in "iu":
        return ids.astype(str)
    raise DataError(
        f"{path}: subject_id must be strings, got {ids.dtype} numbers "
        "(an id stored as a number has lost how it was written: 007 -> 7.0)"
    )


@dataclass(frozen=True)
class Features:
    """Features to predict for: rows of X, their subject ids, and what the file says it is."""

    path: Path
    X: np.ndarray  # (N, 10) float64
    subject_ids: np.ndarray  # (N,) str, as written
    feature_names: tuple[str, ...] | None
    identity: DatasetIdentity | None  # recorded in an npz; None for a CSV or an older npz


def read_features(path: str | Path, max_file_mb: float = MAX_FILE_MB) -> Features:
    """Features for prediction: an npz with `X` (and optional `subject_id`, `feature_names`,
    identity) or a CSV with a `subject_id` column and 10 feature columns. A recorded identity
    that contradicts the path `<signature>/<Q>.npz` is refused, and so is a file above
    `max_file_mb` (checked before it is read; an npz's arrays also unpacked) or one of no rows."""
    path = Path(path)
    check_input_file(path, "features file")
    keys = ("X", "subject_id", "feature_names", *IDENTITY_KEYS)
    check_file_size(path, max_file_mb, keys if path.suffix != ".csv" else None)
    identity = None
    if path.suffix == ".csv":
        X, ids, names = _read_features_csv(path)
    else:
        arrays, _ = _read_npz(path, keys)
        identity = DatasetIdentity.from_arrays(path, arrays)
        check_against_path(path, identity)
        if "X" not in arrays:
            raise DataError(f"{path}: missing array 'X'")
        if not np.issubdtype(arrays["X"].dtype, np.number):
            raise DataError(f"{path}: X must be numeric, got {arrays['X'].dtype}")
        X = arrays["X"].astype(np.float64)
        ids = subject_id_strings(path, arrays["subject_id"]) if "subject_id" in arrays else None
        names = (
            tuple(str(n) for n in np.atleast_1d(arrays["feature_names"]))
            if "feature_names" in arrays
            else None
        )
    if X.ndim != 2 or X.shape[1] != N_FEATURES:
        raise DataError(f"{path}: X must have shape (N, {N_FEATURES}), got {X.shape}")
    if X.shape[0] == 0:
        raise DataError(f"{path}: no subjects (X has 0 rows); nothing to predict")
    if not np.isfinite(X).all():
        raise DataError(f"{path}: features hold NaN or Inf")
    if ids is None:
        ids = np.array([f"row{i}" for i in range(X.shape[0])])
    elif ids.shape != (X.shape[0],):
        raise DataError(
            f"{path}: subject_id must have shape ({X.shape[0]},) like X's rows, got {ids.shape}"
        )
    if names is not None and len(names) != N_FEATURES:
        raise DataError(f"{path}: feature_names must name {N_FEATURES} features, got {len(names)}")
    return Features(path, X, ids, names, identity)


def check_input_file(path: Path, what: str) -> None:
    """`path` must be a regular file (symlinks followed): a directory, a device or a FIFO is
    refused in one line, never read (a FIFO would block, /dev/zero never ends)."""
    problem = regular_file_problem(path)
    if problem == "no such file":
        raise DataError(f"{path}: no such {what}")
    if problem is not None:
        raise DataError(f"{path}: {problem}; expected a {what}")


def check_file_size(path: Path, max_file_mb: float, npz_keys: tuple[str, ...] | None) -> None:
    """Refuse, before reading it, a file above `max_file_mb` (1 MB = 10^6 bytes); for an npz
    (`npz_keys`: the arrays to be read) also arrays that unpack to more, or whose header asks
    for more memory than the archive holds for them."""
    limit = int(max_file_mb * 1_000_000)
    reason = too_big(path.stat().st_size, max_file_mb)
    if reason:
        raise DataError(f"{path}: {reason}")
    if npz_keys is None or not zipfile.is_zipfile(path):  # not an archive: _read_npz says so
        return
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename: info for info in archive.infolist()}
            chosen = [members[f"{k}.npy"] for k in npz_keys if f"{k}.npy" in members]
            unpacked = sum(info.file_size for info in chosen)
            if unpacked > limit:
                raise DataError(
                    f"{path}: its arrays unpack to {unpacked / 1e6:.1f} MB, above --max-file-mb "
                    f"{max_file_mb:g} (not read)"
                )
            for info in chosen:
                with archive.open(info) as member:
                    nbytes = _declared_bytes(member)
                if nbytes is not None and nbytes > info.file_size:
                    raise DataError(
                        f"{path}: array {info.filename[:-4]!r} declares {nbytes} bytes but the "
                        f"archive holds {info.file_size}; a damaged or forged file"
                    )
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: not a readable npz archive ({first_line(exc)})") from None


def _declared_bytes(member: Any) -> int | None:
    """The bytes an .npy member's header says its array takes (None: a header version this
    check does not read; numpy's own reader checks it)."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        return None
    if dtype.hasobject:  # pickled objects: refused when read (allow_pickle=False)
        return None
    return int(np.prod(shape, dtype=object)) * dtype.itemsize


def _read_features_csv(path: Path) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...]]:
    """A features CSV with the csv module: every cell of `subject_id` stays the text it is
    (no number parsing), every other column must be numeric."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    except (OSError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV ({first_line(exc)})") from None
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise DataError(
            f"{path}: empty CSV (expected a header: subject_id and {N_FEATURES} feature columns)"
        )
    header = [cell.strip() for cell in rows[0]]
    columns = [c for c in header if c != "subject_id"]
    if len(columns) != N_FEATURES:
        raise DataError(
            f"{path}: expected subject_id and {N_FEATURES} feature columns, got {len(columns)}"
        )
    id_column = header.index("subject_id") if "subject_id" in header else None
    feature_columns = [i for i, c in enumerate(header) if c != "subject_id"]
    X, ids = [], []
    for line_no, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise DataError(f"{path}: line {line_no}: {len(row)} fields, expected {len(header)}")
        if id_column is not None:
            # Surrounding spaces are not part of an id; everything else is, as written (an id
            # the project escaped for spreadsheets reads back as it was: core/csvsafe.py).
            ids.append(unescape(row[id_column].strip()))
            if not ids[-1]:
                raise DataError(f"{path}: line {line_no}: empty subject_id")
        values = []
        for i in feature_columns:
            try:
                values.append(float(row[i]))
            except ValueError:
                raise DataError(
                    f"{path}: line {line_no}: {header[i]}={row[i].strip()[:20]!r} is not a number"
                ) from None
        X.append(values)
    if not X:
        raise DataError(f"{path}: no rows")
    return (
        np.array(X, dtype=np.float64).reshape(-1, N_FEATURES),
        None if id_column is None else np.array(ids, dtype=np.str_),
        tuple(columns),
    )


def _check_consistent_labels(path: Path, subject_ids: np.ndarray, y: np.ndarray) -> None:
    order = np.argsort(subject_ids, kind="stable")
    ids, ys = subject_ids[order], y[order]
    same_subject = ids[1:] == ids[:-1]
    conflict = same_subject & (ys[1:] != ys[:-1])
    if conflict.any():
        i = int(np.argmax(conflict))
        raise DataError(
            f"{path}: subject {str(ids[i])!r} has conflicting y values "
            f"({ys[i]:g} and {ys[i + 1]:g})"
        )


# --- splits --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """Held-out test subjects and a fold number for every other subject."""

    test_subjects: tuple[str, ...]
    fold_of_subject: dict[str, int]  # subject -> fold in [0, folds)
    folds: int

    def to_dict(self) -> dict:
        return {
            "test_subjects": list(self.test_subjects),
            "fold_of_subject": dict(self.fold_of_subject),
            "folds": self.folds,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Split:
        return cls(
            tuple(data["test_subjects"]),
            {str(k): int(v) for k, v in data["fold_of_subject"].items()},
            int(data["folds"]),
        )


def min_subjects(folds: int, test_fraction: float) -> int:
    """Smallest cohort that leaves >= 2 validation subjects per fold and, with a test
    fraction, >= 1 test subject."""
    n = 2 * folds
    while n - _n_test(n, test_fraction) < 2 * folds or (
        test_fraction and _n_test(n, test_fraction) < 1
    ):
        n += 1
    return n


def _n_test(n_subjects: int, test_fraction: float) -> int:
    return max(1, round(test_fraction * n_subjects)) if test_fraction > 0 else 0


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
    A test fraction of 0 holds no subject out: every subject is in a fold.
    """
    subject_score = _scores_by_subject(subject_ids, y)
    n = len(subject_score)
    need = min_subjects(folds, test_fraction)
    if n < need:
        held = f" and a {test_fraction:.0%} test set" if test_fraction else ""
        raise DataError(f"{source}: {n} subjects, need at least {need} for {folds} folds{held}")
    order = _stratified_order(subject_score, seed)
    n_test = _n_test(n, test_fraction)
    # Evenly spaced picks through the score-sorted order stratify the test set by score;
    # the offset keeps the pattern from always starting at the lowest score.
    picks = {int((i + 0.5) * n / n_test) for i in range(n_test)}
    test = [s for i, s in enumerate(order) if i in picks]
    rest = [s for i, s in enumerate(order) if i not in picks]
    fold_of_subject = {s: i % folds for i, s in enumerate(rest)}
    return Split(tuple(sorted(test)), fold_of_subject, folds)


def outer_fold_split(
    subject_ids: np.ndarray,
    y: np.ndarray,
    outer_folds: int,
    outer_fold: int,
    folds: int,
    seed: int,
    source: str = "dataset",
) -> Split:
    """One outer fold of a cross-validation over every subject: the subjects are ordered by
    score (ties by a keyed hash of (seed, id)) and dealt in turn to `outer_folds` folds, so
    each fold's scores spread like the cohort's; fold `outer_fold` is the test set, and the
    rest are ordered and dealt to `folds` inner folds the same way."""
    subject_score = _scores_by_subject(subject_ids, y)
    n = len(subject_score)
    if not 0 <= outer_fold < outer_folds:
        raise DataError(f"{source}: outer fold {outer_fold} of {outer_folds}")
    need = max(outer_folds, 2 * folds)
    while need - -(-need // outer_folds) < 2 * folds:  # the largest outer fold held out
        need += 1
    if n < need:
        raise DataError(
            f"{source}: {n} subjects, need at least {need} for {outer_folds} outer and {folds} "
            "inner folds"
        )
    order = _stratified_order(subject_score, seed)
    test = [s for i, s in enumerate(order) if i % outer_folds == outer_fold]
    rest = [s for i, s in enumerate(order) if i % outer_folds != outer_fold]
    fold_of_subject = {s: i % folds for i, s in enumerate(rest)}
    return Split(tuple(sorted(test)), fold_of_subject, folds)


def held_out_split(
    subject_ids: np.ndarray,
    y: np.ndarray,
    test_subjects: tuple[str, ...],
    folds: int,
    seed: int,
    source: str = "dataset",
) -> Split:
    """A split whose test subjects are given (one site's, for the leave-one-site-out transfer
    estimate): they are held out, and the rest are ordered by score and dealt to `folds`
    inner folds as `outer_fold_split` deals them. A named subject the data do not hold is
    an error (the sites file and the data disagree), as is a split that leaves fewer than
    two validation subjects per fold or no test subject."""
    subject_score = _scores_by_subject(subject_ids, y)
    unknown = sorted(set(test_subjects) - set(subject_score))
    if unknown:
        raise DataError(
            f"{source}: {len(unknown)} held-out subject(s) not in the data "
            f"({', '.join(unknown[:3])})"
        )
    held = set(test_subjects)
    rest = [s for s in _stratified_order(subject_score, seed) if s not in held]
    if not held or len(rest) < 2 * folds:
        raise DataError(
            f"{source}: holding out {len(held)} of {len(subject_score)} subjects leaves "
            f"{len(rest)}, need at least {2 * folds} for {folds} inner folds and at least one "
            "held out"
        )
    fold_of_subject = {s: i % folds for i, s in enumerate(rest)}
    return Split(tuple(sorted(held)), fold_of_subject, folds)


def _scores_by_subject(subject_ids: np.ndarray, y: np.ndarray) -> dict[str, float]:
    subject_score: dict[str, float] = {}
    for sid, score in zip(subject_ids.astype(str), y):
        subject_score[str(sid)] = float(score)
    return subject_score


def _stratified_order(subject_score: dict[str, float], seed: int) -> list[str]:
    return sorted(subject_score, key=lambda s: (subject_score[s], _subject_hash(seed, s)))


def shared_split(
    data_root: str | Path,
    signature: str,
    folds: int,
    test_fraction: float,
    seed: int,
    score_ranges: dict[str, tuple[float, float]],
    outer_folds: int = 0,
    outer_fold: int = 0,
    test_subjects: tuple[str, ...] = (),
) -> Split:
    """The one split of a data root, shared by every task and signature.

    Subjects are stratified on their total over the tasks present (Q1..Q5 sum to 0-21), so
    the held-out subjects and the folds are the same for every task: a test subject's five
    predictions can be summed without any of them having seen that subject. Every signature
    of a task holds the same subjects, so one signature's files define it. With
    `outer_folds`, the test subjects are that outer fold of the cross-validation over every
    subject (`outer_fold_split`), the same for every task too; with `test_subjects`, those
    (`held_out_split`: one site of the transfer estimate).
    """
    ids, totals = subject_totals(data_root, signature, score_ranges)
    source = str(Path(data_root) / signature)
    if test_subjects:
        return held_out_split(ids, totals, test_subjects, folds, seed, source)
    if outer_folds:
        return outer_fold_split(ids, totals, outer_folds, outer_fold, folds, seed, source)
    return make_split(ids, totals, folds, test_fraction, seed, source)


def subject_totals(
    data_root: str | Path, signature: str, score_ranges: dict[str, tuple[float, float]]
) -> tuple[np.ndarray, np.ndarray]:
    """(subject ids, sorted; each subject's total over the tasks present) of a data root."""
    totals: dict[str, float] = {}
    for task in TASKS:
        path = Path(data_root) / parse_signature(signature).name / f"{task}.npz"
        if not path.is_file():
            continue
        data = load_task_data(path, score_ranges[task])
        seen = {}
        for sid, score in zip(data.subject_ids, data.y):
            seen[str(sid)] = float(score)
        for sid, score in seen.items():
            totals[sid] = totals.get(sid, 0.0) + score
    if not totals:
        raise DataError(f"{Path(data_root) / signature}: no task file (Q1..Q5.npz)")
    ids = np.array(sorted(totals))
    return ids, np.array([totals[s] for s in ids])


def _subject_hash(seed: int, subject: str) -> str:
    return hashlib.blake2b(f"{seed}:{subject}".encode(), digest_size=8).hexdigest()


# --- a task under a group of signatures ------------------------------------------------------


@dataclass(frozen=True)
class GroupData:
    """One task's datasets under S signatures, rows aligned across signatures.

    The data contract gives every signature of a task the same subjects; rows are put in
    one canonical order (by subject, then by their order in the file), so row i is the same
    subject in every signature and every signature's fold k trains on the same rows in the
    same batches.
    """

    task: str
    signatures: tuple[str, ...]
    paths: tuple[Path, ...]
    X: np.ndarray  # (S, N, 10) float64
    y: np.ndarray  # (N,) float64, in sub-score points
    subject_ids: np.ndarray  # (N,) str
    feature_names: tuple[str, ...]

    @property
    def subjects(self) -> np.ndarray:
        return np.unique(self.subject_ids)

    def signature_index(self, signature: str) -> int:
        return self.signatures.index(signature)

    def task_data(self, signature: str) -> TaskData:
        s = self.signature_index(signature)
        return TaskData(self.paths[s], self.X[s], self.y, self.subject_ids, self.feature_names)


def load_group(
    data_root: str | Path,
    signatures: tuple[str, ...] | list[str],
    task: str,
    score_range: tuple[float, float],
) -> GroupData:
    """Load a task under each signature and align the rows; files that disagree on the
    subjects, their scores or the feature names are a DataError naming the file."""
    if not signatures:
        raise DataError(f"task {task}: no signature given")
    loaded = [load_task_data(dataset_path(data_root, sig, task), score_range) for sig in signatures]
    first = loaded[0]
    order = np.lexsort((np.arange(len(first.y)), first.subject_ids))
    aligned = []
    for data in loaded:
        rows = np.lexsort((np.arange(len(data.y)), data.subject_ids))
        ids = data.subject_ids[rows]
        if len(ids) != len(order) or not np.array_equal(ids, first.subject_ids[order]):
            raise DataError(
                f"{data.path}: its subjects (or rows per subject) differ from {first.path}'s; "
                "every signature of a task must hold the same subjects"
            )
        if not np.array_equal(data.y[rows], first.y[order]):
            i = int(np.argmax(data.y[rows] != first.y[order]))
            raise DataError(
                f"{data.path}: subject {ids[i]!r} scores {data.y[rows][i]:g} here but "
                f"{first.y[order][i]:g} in {first.path}"
            )
        if data.feature_names != first.feature_names:
            raise DataError(f"{data.path}: feature_names differ from {first.path}'s")
        _check_same_build(data, loaded)
        aligned.append(data.X[rows])
    return GroupData(
        task,
        tuple(signatures),
        tuple(d.path for d in loaded),
        np.stack(aligned),
        first.y[order],
        first.subject_ids[order],
        first.feature_names,
    )


def _check_same_build(data: TaskData, loaded: list[TaskData]) -> None:
    """Signatures trained side by side must come from one build (mode, rate, Theiler window,
    builder version); files without identity say nothing and are not compared."""
    reference = next((d for d in loaded if d.identity is not None), None)
    if data.identity is None or reference is None or reference is data:
        return
    ours, theirs = data.identity, reference.identity
    if (ours.build, ours.builder_version) != (theirs.build, theirs.builder_version):
        raise DataError(
            f"{data.path}: built with {ours.build.describe()} (builder {ours.builder_version}), "
            f"but {reference.path} with {theirs.build.describe()} "
            f"(builder {theirs.builder_version}); "
            "train signatures of one build together"
        )


# --- fold tensors: one member per (signature, fold) --------------------------------------------


@dataclass(frozen=True)
class Standardiser:
    """Per-member feature mean and scale, fitted on that member's training subjects only."""

    mean: np.ndarray  # (M, 10)
    scale: np.ndarray  # (M, 10)

    @classmethod
    def fit(cls, member_train_X: list[np.ndarray]) -> Standardiser:
        mean = np.stack([x.mean(axis=0) for x in member_train_X])
        std = np.stack([x.std(axis=0) for x in member_train_X])
        # A constant feature would divide by zero; it carries no information, so leave it
        # centred at zero rather than blowing it up.
        scale = np.where(std > 1e-12, std, 1.0)
        return cls(mean, scale)

    def transform(self, m: int, X: np.ndarray) -> np.ndarray:
        return (X - self.mean[m]) / self.scale[m]


@dataclass
class MemberTensors:
    """Every member's train and validation rows, padded to a common length.

    Member m = s * K + k holds signature s's features of fold k's rows. Rows past
    `train_counts[k]` (or the validation mask) are padding and never enter a loss or a
    metric. X is standardised with the member's own statistics; y is scaled to [0, 1] by
    the task's score range and is the same for every signature.
    """

    X_train: torch.Tensor  # (M, n_train_max, 10)
    y_train: torch.Tensor  # (M, n_train_max)
    train_counts: torch.Tensor  # (K,) long: the same for every signature
    X_val: torch.Tensor  # (M, n_val_max, 10)
    y_val: torch.Tensor  # (M, n_val_max)
    val_mask: torch.Tensor  # (M, n_val_max) bool
    standardiser: Standardiser
    score_range: tuple[float, float]
    n_signatures: int

    @property
    def n_members(self) -> int:
        return self.X_train.shape[0]

    @property
    def n_folds(self) -> int:
        return self.n_members // self.n_signatures

    def training_rows(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each member's training rows by position: `index` (M, ...) -> X (M, ..., 10), y (M, ...).

        Gathered by flat row number with index_select, which copies whole rows: a seventh of
        the CPU time of indexing with (member, row) pairs (the typical trial's epoch of
        batches, 180 x 12 x 16 rows: 0.37 against 2.8 ms)."""
        members = torch.arange(self.n_members, device=index.device)
        rows = members.view(-1, *[1] * (index.dim() - 1)) * self.X_train.shape[1] + index
        rows = rows.view(-1)
        X = self.X_train.flatten(0, 1).index_select(0, rows).view(*index.shape, -1)
        y = self.y_train.flatten(0, 1).index_select(0, rows).view(index.shape)
        return X, y

    def to(self, device: torch.device) -> MemberTensors:
        for name in ("X_train", "y_train", "train_counts", "X_val", "y_val", "val_mask"):
            setattr(self, name, getattr(self, name).to(device))
        return self


def build_member_tensors(
    group: GroupData,
    split: Split,
    score_range: tuple[float, float],
    dtype: torch.dtype = torch.float32,
) -> MemberTensors:
    low, high = score_range
    y_scaled = (group.y - low) / (high - low)
    fold_of_row = np.array([split.fold_of_subject.get(s, -1) for s in group.subject_ids])
    train_rows = [(fold_of_row >= 0) & (fold_of_row != k) for k in range(split.folds)]
    val_rows = [fold_of_row == k for k in range(split.folds)]
    members = [(s, k) for s in range(len(group.signatures)) for k in range(split.folds)]
    standardiser = Standardiser.fit([group.X[s][train_rows[k]] for s, k in members])
    train_X = [
        standardiser.transform(m, group.X[s][train_rows[k]]) for m, (s, k) in enumerate(members)
    ]
    val_X = [standardiser.transform(m, group.X[s][val_rows[k]]) for m, (s, k) in enumerate(members)]
    X_train, y_train, train_counts = _pad(
        train_X, [y_scaled[train_rows[k]] for _, k in members], dtype
    )
    X_val, y_val, val_counts = _pad(val_X, [y_scaled[val_rows[k]] for _, k in members], dtype)
    val_mask = torch.arange(X_val.shape[1])[None, :] < val_counts[:, None]
    return MemberTensors(
        X_train,
        y_train,
        train_counts[: split.folds],
        X_val,
        y_val,
        val_mask,
        standardiser,
        score_range,
        len(group.signatures),
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
