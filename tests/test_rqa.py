"""RQA: exact agreement with pyunicorn, the boundary conventions, the Theiler window, and
the memory bound."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

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
from mmse_model.synth import cohort as synth

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


def run_lengths(values: np.ndarray, value: bool) -> list[int]:
    return [len(list(group)) for key, group in itertools.groupby(values.tolist()) if key == value]


def reference_histograms(vectors: np.ndarray, eps: float, w: int) -> tuple[np.ndarray, ...]:
    """The Theiler window's definitions (rqa.py's docstring) written out on pyunicorn's
    recurrence matrix: diagonal, vertical and white vertical histograms, recurrence rate."""
    n = len(vectors)
    rp = RecurrencePlot(vectors, metric="euclidean", threshold=eps, silence_level=3)
    R = rp.recurrence_matrix().astype(bool)
    diagonal, vertical, white = (np.zeros(n + 1, dtype=np.int64) for _ in range(3))
    for k in range(max(1, w), n):
        for length in run_lengths(np.diagonal(R, k), True):
            diagonal[length] += 2  # and its mirror image
    recurrent_outside = 0
    for j in range(n):
        column = R[:, j]
        # The window |i - j| < w splits column j into rows [0, j-w] and [j+w, n-1].
        segments = [column] if w == 0 else [column[: max(0, j - w + 1)], column[j + w :]]
        for segment in segments:
            recurrent_outside += int(segment.sum())
            for length in run_lengths(segment, True):
                vertical[length] += 1
            for length in run_lengths(segment, False):
                white[length] += 1
    pairs = n * n if w == 0 else max(0, n - w) * max(0, n - w + 1)
    recurrence_rate = recurrent_outside / pairs if pairs else 0.0
    return diagonal, vertical, white, recurrence_rate


@pytest.mark.parametrize("seed", range(3))
def test_theiler_window_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    for case in range(40):
        xy = random_case(rng, case % 4)[:120]
        m, tau = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        vectors = embed(xy, m, tau)
        n = len(vectors)
        if n < 2:
            continue
        eps = 0.25 if case % 4 == 2 else float(rng.uniform(0.02, 0.3))
        w = int(rng.choice([0, 1, 2, int(rng.integers(0, n + 2))]))
        block = int(rng.choice([1, 97, 4096, 1 << 18]))
        ours = line_histograms(vectors, eps, block, theiler=w)
        diagonal, vertical, white, rate = reference_histograms(vectors, eps, w)
        where = f"case {case}: n={n}, w={w}, block={block}"
        np.testing.assert_array_equal(ours.diagonal, diagonal, err_msg=where)
        np.testing.assert_array_equal(ours.vertical, vertical, err_msg=where)
        np.testing.assert_array_equal(ours.white_vertical, white, err_msg=where)
        measured = measures_from_histograms(ours, lmin=2)
        assert measured[FEATURE_NAMES.index("recurrence_rate")] == pytest.approx(rate, abs=1e-15), (
            where
        )


def test_theiler_window_by_hand() -> None:
    # Five identical points, w = 2: the pairs |i - j| >= 2 are (n-w)(n-w+1) = 12, all recurrent.
    hists = line_histograms(np.zeros((5, 2)), eps=0.1, theiler=2)
    # Diagonals at offsets 2, 3, 4 (lengths 3, 2, 1), both triangles.
    np.testing.assert_array_equal(hists.diagonal, [0, 2, 2, 2, 0, 0])
    # Columns 0..4 keep rows {2,3,4}, {3,4}, {0} and {4}, {0,1}, {0,1,2}.
    np.testing.assert_array_equal(hists.vertical, [0, 2, 2, 2, 0, 0])
    np.testing.assert_array_equal(hists.white_vertical, np.zeros(6))
    values = measures_from_histograms(hists, lmin=2)
    assert values[FEATURE_NAMES.index("recurrence_rate")] == 1.0
    assert values[FEATURE_NAMES.index("determinism")] == pytest.approx(10 / 12)
    # A white run ends at the window as at the plot's edge. x = 0 0 1 1 0 0, w = 2: column
    # 2 keeps rows {0} and {4, 5}, none recurrent: white runs of 1 and 2, not one of 6 with
    # the window in between. Per column (black | white): 0: 2 | 2; 1: 2 | 1; 2: - | 1, 2;
    # 3: - | 2, 1; 4: 2 | 1; 5: 2 | 2.
    hists = line_histograms(np.array([0.0, 0, 1, 1, 0, 0])[:, None], eps=0.5, theiler=2)
    np.testing.assert_array_equal(hists.vertical, [0, 0, 4, 0, 0, 0, 0])
    np.testing.assert_array_equal(hists.white_vertical, [0, 4, 4, 0, 0, 0, 0])
    # w = 0 is pyunicorn's plot; w = 1 only takes the line of identity out.
    xy = np.random.default_rng(0).random((50, 2))
    zero, one = (line_histograms(xy, 0.3, theiler=w) for w in (0, 1))
    np.testing.assert_array_equal(zero.diagonal, one.diagonal)
    assert int(np.arange(51) @ zero.vertical) - int(np.arange(51) @ one.vertical) == 50
    assert one.admissible_pairs == 50 * 49 and zero.admissible_pairs == 50 * 50
    assert line_histograms(xy, 0.3, theiler=60).admissible_pairs == 0
    assert rqa_measures(xy, 0.3, 2, theiler=60)[0] == 0.0


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_theiler_window_must_be_a_natural_number(bad) -> None:
    with pytest.raises(ValueError, match="Theiler window"):
        line_histograms(np.zeros((5, 2)), 0.1, theiler=bad)


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
