"""Reading gaze recordings (`<subject>/<Q>.csv`: t,x,y) and MMSE labels (`labels.csv`), and
resampling a recording to the rate RQA runs at (`resample`, docs/rqa.md).

Two kinds of failure, two policies:
- a recording that cannot be used raises `RecordingError`; the builder skips it and lists
  it in its report, because one bad file must not sink a cohort;
- a malformed labels file raises `InputError`: every row of every dataset depends on it.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmse_model.core.domain import MMSE_MAX, SCORE_RANGES, TASKS
from mmse_model.core.errors import InputError

RECORDING_COLUMNS = ("t", "x", "y")
LABEL_COLUMNS = ("subject_id", *TASKS)
# Resampling bridges a gap between two valid samples of up to this many median intervals:
# one dropped sample (2 intervals) with some timing jitter, not a tracking loss.
MAX_GAP_INTERVALS = 2.5
SNAP = 0.01
# MMSE points outside the five tasks (language and praxis): mmse - sum(Q1..Q5) lies in 0-9.
OTHER_ITEMS_MAX = 9


class RecordingError(Exception):
    """A recording that cannot be used; the message says why, in a few words."""


@dataclass(frozen=True)
class Recording:
    """One task's gaze samples; `valid` marks samples with finite t and on-screen x, y."""

    t: np.ndarray  # (n,) seconds
    xy: np.ndarray  # (n, 2) normalised screen coordinates
    valid: np.ndarray  # (n,) bool

    @property
    def n_valid(self) -> int:
        return int(self.valid.sum())


