"""Reading gaze recordings (`<subject>/<Q>.csv`: t,x,y) and MMSE labels (`labels.csv`), and
resampling a recording to the rate RQA runs at (`resample`, docs/rqa.md).

Two kinds of failure, two policies:
- a recording that cannot be used raises `RecordingError`; the builder skips it and lists
  it in its report, because one bad file must not sink a cohort;
- a malformed labels file raises `InputError`: every row of every dataset depends on it.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmse_model.core.csvsafe import unescape
from mmse_model.core.domain import MMSE_MAX, SCORE_RANGES, TASKS
from mmse_model.core.errors import InputError
from mmse_model.core.hashing import CHUNK, sha256_bytes
from mmse_model.core.inputs import MAX_FILE_MB, file_kind, regular_file_problem, too_big

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


@dataclass(frozen=True)
class RecordingLimits:
    """What a recording may be before it is read or resampled: memory stays bounded whatever
    the file (its size is checked before reading, its duration before resampling)."""

    max_duration_s: float = 600.0
    max_file_mb: float = MAX_FILE_MB  # 1 MB = 10^6 bytes

    @property
    def max_bytes(self) -> int:
        return int(self.max_file_mb * 1_000_000)


DEFAULT_LIMITS = RecordingLimits()


def read_recording(path: Path, limits: RecordingLimits = DEFAULT_LIMITS) -> Recording:
    """Parse a t,x,y CSV. Blink gaps (NaN or empty fields) become invalid samples."""
    return load_recording(path, limits)[0]


MAX_COLUMNS = 64


def recording_path_problem(path: Path, root: Path) -> str | None:
    """Why the entry at `path` (which exists) cannot be read as a recording of the folder
    `root`, or None: a directory, a FIFO or a device (never opened: a FIFO blocks, /dev/zero
    never ends), a symlink to nothing, or one that leads outside `root`."""
    problem = regular_file_problem(path)
    if problem is not None:
        return problem
    resolved = path.resolve()
    if not resolved.is_relative_to(Path(root).resolve()):
        return f"a symlink that leads outside the recordings folder (to {resolved})"
    return None


def load_recording(path: Path, limits: RecordingLimits = DEFAULT_LIMITS) -> tuple[Recording, str]:
    """A t,x,y recording and the sha256 of its bytes; RecordingError says why one cannot be
    used (other layouts: features/gaze_formats.py)."""
    data = read_recording_bytes(path, limits)
    return parse_recording(data, limits), sha256_bytes(data)


def read_recording_bytes(path: Path, limits: RecordingLimits = DEFAULT_LIMITS) -> bytes:
    """A recording file's bytes, read only when it is a regular file within the size limit."""
    path = Path(path)
    try:
        # Opened without blocking and checked on the open file: a FIFO or a device that took
        # a recording's place is refused, never read.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise RecordingError(f"not a regular file ({file_kind(info.st_mode)})")
            if too_big(info.st_size, limits.max_file_mb):
                raise RecordingError(too_big(info.st_size, limits.max_file_mb))
            handle = os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise
        with handle:
            # at most max_bytes + 1; a file that grew since fstat() stops here
            data = handle.read(info.st_size + 1)
    except OSError as exc:
        raise RecordingError(f"unreadable ({exc.__class__.__name__})") from None
    if too_big(len(data), limits.max_file_mb):
        raise RecordingError(too_big(len(data), limits.max_file_mb))
    return data


def split_header(data: bytes) -> tuple[str, int]:
    """(the header line of a CSV recording's bytes, where its body starts), after the checks
    every layout shares: text, UTF-8, a byte-order mark skipped, not empty."""
    if b"\0" in data:
        raise RecordingError("binary content (NUL bytes), not a CSV text file")
    check_utf8(data)
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    newline = data.find(b"\n", start)
    body_start = len(data) if newline < 0 else newline + 1
    header = data[start:body_start].decode("utf-8")
    if not header.strip():
        raise RecordingError("empty file")
    return header, body_start


