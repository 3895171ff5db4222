"""Where a sweep's time went (mmse_model/sweeps/phases.py): the driver's closing line, read
back by benchmarks/grid_time.py, and the phases a summary measures."""

from __future__ import annotations

import pytest

from mmse_model.core.config import Config
from mmse_model.sweeps.nested import NestedSearch
from mmse_model.sweeps.phases import IN_FOLDS, Phases, parse_line
from mmse_model.sweeps.summary import summarise_sweep
from mmse_model.training.checkpoint import load_checkpoint
from tests.fixtures.toy_data import write_planted_root
from tests.fixtures.trained_sweep import OVERRIDES, STRONG, WEAK, train_rows


def test_the_line_reads_back_with_the_total_of_the_wall_phases_only():
    phases = Phases()
    phases.add("dashboard", 3.04)
    phases.add("trials", 100.0)
    phases.add("trials", 20.5)
    phases.add("fold training", 400.0)  # CPU seconds over parallel folds: not in the total
    line = phases.line()
    assert line == (
        "time: trials 120.5 s, dashboard 3.0 s; in the folds: fold training 400.0 CPU-s; "
        "total 123.5 s"
    )
    assert parse_line(f"some output\n{line}\nmore\n") == {
        "trials": 120.5,
        "dashboard": 3.0,
        "fold training": 400.0,
        "total": 123.5,
    }
    assert list(phases.recorded()) == ["trials", "dashboard", "fold training"]


def test_a_missing_line_is_refused():
    with pytest.raises(ValueError, match="no line starting 'time: '"):
        parse_line("trials 3 s\n")


def test_the_summary_times_scoring_the_nested_folds_and_the_intervals(tmp_path):
    root = write_planted_root(
        tmp_path / "data", {STRONG: 1.0, WEAK: 0.0}, tasks=("Q1",), n_subjects=60
    )
    config = Config().with_overrides(OVERRIDES)
    rows = train_rows(root, tmp_path / "runs" / "timed", ("Q1",), config)
    phases = Phases()
    summarise_sweep(
        "timed",
        rows,
        root,
        load_checkpoint,
        nested=NestedSearch(config, {}, 1, 1),
        phases=phases,
    )
    recorded = phases.recorded()
    assert list(recorded) == [
        "scoring",
        "nested cross-validation",
        "intervals",
        *IN_FOLDS,
    ]
    # The folds trained a network and searched the baselines: both cost CPU time.
    assert all(phases.seconds[name] > 0 for name in IN_FOLDS)
