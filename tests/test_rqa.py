"""RQA: exact agreement with pyunicorn, the boundary conventions, and the memory bound."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mmse_model import synth
from mmse_model.features.fixations import detect_fixations
from mmse_model.features.recordings import Recording
from mmse_model.features.rqa import (
    FEATURE_NAMES,
    embed,
    line_histograms,
    measures_from_histograms,
    rqa_measures,
    squared_threshold,
)

RecurrencePlot = pytest.importorskip("pyunicorn.timeseries").RecurrencePlot
REPO = Path(__file__).resolve().parents[1]
MAX_INDICES = (FEATURE_NAMES.index("max_diag_line"), FEATURE_NAMES.index("max_vert_line"))


def pyunicorn_measures(vectors: np.ndarray, eps: float, lmin: int) -> np.ndarray:
    rp = RecurrencePlot(vectors, metric="euclidean", threshold=eps, silence_level=3)
    values = np.array(
        [
            rp.recurrence_rate(),
            rp.determinism(lmin),
            rp.average_diaglength(lmin),
            rp.max_diaglength(),
            rp.diag_entropy(lmin),
            rp.laminarity(lmin),
            rp.trapping_time(lmin),
            rp.max_vertlength(),
            rp.vert_entropy(lmin),
            rp.mean_recurrence_time(),
        ],
        dtype=float,
    )
    # Our maxima count only lines of at least lmin (0 when there is none).
    for i in MAX_INDICES:
        if values[i] < lmin:
            values[i] = 0.0
    return values


def simulated_gaze(rng: np.random.Generator, n: int) -> np.ndarray:
    cohort = synth.simulate_cohort(1, rng)
    impairment = synth.task_impairment(cohort, rng)
    task = synth.TASKS[f"Q{rng.integers(1, 6)}"]
    traits = {"duration": np.ones(1), "order": np.ones(1)}
    positions, durations = synth.simulate_fixations(task, impairment[:, 0], traits, 200, rng)
    samples = synth.render_recording(positions[0], durations[0], 120.0, n / 120 + 1, 0.25, rng)
    xy = samples[:n, 1:]
    return xy[np.isfinite(xy).all(axis=1)]


def random_case(rng: np.random.Generator, kind: int) -> np.ndarray:
    n = int(rng.integers(20, 400))
    if kind == 0:
        return rng.random((n, 2))
    if kind == 1:
        return np.cumsum(rng.normal(0, 0.02, (n, 2)), axis=0)
    if kind == 2:  # quantised gaze: many distances exactly equal, ties at eps
        return rng.integers(0, 8, (n, 2)) / 8.0
    return simulated_gaze(rng, n)


@pytest.mark.parametrize("seed", range(4))
def test_agrees_with_pyunicorn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for case in range(40):
        xy = random_case(rng, case % 4)
        m, tau, lmin = int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 6))
        vectors = embed(xy, m, tau)
        if case % 4 == 2:  # eps exactly on a pair distance of the 1/8 grid
            eps = float(rng.integers(1, 4)) / 8.0
        else:
            eps = float(rng.uniform(0.01, 0.3))
        # Tiny blocks put band and row-block boundaries through every line.
        block = int(rng.choice([1, 97, 4096, 1 << 18]))
        ours = rqa_measures(vectors, eps, lmin, block_elements=block)
        theirs = pyunicorn_measures(vectors, eps, lmin)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9, err_msg=f"case {case}")


def test_lmin_above_two_and_main_diagonal_convention() -> None:
    # A constant stretch then a jump: the main diagonal is one long line that must not count.
    xy = np.concatenate((np.zeros((6, 2)), np.ones((4, 2))))
    hists = line_histograms(embed(xy, 1, 1), eps=0.5)
    # Two blocks of 6 and 4 identical points: off-diagonal lines of lengths 1..5 and 1..3,
    # each twice (both triangles); the main diagonal (length 10) is not among them.
    expected = np.zeros(11, dtype=int)
    expected[1:6] += 2
    expected[1:4] += 2
    np.testing.assert_array_equal(hists.diagonal, expected)
    assert hists.vertical[6] == 6 and hists.vertical[4] == 4  # columns include R[i, i]
    values = measures_from_histograms(hists, lmin=3)
    assert values[FEATURE_NAMES.index("recurrence_rate")] == (36 + 16) / 100
    assert values[FEATURE_NAMES.index("max_diag_line")] == 5
    none_long_enough = measures_from_histograms(hists, lmin=7)
    assert none_long_enough[FEATURE_NAMES.index("max_diag_line")] == 0
    assert none_long_enough[FEATURE_NAMES.index("determinism")] == 0


def test_squared_threshold_is_exact() -> None:
    rng = np.random.default_rng(0)
    for eps in [*rng.uniform(1e-4, 2, 200), 0.055, 0.25, 1.0]:
        t = squared_threshold(eps)
        assert np.sqrt(t) >= eps > np.sqrt(np.nextafter(t, 0))
    with pytest.raises(ValueError):
        squared_threshold(0.0)


def test_embedding_layout_and_float32_rounding() -> None:
    xy = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6], [0.7, 0.8]])
    vectors = embed(xy, m=2, tau=2)
    assert vectors.dtype == np.float64
    np.testing.assert_array_equal(vectors, np.float32([[0.1, 0.2, 0.5, 0.6], [0.3, 0.4, 0.7, 0.8]]))
    assert embed(xy, m=3, tau=2).shape == (0, 6)


def test_fixations_found_and_blinks_split_them() -> None:
    t = np.arange(60) / 100.0
    xy = np.where((np.arange(60) < 30)[:, None], [0.2, 0.2], [0.7, 0.6]).astype(float)
    valid = np.ones(60, dtype=bool)
    centroids = detect_fixations(Recording(t, xy, valid))
    np.testing.assert_allclose(centroids, [[0.2, 0.2], [0.7, 0.6]])
    valid[45] = False
    xy[45] = np.nan
    # 30-44 (150 ms) and 46-59 (130 ms) are both longer than 60 ms: the blink splits one.
    assert len(detect_fixations(Recording(t, xy, valid))) == 3


def test_36000_samples_in_bounded_memory() -> None:
    script = textwrap.dedent(
        """
        import numpy as np
        from mmse_model.features.rqa import embed, rqa_measures
        rng = np.random.default_rng(0)
        # Gaze-like: dwell on 20 spots with tracker noise, so lines are long and many.
        spots = rng.random((20, 2))[rng.integers(0, 20, 120)].repeat(300, axis=0)
        xy = spots + rng.normal(0, 0.003, spots.shape)
        values = rqa_measures(embed(xy, 2, 1), 0.055, 2)
        assert np.isfinite(values).all() and values[0] > 0.01
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                print(int(line.split()[1]) * 1024)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    peak = int(done.stdout.split()[-1])
    assert peak < 1024**3, f"peak RSS {peak / 2**20:.0f} MiB"