def parse_recording(data: bytes, limits: RecordingLimits = DEFAULT_LIMITS) -> Recording:
    """The recording a t,x,y CSV's bytes hold, checked (docs/design.md, "Data")."""
    header, body_start = split_header(data)
    names = [name.strip().lower() for name in header.split(",")]
    if len(names) > MAX_COLUMNS:  # the parse allocates rows x columns: a bound on both
        raise RecordingError(
            f"header of {len(names)} columns (at most {MAX_COLUMNS}); expected t,x,y"
        )
    missing = [c for c in RECORDING_COLUMNS if c not in names]
    if missing:
        raise RecordingError(f"missing column(s) {','.join(missing)}")
    if _NON_SPACE.search(data, body_start) is None:
        raise RecordingError("no samples")
    values = _parse_numbers(data, body_start, len(names))
    t, x, y = (values[:, names.index(c)] for c in RECORDING_COLUMNS)
    xy = np.stack((x, y), axis=1)
    check_on_screen(xy)
    return checked_recording(t, xy, np.ones(len(t), dtype=bool), limits)


def checked_recording(
    t: np.ndarray, xy: np.ndarray, flagged_valid: np.ndarray, limits: RecordingLimits
) -> Recording:
    """The recording of timestamps in seconds and normalised gaze, every format's last step:
    a sample is valid when the tracker did not flag it invalid, its time and gaze are finite
    and the gaze is on the screen; then the checks every recording must pass."""
    # Off-screen gaze is tracker loss, not a place the subject looked at.
    valid = (
        flagged_valid & np.isfinite(t) & np.all(np.isfinite(xy) & (xy >= 0.0) & (xy <= 1.0), axis=1)
    )
    if not valid.any():
        flagged = "" if flagged_valid.all() else ", flagged invalid"
        raise RecordingError(f"no valid gaze samples (all NaN{flagged} or off-screen)")
    timed = t[np.isfinite(t)]
    if len(timed) < 2:
        raise RecordingError("fewer than 2 timestamped samples")
    check_increasing(timed)
    duration = float(timed[-1] - timed[0])
    # Before any resampling: the grid has duration x rate points (a clock jump to 1e9 s
    # would ask for hundreds of GiB).
    if duration > limits.max_duration_s:
        raise RecordingError(
            f"duration {duration:g} s above --max-duration-s {limits.max_duration_s:g}"
        )
    return Recording(t=t, xy=xy, valid=valid)


_NON_SPACE = re.compile(rb"\S")
# Coordinates more than a screen beyond an edge are not gaze on this screen but other
# units (pixels, degrees): a recording with most of its samples there cannot be used. A few
# such samples are tracker glitches and only invalid, like any off-screen sample.
FAR_OUTSIDE = (-1.0, 2.0)


def check_on_screen(
    xy: np.ndarray, expected: str = "expected normalised 0-1 screen coordinates"
) -> None:
    """Refuse gaze whose normalised coordinates are mostly far outside the screen (other
    units than the layout says); `expected` ends the message."""
    finite = np.all(np.isfinite(xy), axis=1)
    far = finite & np.any((xy < FAR_OUTSIDE[0]) | (xy > FAR_OUTSIDE[1]), axis=1)
    n_far, n_finite = int(far.sum()), int(finite.sum())
    if n_far and n_far * 2 > n_finite:
        row = int(np.argmax(far))
        raise RecordingError(
            f"coordinates far outside the screen: {n_far} of {n_finite} samples beyond "
            f"{FAR_OUTSIDE[0]:g}..{FAR_OUTSIDE[1]:g} "
            f"(line {row + 2}: x={xy[row, 0]:g}, y={xy[row, 1]:g}); {expected}"
        )