def read_recording(path: Path) -> Recording:
    """Parse a t,x,y CSV. Blink gaps (NaN or empty fields) become invalid samples."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(f"unreadable ({exc.__class__.__name__})") from exc
    header, _, body = text.lstrip("\ufeff").partition("\n")
    if not header.strip():
        raise RecordingError("empty file")
    names = [name.strip().lower() for name in header.split(",")]
    missing = [c for c in RECORDING_COLUMNS if c not in names]
    if missing:
        raise RecordingError(f"missing column(s) {','.join(missing)}")
    if not body.strip():
        raise RecordingError("no samples")
    values = _parse_numbers(body, len(names))
    t, x, y = (values[:, names.index(c)] for c in RECORDING_COLUMNS)
    xy = np.stack((x, y), axis=1)
    # Off-screen gaze is tracker loss, not a place the subject looked at.
    valid = np.isfinite(t) & np.all(np.isfinite(xy) & (xy >= 0.0) & (xy <= 1.0), axis=1)
    if not valid.any():
        raise RecordingError("no valid gaze samples (all NaN or off-screen)")
    return Recording(t=t, xy=xy, valid=valid)


def resample(recording: Recording, rate_hz: float) -> Recording:
    """The recording on a uniform grid of `rate_hz` from its first timestamp (docs/rqa.md).

    Each grid point is the linear interpolation of the two samples around it. It is valid
    when both are valid (a blink or off-screen sample on either side invalidates it) and
    they are at most `MAX_GAP_INTERVALS` of the recording's median interval apart (dropped
    samples are not bridged); a grid point that falls on a sample takes that sample as it
    is (to within `SNAP` of an interval). Samples without a finite timestamp carry no time and are dropped first. Timestamps
    that do not increase are a RecordingError.
    """
    if not rate_hz > 0:
        raise ValueError(f"the resampling rate must be > 0, got {rate_hz}")
    timed = np.isfinite(recording.t)
    t, xy, valid = recording.t[timed], recording.xy[timed], recording.valid[timed]
    if len(t) < 2:
        raise RecordingError("fewer than 2 timestamped samples")
    steps = np.diff(t)
    if not (steps > 0).all():
        at = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise RecordingError(f"timestamps do not increase (sample {at + 1}: t={t[at]:g})")
    n_grid = int(np.floor((t[-1] - t[0]) * rate_hz + SNAP)) + 1
    grid = t[0] + np.arange(n_grid) / rate_hz
    left = np.clip(np.searchsorted(t, grid, side="right") - 1, 0, len(t) - 2)
    right = left + 1
    frac = np.clip((grid - t[left]) / steps[left], 0.0, 1.0)
    # A grid point within SNAP of a sample is that sample: a recording already at rate_hz
    # passes through unchanged although its timestamps are rounded (to 0.1 ms here).
    on_left, on_right = frac <= SNAP, frac >= 1.0 - SNAP
    out_xy = xy[left] + frac[:, None] * (xy[right] - xy[left])
    bridged = steps[left] <= MAX_GAP_INTERVALS * float(np.median(steps))
    out_valid = np.where(
        on_left, valid[left], np.where(on_right, valid[right], valid[left] & valid[right] & bridged)
    )
    out_xy[on_left] = xy[left[on_left]]
    out_xy[on_right] = xy[right[on_right]]
    out_xy[~out_valid] = np.nan
    return Recording(t=grid, xy=out_xy, valid=out_valid)


def _parse_numbers(body: str, n_columns: int) -> np.ndarray:
    try:
        # numpy's C parser: fast for the common, clean case.
        return np.loadtxt(io.StringIO(body), delimiter=",", ndmin=2, dtype=np.float64)
    except ValueError:
        pass
    # Slow path: empty fields are blink gaps (NaN); anything else unparsable is an error.
    rows = []
    for line_no, line in enumerate(body.splitlines(), start=2):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) != n_columns:
            raise RecordingError(f"line {line_no}: {len(fields)} fields, expected {n_columns}")
        row = []
        for field in fields:
            field = field.strip()
            try:
                row.append(float(field) if field else math.nan)
            except ValueError:
                raise RecordingError(f"line {line_no}: non-numeric value {field[:20]!r}") from None
        rows.append(row)
    return np.array(rows, dtype=np.float64).reshape(-1, n_columns)


def read_labels(path: Path) -> dict[str, tuple[float, ...]]:
    """subject_id -> (Q1, ..., Q5) from labels.csv, validated against the sub-score ranges.

    Any problem is an InputError naming the file (and line): labels are not skippable.
    `mmse` is optional; when present it must be 0-30 and consistent with the sub-scores.
    """
    ranges = SCORE_RANGES
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: labels file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read labels ({exc.__class__.__name__})") from None
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if not reader.fieldnames:
        raise InputError(f"{path}: empty labels file")
    fields = [name.strip() for name in reader.fieldnames]
    reader.fieldnames = fields
    missing = [c for c in LABEL_COLUMNS if c not in fields]
    if missing:
        raise InputError(f"{path}: missing column(s) {','.join(missing)}")
    labels: dict[str, tuple[float, ...]] = {}
    for row in reader:
        where = f"{path} line {reader.line_num}"
        if None in row or any(row[c] is None for c in fields):
            raise InputError(f"{where}: expected {len(fields)} fields")
        subject = row["subject_id"].strip()
        if not subject or subject != Path(subject).name or subject.startswith("."):
            raise InputError(f"{where}: subject_id {subject!r} is not a plain identifier")
        if subject in labels:
            raise InputError(f"{where}: duplicate subject_id {subject!r}")
        scores = []
        for task in TASKS:
            low, high = ranges[task]
            value = _label_number(row[task], where, task)
            if not low <= value <= high:
                raise InputError(f"{where}: {task}={value:g} outside {low:g}-{high:g}")
            scores.append(value)
        if "mmse" in fields:
            mmse = _label_number(row["mmse"], where, "mmse")
            if not 0 <= mmse - sum(scores) <= OTHER_ITEMS_MAX or mmse > MMSE_MAX:
                raise InputError(
                    f"{where}: mmse={mmse:g} inconsistent with Q1..Q5 sum {sum(scores):g}"
                    f" (expected sum to sum+{OTHER_ITEMS_MAX}, at most {MMSE_MAX})"
                )
        labels[subject] = tuple(scores)
    if not labels:
        raise InputError(f"{path}: no label rows")
    return labels


def _label_number(text: str, where: str, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{where}: {column}={text.strip()[:20]!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{where}: {column}={text.strip()!r} is not a finite number")
    return value
