"""Recurrence quantification analysis (RQA) in memory linear in the recording length.

A recording of n samples has an n x n recurrence matrix: at 36,000 samples that is 1.3 GB
as int8 and 10 GB of float64 distances, so nothing here ever holds it. Two blocked scans
compute only line-length histograms:

- a scan over bands of diagonals (skewed layout, lower triangle only) for diagonal lines;
- a scan over blocks of rows for vertical lines and white vertical lines (recurrence
  times). The matrix is symmetric, so row j's runs are column j's runs.

Peak memory is O(n + block) whatever n is; `block_elements` sets the block size.

Conventions (chosen to agree exactly with pyunicorn's `RecurrencePlot(emb,
metric="euclidean", threshold=eps)`, an independent implementation used in the tests):

- Precision: state vectors are rounded to float32 (pyunicorn stores its input as float32;
  a VR tracker's precision is far below float32's anyway), then squared differences are
  summed in float64 coordinate by coordinate in embedding order, exactly as pyunicorn's
  loop does, so each pair's distance is the same float64 in both implementations.
- Boundary: recurrence is strict, ``d < eps``. Instead of a square root per pair we compare
  the squared sum with the smallest float64 ``t`` for which ``sqrt(t) >= eps``
  (`squared_threshold`); because IEEE square root is correctly rounded and monotone,
  ``s < t`` holds exactly when ``sqrt(s) < eps``. The recurrence matrix is therefore
  bit-identical to pyunicorn's, including pairs at distance exactly eps.
- Main diagonal (line of identity): R[i, i] = 1 (distance 0 < eps). It counts in the
  recurrence rate and in vertical lines, and is excluded from diagonal lines, whose
  histogram counts both triangles (every off-diagonal line twice).
- Lines shorter than ``lmin`` do not count in DET, L, ENTR, LAM, TT, and not in the maxima
  either: ``max_diag_line``/``max_vert_line`` are 0 when no line reaches lmin (pyunicorn's
  maxima ignore l_min; they agree whenever the longest line is at least lmin).
- Recurrence times are white vertical lines of any length (w_min = 1, pyunicorn's default,
  Ngamga et al. 2007), including white runs that touch the border of the plot.
- Ratios use pyunicorn's guard: ``numerator / (denominator + 1e-8)``, so a plot with no
  lines gives 0, not NaN.

Theiler window ``theiler = w`` (docs/rqa.md says which w the builder uses and why): the
pairs with ``|i - j| < w`` are taken out of the plot, as if they lay outside it. With
w = 0 (the default of every function here) nothing is taken out and everything above holds
as stated, pyunicorn-exact. With w >= 1:

- diagonal lines are those of the diagonals ``|i - j| >= w`` (the line of identity is out);
- each column j is two segments, rows ``[0, j-w]`` and ``[j+w, n-1]``; vertical lines and
  white vertical lines are runs inside a segment, and the window is a border like the
  plot's own: a white run that reaches it ends there, as one that reaches the plot's edge
  does (it does not run across the window into the other segment);
- the recurrence rate is the recurrent fraction of the ``(n-w)(n-w+1)`` pairs outside the
  window (0 when there are none).

pyunicorn has no Theiler window; the tests compare with it at w = 0 and compare every w
with a brute-force reference of these definitions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mmse_model.core.domain import FEATURE_NAMES  # noqa: F401  (the order rqa_measures returns)

# pyunicorn's guard against empty denominators (RecurrencePlot._epsilon).
_GUARD = 1e-8
# About 2 MB of float64 per block: fits the L2 cache, and numpy's per-call overhead stays
# a few percent of the work at 3,000 samples.
DEFAULT_BLOCK_ELEMENTS = 1 << 18


def embed(series: np.ndarray, m: int, tau: int) -> np.ndarray:
    """Time-delay embedding of a (n, d) series into (n - (m-1)*tau, m*d) state vectors.

    Row i is ``(s[i], s[i+tau], ..., s[i+(m-1)tau])`` with each sample's d coordinates
    kept together, e.g. ``(x_i, y_i, x_{i+tau}, y_{i+tau})`` for m=2 gaze. Values are
    rounded to float32 (see the module docstring) and returned as float64.
    """
    if m < 1 or tau < 1:
        raise ValueError(f"embedding needs m >= 1 and tau >= 1, got m={m}, tau={tau}")
    series = np.asarray(series, dtype=np.float32)
    if series.ndim == 1:
        series = series[:, None]
    n_vectors = series.shape[0] - (m - 1) * tau
    if n_vectors < 1:
        return np.empty((0, m * series.shape[1]), dtype=np.float64)
    columns = [series[j * tau : j * tau + n_vectors] for j in range(m)]
    return np.concatenate(columns, axis=1).astype(np.float64)


def squared_threshold(eps: float) -> float:
    """The smallest float64 t with sqrt(t) >= eps, so that ``s < t`` iff ``sqrt(s) < eps``."""
    if not eps > 0:
        raise ValueError(f"the recurrence radius eps must be > 0, got {eps}")
    eps = float(eps)
    t = eps * eps
    while np.sqrt(t) < eps:
        t = np.nextafter(t, np.inf)
    while np.sqrt(np.nextafter(t, 0.0)) >= eps:
        t = np.nextafter(t, 0.0)
    return float(t)


@dataclass(frozen=True)
class LineHistograms:
    """Line-length histograms of one recurrence plot: ``hist[l]`` lines of length l."""

    n_vectors: int
    diagonal: np.ndarray  # (n+1,) both triangles, main diagonal (and the window) excluded
    vertical: np.ndarray  # (n+1,) every column, main diagonal included when theiler == 0
    white_vertical: np.ndarray  # (n+1,) recurrence times
    theiler: int = 0

    @property
    def admissible_pairs(self) -> int:
        """Pairs (i, j) of the plot outside the Theiler window: the recurrence rate's base."""
        n, w = self.n_vectors, self.theiler
        if w == 0:
            return n * n
        return (n - w) * (n - w + 1) if n > w else 0