def check_utf8(data: bytes) -> None:
    """Refuse bytes that are not UTF-8 text (RecordingError naming the first bad byte)."""
    # In pieces, so that checking a large file does not hold a second copy of it as text.
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    offset = 0
    try:
        for offset in range(0, len(data), CHUNK):
            decoder.decode(view[offset : offset + CHUNK])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        at = offset + exc.start
        raise RecordingError(f"not UTF-8 text (byte 0x{data[at]:02x} at offset {at})") from None


def check_increasing(t: np.ndarray) -> None:
    """Timestamps (finite ones) must increase: a repeated or earlier one is a RecordingError."""
    steps = np.diff(t)
    if not (steps > 0).all():
        at = int(np.flatnonzero(~(steps > 0))[0]) + 1
        raise RecordingError(f"timestamps do not increase (sample {at + 1}: t={t[at]:g})")


def resample(recording: Recording, rate_hz: float) -> Recording:
    """The recording on a uniform grid of `rate_hz` from its first timestamp (docs/rqa.md).

    Each grid point is the linear interpolation of the two samples around it. It is valid
    when both are valid (a blink or off-screen sample on either side invalidates it) and
    they are at most `MAX_GAP_INTERVALS` of the recording's median interval apart (dropped
    samples are not bridged); a grid point that falls on a sample takes that sample as it
    is (to within `SNAP` of an interval). Samples without a finite timestamp carry no time
    and are dropped first. Timestamps that do not increase are a RecordingError.
    """
    if not rate_hz > 0:
        raise ValueError(f"the resampling rate must be > 0, got {rate_hz}")
    timed = np.isfinite(recording.t)
    t, xy, valid = recording.t[timed], recording.xy[timed], recording.valid[timed]
    if len(t) < 2:
        raise RecordingError("fewer than 2 timestamped samples")
    check_increasing(t)
    steps = np.diff(t)
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


def _parse_numbers(data: bytes, body_start: int, n_columns: int) -> np.ndarray:
    """(rows, n_columns) float64 of the CSV body, in memory linear in its rows."""
    return parse_columns(data, body_start, n_columns, tuple(range(n_columns)))


def parse_columns(
    data: bytes,
    body_start: int,
    n_columns: int,
    usecols: tuple[int, ...],
    delimiter: str = ",",
) -> np.ndarray:
    """(rows, len(usecols)) float64 of those columns of the CSV body, every row checked to
    have `n_columns` fields; the other columns are never converted (an export's text columns
    do no harm), and memory is linear in the rows times the columns used."""
    body = io.BytesIO(data)  # shares `data`'s buffer, no copy
    body.seek(body_start)
    try:
        # numpy's C parser: fast for the common, clean case.
        values = np.loadtxt(
            body,
            delimiter=delimiter,
            ndmin=2,
            dtype=np.float64,
            comments=None,
            encoding="utf-8",
            usecols=usecols,
        )
        # With usecols numpy does not check the rows' width: every row has n_columns fields
        # when the body holds n_columns - 1 delimiters per row (blank lines hold none).
        if values.shape[1] == len(usecols) and data.count(delimiter.encode(), body_start) == len(
            values
        ) * (n_columns - 1):
            return values
    except ValueError:
        pass
    # Slow path: empty fields are blink gaps (NaN); anything else unparsable is an error.
    # Rows go into one preallocated array, not a list of Python floats.
    values = np.empty((data.count(b"\n", body_start) + 1, len(usecols)), dtype=np.float64)
    n_rows = 0
    body.seek(body_start)
    for line_no, raw in enumerate(body, start=2):
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line.strip():
            continue
        fields = line.split(delimiter)
        if len(fields) != n_columns:
            raise RecordingError(f"line {line_no}: {len(fields)} fields, expected {n_columns}")
        for out, column in enumerate(usecols):
            field = fields[column].strip()
            try:
                values[n_rows, out] = float(field) if field else math.nan
            except ValueError:
                raise RecordingError(f"line {line_no}: non-numeric value {field[:20]!r}") from None
        n_rows += 1
    return values[:n_rows]


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
        subject = unescape(row["subject_id"].strip())  # as the project writes ids (csvsafe)
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
