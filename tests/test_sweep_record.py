"""`--resume` continues only the same sweep (mmse_model/sweeps/record.py): the record of
the first start against today's config, signatures, tasks and data."""

from __future__ import annotations

import json
import shutil

import pytest

from mmse_model.core.errors import EXIT_BAD_INPUT, InputError, exit_status
from mmse_model.sweeps.config import SweepConfig
from mmse_model.sweeps.plan import hyperparameter_samples
from mmse_model.sweeps.record import (
    SweepChanged,
    changes,
    check_same_sweep,
    data_fingerprint,
    make_record,
    read_record,
)
from tests.conftest import SIG, WEAK_SIG
from tests.fixtures.toy_data import write_planted_root

BASE = {
    "name": "exp",
    "samples": 2,
    "search_space": {"training.lr": {"loguniform": [0.001, 0.01]}},
    "asha": {"grace_period": 2},
    "config": {"training": {"epochs": 6}, "split": {"folds": 3}},
}


@pytest.fixture
def root(tmp_path):
    return write_planted_root(
        tmp_path / "data", {SIG: 1.0, WEAK_SIG: 0.0}, tasks=("Q1",), n_subjects=40
    )


def record(root, sigs=(SIG, WEAK_SIG), tasks=("Q1",), **changes_):
    sweep = SweepConfig.parse({**BASE, "data_root": str(root), **changes_})
    samples = hyperparameter_samples(sweep.search_space, sweep.samples, sweep.search_seed)
    # Through JSON, as the record is read back from sweep_record.json.
    made = make_record(sweep, list(sigs), list(tasks), n_trials=4, samples=samples)
    return read_record("sweep_record.json", made.to_json())


def without(record_, *path):
    """The record with one key of its sweep config removed (as an older version wrote it)."""
    config = json.loads(json.dumps(record_.sweep_config))
    where = config
    for key in path[:-1]:
        where = where[key]
    del where[path[-1]]
    return record_.model_copy(update={"sweep_config": config})


def test_the_same_sweep_again_has_no_changes_even_with_driver_settings_changed(root):
    first = record(root)
    assert changes(first, record(root)) == []
    # What a resumed driver applies afresh may change: the watchdog, resources, evaluation.
    assert (
        changes(
            first,
            record(
                root,
                watchdog={"stall_timeout_s": 3600},
                resources={"trial_cpus": 0.1},
                evaluation={"outer_repeats": 2},
            ),
        )
        == []
    )
    # A default written out is no change.
    assert (
        changes(
            first, record(root, config={**BASE["config"], "training": {"epochs": 6, "lr": 0.001}})
        )
        == []
    )
    check_same_sweep("exp/sweep_record.json", first, record(root))


def test_the_declared_comparator_cannot_change_on_resume(root):
    # Declared before the sweep ran: a resume that rewrites the results cannot swap it for
    # the baseline the test numbers made look best.
    first = record(root)
    assert first.sweep_config["evaluation"] == {"primary_comparator": "ridge"}
    assert changes(
        first, record(root, evaluation={"primary_comparator": "hist_gradient_boosting"})
    ) == ['evaluation.primary_comparator "ridge" -> "hist_gradient_boosting"']
    # A record written before the comparator existed resumes (a key one side lacks is no change).
    assert changes(without(first, "evaluation"), record(root)) == []


def test_a_changed_config_is_named_key_by_key(root):
    first = record(root)
    found = changes(
        first, record(root, samples=3, config={"training": {"epochs": 8}, "split": {"folds": 3}})
    )
    # max_t follows the epochs when not set: both are named.
    assert found == ["asha.max_t 6 -> 8", "config.training.epochs 6 -> 8", "samples 2 -> 3"]
    searched = changes(
        first, record(root, search_space={"training.lr": {"loguniform": [0.001, 0.02]}})
    )
    assert searched == ["search_space.training.lr.loguniform [0.001, 0.01] -> [0.001, 0.02]"]