def line_histograms(
    vectors: np.ndarray,
    eps: float,
    block_elements: int = DEFAULT_BLOCK_ELEMENTS,
    theiler: int = 0,
) -> LineHistograms:
    """Scan the recurrence plot of `vectors` (n, dim) in blocks; never holds it whole.

    `theiler` (w, in state vectors) takes the pairs with |i - j| < w out of the plot.
    """
    if isinstance(theiler, bool) or not isinstance(theiler, (int, np.integer)) or theiler < 0:
        raise ValueError(f"the Theiler window must be an integer >= 0, got {theiler!r}")
    theiler = int(theiler)
    vectors = np.ascontiguousarray(vectors, dtype=np.float64)
    n = vectors.shape[0]
    threshold = squared_threshold(eps)
    # One contiguous array per coordinate: the scans take strided views of them.
    coords = [np.ascontiguousarray(vectors[:, c]) for c in range(vectors.shape[1])]
    diagonal = np.zeros(n + 1, dtype=np.int64)
    vertical = np.zeros(n + 1, dtype=np.int64)
    white = np.zeros(n + 1, dtype=np.int64)
    if n == 0:
        return LineHistograms(0, diagonal, vertical, white, theiler)
    work = _Workspace(max(block_elements, n))
    _scan_diagonals(coords, n, threshold, work, diagonal, first=max(1, theiler))
    _scan_rows(coords, n, threshold, work, vertical, white, theiler)
    return LineHistograms(n, 2 * diagonal, vertical, white, theiler)


