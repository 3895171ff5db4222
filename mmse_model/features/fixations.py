"""Velocity-threshold (I-VT) fixation detection, for RQA on fixation sequences.

Anderson et al. (2013, Behav Res Methods 45:842-856) apply RQA to the sequence of
fixations rather than to raw samples; fixations are found first with a velocity threshold
(Salvucci & Goldberg 2000, "I-VT"). Defaults follow the Tobii I-VT filter (Olsen 2012):
30 deg/s and a 60 ms minimum fixation. Gaze here is in normalised screen units, linear in
visual angle, so the threshold is converted with the field of view the recordings were
normalised with: the build's recorded `Conversion.field_of_view_deg` (core/conversion.py;
by default `FIELD_OF_VIEW_DEG`, a typical VR headset). docs/rqa.md compares this detector
with pymovements' I-VT.
"""

from __future__ import annotations

import numpy as np

from mmse_model.core.domain import FIELD_OF_VIEW_DEG
from mmse_model.features.recordings import Recording

VELOCITY_THRESHOLD_DEG_S = 30.0
MIN_FIXATION_S = 0.060
VELOCITY_WINDOW_S = 0.020


def detect_fixations(
    recording: Recording,
    velocity_threshold_deg_s: float = VELOCITY_THRESHOLD_DEG_S,
    min_fixation_s: float = MIN_FIXATION_S,
    field_of_view_deg: float = FIELD_OF_VIEW_DEG,
) -> np.ndarray:
    """Fixation centroids (k, 2) in time order.

    A sample is a fixation sample when every sample in its velocity window is valid and the
    gaze moved slower than the threshold across the window; a blink gap ends a fixation.
    """
    starts, ends = fixation_spans(
        recording, velocity_threshold_deg_s, min_fixation_s, field_of_view_deg
    )
    if starts.size == 0:
        return np.empty((0, 2))
    # Centroids by cumulative sums: one pass, no Python loop over fixations. Invalid
    # samples are zeroed first, or one NaN would poison every later sum.
    clean = np.where(recording.valid[:, None], recording.xy, 0.0)[: ends.max()]
    cumulative = np.concatenate((np.zeros((1, 2)), np.cumsum(clean, axis=0)))
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)[:, None]


def fixation_spans(
    recording: Recording,
    velocity_threshold_deg_s: float = VELOCITY_THRESHOLD_DEG_S,
    min_fixation_s: float = MIN_FIXATION_S,
    field_of_view_deg: float = FIELD_OF_VIEW_DEG,
) -> tuple[np.ndarray, np.ndarray]:
    """The fixations of `detect_fixations` as sample ranges: starts, ends (exclusive)."""
    t, xy, valid = recording.t, recording.xy, recording.valid
    n = len(t)
    if n < 2:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    # Velocity over a ~20 ms window (Olsen 2012's default), so that tracker noise between
    # neighbouring samples does not read as eye movement.
    sample_s = float(np.median(np.diff(t)))
    half = max(1, round(VELOCITY_WINDOW_S / 2 / sample_s)) if sample_s > 0 else 1
    ahead = np.minimum(np.arange(n) + half, n - 1)
    behind = np.maximum(np.arange(n) - half, 0)
    dt = t[ahead] - t[behind]
    step = np.linalg.norm(xy[ahead] - xy[behind], axis=1) * field_of_view_deg  # degrees
    with np.errstate(invalid="ignore", divide="ignore"):
        speed = np.where(dt > 0, step / dt, np.inf)
    # A blink anywhere in the window makes the velocity unknown: not a fixation sample.
    invalid_before = np.concatenate(([0], np.cumsum(~valid)))
    window_valid = invalid_before[ahead + 1] == invalid_before[behind]
    slow = window_valid & (speed < velocity_threshold_deg_s)
    padded = np.concatenate(([False], slow, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    starts, ends = edges[0::2], edges[1::2]
    keep = (t[ends - 1] - t[starts]) >= min_fixation_s
    return starts[keep], ends[keep]