def test_changed_signatures_and_tasks_are_named(root):
    first = record(root)
    assert changes(first, record(root, sigs=(SIG,))) == [f"signatures removed {WEAK_SIG}"]
    assert changes(first, record(root, tasks=("Q1", "Q3"))) == ["tasks added Q3"]


def test_changed_data_is_named_and_the_resume_refused_in_one_line(root):
    first = record(root)
    before = data_fingerprint(root)
    # The same subjects rebuilt with other features: the same file names, other contents
    # (and a new manifest).
    write_planted_root(root, {SIG: 1.0, WEAK_SIG: 0.0}, tasks=("Q1",), n_subjects=40, seed=1)
    after = data_fingerprint(root)
    assert after != before
    assert changes(first, record(root)) == [
        f"the data (its dataset files' fingerprint {before[:12]} -> {after[:12]})"
    ]
    with pytest.raises(SweepChanged) as refused:
        check_same_sweep("runs/exp/sweep_record.json", first, record(root))
    message = str(refused.value)
    assert message.startswith(
        "runs/exp/sweep_record.json: --resume continues only the sweep that was started; "
        "changed since: the data ("
    )
    assert "\n" not in message and exit_status(refused.value) == EXIT_BAD_INPUT


def test_the_fingerprint_is_the_data_roots_with_or_without_its_manifest(tmp_path):
    listed = write_planted_root(tmp_path / "listed", {SIG: 1.0}, tasks=("Q1",), n_subjects=40)
    bare = write_planted_root(
        tmp_path / "bare", {SIG: 1.0}, tasks=("Q1",), n_subjects=40, identity=False
    )
    assert (listed / "dataset.json").exists() and not (bare / "dataset.json").exists()
    unlisted = tmp_path / "unlisted"
    shutil.copytree(listed, unlisted)
    (unlisted / "dataset.json").unlink()
    assert data_fingerprint(unlisted) == data_fingerprint(
        listed
    )  # the manifest's is the files' digest
    before = data_fingerprint(bare)
    (bare / "build_report.csv").write_text("subject_id,task,reason\n")
    assert data_fingerprint(bare) == before  # not a dataset file
    (bare / SIG / "Q1.npz").rename(bare / SIG / "Q2.npz")
    assert data_fingerprint(bare) != before  # the same bytes under another task


def test_a_record_this_version_cannot_read_is_one_line(root):
    first = record(root)
    assert first.n_trials == 4 and first.format_version == 2
    # The samples every task's trials were given: drawn once, from the search seed.
    assert len(first.samples) == 2 and first.samples == record(root).samples
    assert 0.001 <= first.samples[0]["training.lr"] <= 0.01
    refusals = {
        "{": "r.json: not JSON",
        json.dumps({"format": "mmse-sweep-record", "format_version": 99}): (
            "r.json: mmse-sweep-record format version 99 is newer than this code reads"
        ),
        # Version 1 (before the contract): its trials were configured another way.
        json.dumps({"format_version": 1, "n_trials": 4}): (
            "r.json: mmse-sweep-record format version 1 is no longer read"
        ),
        json.dumps({"name": "x"}): "r.json: not a sweep record",
    }
    for text, start in refusals.items():
        with pytest.raises(InputError) as refused:
            read_record("r.json", text)
        assert str(refused.value).startswith(start), str(refused.value)
        assert "\n" not in str(refused.value)


def test_a_record_from_a_version_with_fewer_config_keys_still_resumes(root):
    first = without(record(root), "config", "ray", "worker_group_start_timeout_s")  # added since
    assert changes(first, record(root)) == []
    # The search space is the user's: a parameter added to it is a change.
    space = {**BASE["search_space"], "arch.dropout": {"choice": [0.0, 0.2]}}
    assert changes(first, record(root, search_space=space)) == [
        "search_space.arch.dropout.choice (none) -> [0.0, 0.2]"
    ]