class _Workspace:
    """Block buffers allocated once per plot.

    Fresh multi-megabyte temporaries per block would each be a new mmap and a round of page
    faults: that cost more system time than the arithmetic itself.
    """

    def __init__(self, elements: int) -> None:
        self.elements = elements
        self._squared = np.empty(elements)
        self._diff = np.empty(elements)
        # One spare column per row (at most `elements` rows) ends every row's last run.
        self._mask = np.empty(2 * elements, dtype=bool)
        self._changes = np.empty(2 * elements, dtype=bool)

    def squared_distances(
        self, pairs: list[tuple[np.ndarray, np.ndarray]], shape: tuple[int, int]
    ) -> np.ndarray:
        """Sum over coordinates of (a - b)**2, accumulated in embedding order (pyunicorn's)."""
        size = shape[0] * shape[1]
        squared = self._squared[:size].reshape(shape)
        diff = self._diff[:size].reshape(shape)
        for c, (a, b) in enumerate(pairs):
            target = squared if c == 0 else diff
            np.subtract(a, b, out=target)
            np.multiply(target, target, out=target)
            if c:
                np.add(squared, diff, out=squared)
        return squared

    def recurrent(self, squared: np.ndarray, threshold: float) -> np.ndarray:
        """(rows, width+1) bool: squared < threshold, then a False column."""
        rows, width = squared.shape
        mask = self._mask[: rows * (width + 1)].reshape(rows, width + 1)
        np.less(squared, threshold, out=mask[:, :width])
        mask[:, width] = False
        return mask

    def run_bounds(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Flat start/end (exclusive) positions of True runs in a padded mask."""
        flat = mask.ravel()
        changes = self._changes[: flat.size - 1]
        np.not_equal(flat[1:], flat[:-1], out=changes)
        # Change points alternate start, end, start, ...: the flat array ends on False and
        # starts after a virtual False.
        bounds = np.flatnonzero(changes) + 1
        if flat[0]:
            bounds = np.concatenate(([0], bounds))
        return bounds[0::2], bounds[1::2], mask.shape[1]


def _scan_diagonals(
    coords: list[np.ndarray],
    n: int,
    threshold: float,
    work: _Workspace,
    hist: np.ndarray,
    first: int = 1,
) -> None:
    """Diagonal lines of the lower triangle from offset `first` on, a band of offsets
    k0..k0+B-1 at a time."""
    k0 = first
    while k0 < n:
        length = n - k0  # the longest diagonal in the band (offset k0)
        band = max(1, min(n - k0, work.elements // length))
        # Row a of the band is diagonal k0+a: element i is pair (i + k0 + a, i). Rows
        # shorter than `length` read the inf padding, which is never recurrent.
        pairs = []
        for coord in coords:
            padded = np.concatenate((coord[k0:], np.full(band - 1, np.inf)))
            pairs.append((sliding_window_view(padded, length), coord[:length]))
        squared = work.squared_distances(pairs, (band, length))
        starts, ends, _ = work.run_bounds(work.recurrent(squared, threshold))
        hist += np.bincount(ends - starts, minlength=n + 1)
        k0 += band


def _scan_rows(
    coords: list[np.ndarray],
    n: int,
    threshold: float,
    work: _Workspace,
    vertical: np.ndarray,
    white: np.ndarray,
    theiler: int = 0,
) -> None:
    """Vertical and white vertical lines, a block of whole rows at a time."""
    rows = max(1, work.elements // n)
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        pairs = [(coord[r0:r1, None], coord[None, :]) for coord in coords]
        squared = work.squared_distances(pairs, (r1 - r0, n))
        mask = work.recurrent(squared, threshold)
        window = _clear_window(mask, r0, theiler) if theiler else None
        black, gaps, spanning = _runs_and_gaps(work, mask, window)
        vertical += np.bincount(black, minlength=n + 1)
        white += np.bincount(gaps, minlength=n + 1)
        if spanning.size:
            white -= np.bincount(spanning, minlength=n + 1)


def _clear_window(mask: np.ndarray, r0: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Clear |i - j| < w in a block of rows r0.. of the padded mask; return each row's
    window as [lo, hi) columns."""
    rows, stride = mask.shape
    i = r0 + np.arange(rows)
    lo = np.maximum(i - w + 1, 0)
    hi = np.minimum(i + w, stride - 1)
    # The window of the block lies in columns c0..c1-1: clear that band only.
    c0, c1 = int(lo[0]), int(hi[-1])
    columns = np.arange(c0, c1)
    band = mask[:, c0:c1]
    band &= (columns < lo[:, None]) | (columns >= hi[:, None])
    return lo, hi


def _runs_and_gaps(
    work: _Workspace, mask: np.ndarray, window: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run lengths of True, of False (gaps, border runs included) in each padded row, and
    the gaps to take back out of the second.

    With a Theiler `window` ([lo, hi) per row, cleared in `mask`), the gap that holds a
    row's window is replaced by the white runs on either side of the window: it is among
    the gaps, returned again as spanning (to subtract), and its two sides are added.
    """
    rows, stride = mask.shape
    width = stride - 1
    starts, ends, _ = work.run_bounds(mask)
    row = starts // stride
    new_row = np.ones(len(row) + 1, dtype=bool)
    new_row[1:-1] = row[1:] != row[:-1]
    first, last = new_row[:-1], new_row[1:]  # run is its row's first / last
    leading = starts[first] - row[first] * stride
    inner = starts[1:][~first[1:]] - ends[:-1][~last[:-1]]
    trailing = row[last] * stride + width - ends[last]
    empty_rows = rows - int(first.sum())  # no recurrence at all: one gap of full width
    pieces = [leading[leading > 0], inner, trailing[trailing > 0], np.full(empty_rows, width)]
    spanning = np.empty(0, dtype=np.int64)
    if window is not None:
        spanning, head, tail = _window_gaps(starts, ends, stride, width, *window)
        pieces += [head[head > 0], tail[tail > 0]]
    return ends - starts, np.concatenate(pieces), spanning


def _window_gaps(
    starts: np.ndarray, ends: np.ndarray, stride: int, width: int, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the gap that holds the window [lo, hi), and its parts before and after."""
    row0 = np.arange(len(lo)) * stride
    win_lo, win_hi = row0 + lo, row0 + hi
    # No black run meets the window: the runs that end at or before win_lo lie before it,
    # the next one (if it is in the same row) after it.
    after = np.searchsorted(ends, win_lo, side="right")
    if len(starts):
        prev_end = ends[np.maximum(after - 1, 0)]
        prev_end = np.where((after > 0) & (prev_end > row0), prev_end, row0)
        next_start = starts[np.minimum(after, len(starts) - 1)]
        next_start = np.where(
            (after < len(starts)) & (next_start < row0 + width), next_start, row0 + width
        )
    else:
        prev_end, next_start = row0, row0 + width
    return next_start - prev_end, win_lo - prev_end, next_start - win_hi


def measures_from_histograms(hists: LineHistograms, lmin: int) -> np.ndarray:
    """The 10 RQA measures of FEATURE_NAMES, float64 (10,)."""
    if lmin < 1:
        raise ValueError(f"lmin must be >= 1, got {lmin}")
    n = hists.n_vectors
    lengths = np.arange(n + 1, dtype=np.int64)
    diag, vert, white = hists.diagonal, hists.vertical, hists.white_vertical
    recurrences = int(lengths @ vert)  # every recurrent point lies on one vertical line
    pairs = hists.admissible_pairs
    recurrence_rate = recurrences / pairs if pairs else 0.0

    def line_measures(hist: np.ndarray) -> tuple[float, float, float, float]:
        counted = hist[lmin:]
        points_in_long = int(lengths[lmin:] @ counted)
        points_all = int(lengths @ hist)
        ratio = points_in_long / float(points_all + _GUARD)
        mean_length = points_in_long / float(int(counted.sum()) + _GUARD)
        nonzero = np.flatnonzero(counted)
        longest = float(lmin + nonzero[-1]) if nonzero.size else 0.0
        return ratio, mean_length, longest, _entropy(counted)

    det, mean_diag, max_diag, diag_entropy = line_measures(diag)
    lam, trapping, max_vert, vert_entropy = line_measures(vert)
    white_points = int(lengths @ white)
    mean_recurrence_time = white_points / float(int(white.sum()) + _GUARD)
    return np.array(
        [
            recurrence_rate,
            det,
            mean_diag,
            max_diag,
            diag_entropy,
            lam,
            trapping,
            max_vert,
            vert_entropy,
            mean_recurrence_time,
        ],
        dtype=np.float64,
    )


def _entropy(counts: np.ndarray) -> float:
    """Shannon entropy (nats) of the line-length distribution, pyunicorn's normalisation."""
    counts = counts[counts != 0]
    if counts.size == 0:
        return 0.0
    p = counts / float(counts.sum() + _GUARD)
    return float(-(p * np.log(p)).sum())


def rqa_measures(
    vectors: np.ndarray,
    eps: float,
    lmin: int,
    block_elements: int = DEFAULT_BLOCK_ELEMENTS,
    theiler: int = 0,
) -> np.ndarray:
    """RQA of already-embedded state vectors (n, dim): the 10 measures of FEATURE_NAMES,
    without the pairs |i - j| < theiler."""
    return measures_from_histograms(line_histograms(vectors, eps, block_elements, theiler), lmin)
