"""ASHA's rungs: the epochs at which it may stop a trial. Plain arithmetic, no Ray import, so
that readers of a sweep's results (the dashboard) can draw them without loading Ray Tune."""

from __future__ import annotations

import math


def rungs(
    max_t: int, grace_period: int, reduction_factor: float, brackets: int = 1
) -> tuple[int, ...]:
    """The epochs at which ASHA may stop a trial (below max_t), as its brackets place them."""
    epochs = set()
    for s in range(brackets):
        n_rungs = int(math.log(max_t / grace_period) / math.log(reduction_factor) - s + 1)
        # ASHA acts at the first epoch >= a milestone: its ceiling (the tolerance keeps 25 * 2.2,
        # 55.00000000000001 in floating point, at 55).
        epochs |= {
            math.ceil(grace_period * reduction_factor ** (k + s) - 1e-9) for k in range(n_rungs)
        }
    return tuple(sorted(e for e in epochs if e < max_t))
