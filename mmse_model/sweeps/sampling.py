"""Hyper-parameter samples drawn from a sweep's search space without Ray.

The nested estimate (mmse_model/sweeps/nested.py) runs a reduced search again inside each
outer split, away from Tune: it needs samples of the same search-space specs the sweep's
config accepts (`choice`, `uniform`, `loguniform`, `randint`, as `SweepConfig` checks them)
with Tune's meaning of each (randint's high end excluded, loguniform uniform in log space),
drawn from a seed so that a repeat draws the same samples wherever and whenever it runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mmse_model.core.errors import ConfigError

SearchSpace = Mapping[str, Mapping[str, Sequence[Any]]]


def draw_samples(
    search_space: SearchSpace, count: int, seed: int | Sequence[int]
) -> list[dict[str, Any]]:
    """`count` samples (dotted key -> value), each key drawn in sorted key order from one
    generator seeded with `seed`: the same seed gives the same samples."""
    rng = np.random.default_rng(seed)
    return [
        {key: _draw(key, search_space[key], rng) for key in sorted(search_space)}
        for _ in range(count)
    ]


def _draw(key: str, spec: Mapping[str, Sequence[Any]], rng: np.random.Generator) -> Any:
    ((kind, args),) = spec.items()
    if kind == "choice":
        return args[int(rng.integers(len(args)))]  # the list's own value: a bool stays a bool
    low, high = args
    if kind == "uniform":
        return float(rng.uniform(low, high))
    if kind == "loguniform":
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))
    if kind == "randint":
        return int(rng.integers(int(low), int(high)))
    raise ConfigError(f"search_space.{key}: unknown distribution {kind!r}")
