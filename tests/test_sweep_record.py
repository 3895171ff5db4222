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
    # A record without it (a version before the comparator existed) is another sweep's.
    assert changes(without(first, "evaluation"), record(root)) == [
        'evaluation (none) -> {"primary_comparator": "ridge"}'
    ]


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
    assert first.n_trials == 4 and first.format_version == 3
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


def ray_config(**ray):
    return {**BASE["config"], "ray": ray}


def test_keys_added_removed_or_renamed_in_a_mapping_are_changes(root):
    bare = record(root)
    big = record(root, config=ray_config(worker_resources={"gpu_big": 1}))
    assert changes(bare, big) == ['config.ray.worker_resources {} -> {"gpu_big": 1.0}']
    assert changes(big, bare) == ['config.ray.worker_resources {"gpu_big": 1.0} -> {}']
    small = record(root, config=ray_config(worker_resources={"gpu_small": 1}))
    assert changes(big, small) == [
        'config.ray.worker_resources {"gpu_big": 1.0} -> {"gpu_small": 1.0}'
    ]
    # The same keys: compared key by key, as before.
    two = record(root, config=ray_config(worker_resources={"gpu_big": 2}))
    assert changes(big, two) == ["config.ray.worker_resources.gpu_big 1.0 -> 2.0"]
    labelled = record(root, config=ray_config(worker_label_selector={"zone": "a"}))
    assert changes(bare, labelled) == ['config.ray.worker_label_selector {} -> {"zone": "a"}']
    # The search space's parameters are keys of a mapping too.
    space = {**BASE["search_space"], "arch.dropout": {"choice": [0.0, 0.2]}}
    lr = '"training.lr": {"loguniform": [0.001, 0.01]}'
    assert changes(bare, record(root, search_space=space)) == [
        f'search_space {{{lr}}} -> {{"arch.dropout": {{"choice": [0.0, 0.2]}}, {lr}}}'
    ]
    # A mapping too long to show whole: each key added or removed is named.
    wide = {
        "training.batch_size": {"choice": [8, 16, 32]},
        "arch.h1": {"choice": [32, 64, 128]},
        "arch.h2": {"choice": [16, 32, 64]},
    }
    wider = {**wide, "arch.dropout": {"choice": [0.0, 0.2]}}
    del wider["arch.h2"]
    assert changes(record(root, search_space=wide), record(root, search_space=wider)) == [
        'search_space.arch.dropout (none) -> {"choice": [0.0, 0.2]}',
        'search_space.arch.h2 {"choice": [16, 32, 64]} -> (none)',
    ]
    # A record written by this version, the same config: the same sweep.
    again = record(root, config=ray_config(worker_resources={"gpu_big": 1}))
    assert changes(big, again) == []
    check_same_sweep("exp/sweep_record.json", big, again)


def test_a_record_of_another_code_version_is_refused_naming_both(root):
    """A key a newer version added to the config is a change: a resume must run the code
    version that started the sweep, and the refusal says which that was."""
    today = record(root)
    assert today.code_version.startswith("mmse-model ")
    older = without(today, "config", "ray", "worker_group_start_timeout_s").model_copy(
        update={"code_version": "mmse-model 0.0.9, git 0123456789ab"}
    )
    assert changes(older, today) == ["config.ray.worker_group_start_timeout_s (none) -> 600.0"]
    with pytest.raises(SweepChanged) as refused:
        check_same_sweep("runs/exp/sweep_record.json", older, today)
    message = str(refused.value)
    assert message == (
        "runs/exp/sweep_record.json: --resume continues only the sweep that was started; "
        "changed since: config.ray.worker_group_start_timeout_s (none) -> 600.0. The sweep was "
        f"started by mmse-model 0.0.9, git 0123456789ab; this is {today.code_version}: a "
        "resume must run the code version that started the sweep (a newer one has settings "
        "the record lacks). Undo the change, or start a new sweep (another name or --storage)"
    )
    assert "\n" not in message and exit_status(refused.value) == EXIT_BAD_INPUT
    # The same version: no word about versions.
    with pytest.raises(SweepChanged) as same:
        check_same_sweep("r.json", today, record(root, samples=3))
    assert "code version" not in str(same.value)


def test_a_format_2_record_resumes_when_nothing_changed(root):
    """Records of format 2 (before the code version was recorded) are read: the same sweep
    resumes; a changed one is refused, saying the version that started it is not known."""
    today = record(root)
    document = json.loads(today.to_json())
    document["format_version"] = 2
    del document["code_version"]
    old = read_record("r.json", json.dumps(document))
    assert old.code_version == "" and old.not_recorded == ("code_version",)
    assert changes(old, today) == []
    check_same_sweep("r.json", old, today)
    with pytest.raises(SweepChanged, match="started by an earlier version that did not record"):
        check_same_sweep("r.json", old, record(root, samples=3))
