"""The tracker's sampling rate: recordings are resampled to RQA_RATE_HZ before RQA, so the
features of a cohort that mixes 90 and 120 Hz trackers no longer tell the two apart
(docs/rqa.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmse_model.core.domain import FEATURE_NAMES, RQA_RATE_HZ, parse_signatures
from mmse_model.features.build import recording_features, state_vectors, theiler_window
from mmse_model.features.recordings import Recording, RecordingError, read_recording, resample
from mmse_model.features.rqa import rqa_measures
from mmse_model.synth import cohort as synth

SIGNATURES = parse_signatures(["m2_tau1_eps0.055_lmin2", "m3_tau3_eps0.08_lmin3"])


def recording(t, xy, valid=None) -> Recording:
    xy = np.asarray(xy, dtype=float)
    if valid is None:
        valid = np.isfinite(xy).all(axis=1)
    return Recording(np.asarray(t, dtype=float), xy, np.asarray(valid))


def test_a_recording_at_the_rqa_rate_passes_through() -> None:
    rng = np.random.default_rng(0)
    n = 500
    t = np.round(np.arange(n) / RQA_RATE_HZ, 4)  # as written: 0.1 ms, so not on the grid
    xy = rng.random((n, 2))
    xy[100:120] = np.nan
    out = resample(recording(t, xy), RQA_RATE_HZ)
    assert len(out.t) == n
    np.testing.assert_array_equal(out.valid, np.isfinite(xy).all(axis=1))
    np.testing.assert_array_equal(out.xy[out.valid], xy[out.valid])


def test_120_hz_is_interpolated_onto_the_90_hz_grid() -> None:
    t = np.arange(121) / 120.0  # 1 s
    xy = np.column_stack((t, 1 - t / 2))  # a straight line: linear interpolation is exact
    out = resample(recording(t, xy), 90.0)
    assert len(out.t) == 91 and out.valid.all()
    np.testing.assert_allclose(out.t, np.arange(91) / 90.0, atol=1e-15)
    np.testing.assert_allclose(out.xy, np.column_stack((out.t, 1 - out.t / 2)), atol=1e-12)


def test_blinks_and_dropped_samples_are_not_bridged() -> None:
    t = np.arange(13) / 120.0
    xy = np.full((13, 2), 0.5)
    xy[4] = np.nan  # a blink sample at 33.3 ms
    out = resample(recording(t, xy), 90.0)
    # 100 ms at 90 Hz: 10 points. Point 2 (22.2 ms) lies between samples 2 and 3: valid.
    # Point 3 (33.3 ms) is sample 4 itself: invalid. Point 4 (44.4 ms) lies between samples
    # 5 and 6: valid. No grid point falls between samples 3 and 5 otherwise.
    assert len(out.t) == 10
    np.testing.assert_array_equal(out.valid, np.arange(10) != 3)
    xy[5] = np.nan  # now point 4's neighbours are 5 and 6: invalid too
    np.testing.assert_array_equal(
        resample(recording(t, xy), 90.0).valid, ~np.isin(np.arange(10), [3, 4])
    )
    # A gap of 5 intervals (samples dropped without NaN rows) is not bridged; 2 would be.
    t = np.concatenate((np.arange(5), np.arange(10, 15), [16, 17])) / 120.0
    out = resample(recording(t, np.full((len(t), 2), 0.5)), 120.0)
    np.testing.assert_array_equal(out.valid, ~np.isin(np.arange(18), [5, 6, 7, 8, 9]))


def test_bad_timestamps() -> None:
    with pytest.raises(RecordingError, match="timestamps do not increase"):
        resample(recording([0.0, 0.01, 0.01, 0.02], np.full((4, 2), 0.5)), 90.0)
    with pytest.raises(RecordingError, match="fewer than 2"):
        resample(recording([0.0, np.nan], np.full((2, 2), 0.5), [True, False]), 90.0)
    # Rows without a time are dropped, the rest resampled.
    out = resample(
        recording([0.0, np.nan, 1 / 90, 2 / 90], np.full((4, 2), 0.5), [True, False, True, True]),
        90.0,
    )
    assert len(out.t) == 3 and out.valid.all()


def written_and_read(samples: np.ndarray, path: Path) -> Recording:
    """The recording as `mmse data build` sees it: through the simulator's CSV writer."""
    path.write_text(synth._csv_text(samples), encoding="utf-8")
    return read_recording(path)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def test_sampling_rate_no_longer_predicts_the_features(tmp_path: Path) -> None:
    """A SYNTHETIC cohort of 100 subjects, each Q1 recording rendered at 90 and at 120 Hz
    from the same fixation chain (6 s, written and read as `mmse data build` does); the
    mixed cohort takes one of the two per subject at random, as `mmse data synth` does.

    Measured here: before (no resampling, no Theiler window) every line-based measure moved
    by 0.55-1.26 cohort sd from 90 to 120 Hz and correlated with the rate at |r| 0.17-0.64
    (median 0.34). Now 18 of the 20 shifts are below 0.2 sd (largest 0.17) and DET and LAM
    of m3 keep 0.27 and 0.25 sd, the residual docs/rqa.md explains (interpolation averages
    the faster tracker's noise); every |r| is below 0.15."""
    rng = np.random.default_rng(7)
    n_subjects = 100
    cohort = synth.simulate_cohort(n_subjects, rng)
    impairment = synth.task_impairment(cohort, rng)
    traits = {
        "duration": rng.lognormal(0.0, synth.DURATION_TRAIT_SIGMA, n_subjects),
        "order": rng.uniform(*synth.ORDER_TRAIT, n_subjects),
    }
    positions, durations = synth.simulate_fixations(
        synth.TASKS["Q1"], impairment[:, 0], traits, 150, rng
    )
    noise_deg = rng.uniform(*synth.NOISE_DEG, n_subjects)
    new, old = {90: [], 120: []}, {90: [], 120: []}
    for s in range(n_subjects):
        for rate in (90, 120):
            samples = synth.render_recording(
                positions[s],
                durations[s],
                float(rate),
                6.0,
                noise_deg[s],
                np.random.default_rng([s, rate]),
            )
            read = written_and_read(samples, tmp_path / "rec.csv")
            new[rate].append(recording_features(read, SIGNATURES, "trajectory").ravel())
            old[rate].append(
                np.concatenate(
                    [
                        rqa_measures(state_vectors(read, sig, "trajectory"), sig.eps, sig.lmin)
                        for sig in SIGNATURES
                    ]
                )
            )
    fast = rng.random(n_subjects) < 0.5  # the mixed cohort: these subjects' tracker is 120 Hz
    line_based = np.array([f != "recurrence_rate" for _ in SIGNATURES for f in FEATURE_NAMES])
    noise_driven = np.array(
        [f in ("determinism", "laminarity") for _ in SIGNATURES for f in FEATURE_NAMES]
    )

    def rate_effects(features: dict[int, list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """Per feature: the paired shift 90 -> 120 Hz in cohort sd, and r with the rate in
        the mixed cohort."""
        at90, at120 = np.array(features[90]), np.array(features[120])
        shift = (at120 - at90).mean(axis=0) / np.concatenate((at90, at120)).std(axis=0)
        mixed = np.where(fast[:, None], at120, at90)
        r = np.array([pearson(column, fast.astype(float)) for column in mixed.T])
        return shift, r

    old_shift, old_r = rate_effects(old)
    assert (np.abs(old_shift[line_based]) > 0.4).all(), old_shift  # the cohort carries the rate
    assert np.median(np.abs(old_r[line_based])) > 0.25, old_r
    shift, r = rate_effects(new)
    assert (np.abs(shift[~noise_driven]) < 0.25).all(), shift
    assert (np.abs(shift[noise_driven]) < 0.45).all(), shift
    assert (np.abs(shift[line_based]) < np.abs(old_shift[line_based]) / 2).all(), (shift, old_shift)
    assert np.abs(r).max() < 0.25, r


def test_recording_features_resample_and_apply_the_window() -> None:
    # The builder's features of a 120 Hz recording are those of its 90 Hz resampling with
    # the Theiler window of THEILER_S, and the window is 0.25 s = 23 samples at 90 Hz.
    assert theiler_window("trajectory") == 23 and theiler_window("fixation") == 1
    rng = np.random.default_rng(3)
    t = np.arange(1200) / 120.0
    xy = np.clip(0.5 + np.cumsum(rng.normal(0, 0.004, (1200, 2)), axis=0), 0, 1)
    raw = recording(t, xy)
    at90 = resample(raw, RQA_RATE_HZ)
    expected = [
        rqa_measures(state_vectors(at90, sig, "trajectory"), sig.eps, sig.lmin, theiler=23)
        for sig in SIGNATURES
    ]
    np.testing.assert_array_equal(
        recording_features(raw, SIGNATURES, "trajectory"), np.stack(expected)
    )
