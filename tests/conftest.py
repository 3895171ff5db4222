"""Shared fixtures: tiny planted-signal datasets in the data contract (docs/design.md, "Data")."""

from __future__ import annotations

import numpy as np
import pytest

from mmse_model.core.config import Config
from tests.fixtures.toy_data import write_planted_root

SIG = "m2_tau1_eps0.055_lmin2"
WEAK_SIG = "m3_tau2_eps0.1_lmin2"


@pytest.fixture(scope="session")
def data_root(tmp_path_factory):
    """Two signatures (strong and no signal) x tasks Q1, Q3; 120 subjects."""
    root = tmp_path_factory.mktemp("data")
    return write_planted_root(root, {SIG: 1.0, WEAK_SIG: 0.0}, tasks=("Q1", "Q3"), n_subjects=120)


@pytest.fixture
def small_config() -> Config:
    return Config().with_overrides(["training.epochs=8", "split.folds=3"])


def save_npz(path, **arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="session")
def bundled_sweep(tmp_path_factory):
    """(experiment, data root, bundle folder) of a finished five-task sweep with CV+
    intervals (no nested estimate): for the tests that check what a bundle, a checkpoint or
    a features file may be. Read-only: copy before editing."""
    from mmse_app.cli import main
    from tests.fixtures.trained_sweep import write_trained_sweep

    experiment, root = write_trained_sweep(tmp_path_factory.mktemp("bundled"), n_subjects=60)
    assert main(["bundle", str(experiment)]) == 0
    return experiment, root, experiment / "bundle"
