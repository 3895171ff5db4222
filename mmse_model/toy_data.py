"""Small planted-signal datasets in the data contract (docs/design.md, "Data"), for tests.

This is not the synthetic VR cohort (`mmse_model.synth`, which simulates gaze and goes
through feature extraction): it writes feature matrices directly, with a known non-linear
relation between features and sub-score, so a test can tell whether training learns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmse_model import atomic
from mmse_model.config import Config
from mmse_model.domain import N_FEATURES

FEATURE_NAMES = tuple(f"rqa_{i}" for i in range(N_FEATURES))


def _features(y, latent, signal, noise, rng) -> np.ndarray:
    n = len(y)
    X = rng.normal(size=(n, N_FEATURES))
    X[:, 0] += signal * latent
    X[:, 1] += signal * np.tanh(1.5 * latent)
    X[:, 2] += signal * 0.7 * latent**2
    X[:, 3] = X[:, 3] * (1 + 0.5 * signal * np.abs(latent))
    X += rng.normal(scale=noise, size=X.shape)
    # Put features on the scales RQA measures have (rates near 0-1, line lengths in tens).
    scales = np.array([0.1, 0.2, 1.0, 5.0, 0.5, 0.1, 3.0, 20.0, 0.5, 10.0])
    offsets = np.array([0.3, 0.6, 2.0, 30.0, 2.0, 0.7, 4.0, 60.0, 2.0, 40.0])
    return X * scales + offsets


def _ids(n: int) -> np.ndarray:
    return np.array([f"S{i:04d}" for i in range(n)])


def write_planted_root(
    out_root: str | Path,
    signatures: dict[str, float],
    tasks: tuple[str, ...] = ("Q1",),
    n_subjects: int = 120,
    seed: int = 0,
    config: Config | None = None,
) -> Path:
    """Write `<out_root>/<sig>/<Q>.npz` for every signature (name -> signal strength)."""
    config = config or Config()
    out_root = Path(out_root)
    for t, task in enumerate(tasks):
        score_range = config.score_range(task)
        rng = np.random.default_rng([seed, t])
        latent = rng.normal(size=n_subjects)
        low, high = score_range
        y = np.clip(np.round((high + low) / 2 + latent * (high - low) / 4), low, high)
        for s, (signature, signal) in enumerate(sorted(signatures.items())):
            X = _features(y, latent, signal, 0.35, np.random.default_rng([seed, t, s]))
            write_npz(out_root / signature / f"{task}.npz", X=X, y=y, subject_id=_ids(n_subjects),
                      feature_names=np.array(FEATURE_NAMES))
    return out_root


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    atomic.write_npz(path, arrays)
