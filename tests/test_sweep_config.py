"""The sweep config (Ray-free): defaults, overrides, and one-line errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmse_model.core.errors import ConfigError, DataError
from mmse_model.sweeps.config import SweepConfig, apply_sample, discover, load_sweep_config
from tests.fixtures.toy_data import write_planted_root

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["sweep.yaml", "demo.yaml"])
def test_shipped_sweep_configs_load(name):
    sweep = load_sweep_config(
        REPO / "configs" / name, data_root="/d", storage="s3://b/p?endpoint_override=x"
    )
    assert sweep.data_root == "/d" and sweep.storage.startswith("s3://")
    assert sweep.max_t() == sweep.base_config().training.epochs
    assert {
        "training.lr",
        "regularization.weight_decay",
        "arch.h1",
        "arch.h2",
        "arch.dropout",
        "arch.use_batch_norm",
        "training.batch_size",
    } <= set(sweep.search_space)
    assert (
        sweep.evaluation.primary_comparator == "ridge"
    )  # declared in the file, before anything runs


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"bogus": 1}, "bogus"),
        ({"samples": "4"}, "samples"),
        ({"asha": {"grace_period": 500}}, "asha.grace_period"),
        ({"asha": {"nope": 1}}, "asha.nope"),
        ({"search_space": {"training.lr": {"normal": [0, 1]}}}, "search_space.training.lr"),
        ({"search_space": {"training.nope": {"choice": [1]}}}, "training.nope"),
        ({"search_space": {"arch.h1": {"choice": [0, 8]}}}, "arch.h1"),
        ({"config": {"training": {"lr": "fast"}}}, "training.lr"),
        ({"tasks": ["Q9"]}, "tasks"),
        ({"signatures": ["m2_tau1_eps.055_lmin2"]}, "signatures"),
        ({"signatures_per_trial": -1}, "signatures_per_trial"),
        ({"watchdog": {"stall_timeout_s": 0}}, "watchdog.stall_timeout_s"),
        ({"evaluation": {"primary_comparator": "lasso"}}, "evaluation.primary_comparator"),
        ({"search_space": {"split.seed": {"choice": [1, 2]}}}, "search_space.split.seed"),
        ({"search_space": {"split.folds": {"choice": [3, 5]}}}, "search_space.split.folds"),
        (
            {"search_space": {"split.test_fraction": {"uniform": [0.1, 0.3]}}},
            "search_space.split.test_fraction",
        ),
    ],
)
def test_bad_sweep_configs_name_the_key(raw, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as info:
        SweepConfig.parse(raw)
    assert "\n" not in str(info.value)


def test_the_primary_comparator_is_one_of_the_baselines():
    assert SweepConfig.parse({}).evaluation.primary_comparator == "ridge"
    chosen = SweepConfig.parse({"evaluation": {"primary_comparator": "hist_gradient_boosting"}})
    assert chosen.evaluation.primary_comparator == "hist_gradient_boosting"
    with pytest.raises(ConfigError) as info:
        SweepConfig.parse({"evaluation": {"primary_comparator": "network"}})
    assert str(info.value) == (
        "evaluation.primary_comparator: expected one of train_mean, ridge, "
        "hist_gradient_boosting, got 'network'"
    )


@pytest.mark.parametrize(
    "raw, message",
    [
        (
            {"name": "my sweep"},
            "name: expected a string matching '^[A-Za-z0-9_.-]+$', got 'my sweep' (a string)",
        ),
        ({"data_root": ""}, "data_root: expected a non-empty string, got '' (a string)"),
        ({"name": 3}, "name: expected a string, got 3"),
    ],
)
def test_string_errors_say_what_the_string_lacks(raw, message):
    with pytest.raises(ConfigError) as info:
        SweepConfig.parse(raw)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "flags, message",
    [
        ({"data_root": " "}, "--data: expected a path or URI, got an empty string"),
        ({"storage": ""}, "--storage: expected a path or URI, got an empty string"),
    ],
)
def test_empty_locations_from_the_command_line_are_refused(flags, message):
    with pytest.raises(ConfigError, match=message.replace("-", r"\-")):
        load_sweep_config(REPO / "configs" / "demo.yaml", **flags)


def test_the_split_cannot_be_searched():
    with pytest.raises(ConfigError, match="split is fixed for a whole sweep"):
        SweepConfig.parse({"search_space": {"split.seed": {"choice": [1, 2]}}})


def test_apply_sample_sets_dotted_keys():
    sweep = SweepConfig.parse({"config": {"training": {"epochs": 7}}})
    config = apply_sample(sweep.base_config(), {"training.lr": 0.02, "arch.use_batch_norm": True})
    assert config.training.lr == 0.02 and config.arch.use_batch_norm and config.training.epochs == 7


def test_discover_finds_signatures_and_shared_tasks(tmp_path):
    write_planted_root(
        tmp_path,
        {"m2_tau1_eps0.055_lmin2": 1.0, "m3_tau2_eps0.1_lmin2": 0.0},
        tasks=("Q1", "Q3"),
        n_subjects=30,
    )
    (tmp_path / "m2_tau1_eps0.055_lmin2" / "Q5.npz").write_bytes(b"")  # only in one signature
    sigs, tasks = discover(tmp_path, (), ())
    assert sigs == ("m2_tau1_eps0.055_lmin2", "m3_tau2_eps0.1_lmin2") and tasks == ("Q1", "Q3")
    with pytest.raises(DataError, match="Q2.npz"):
        discover(tmp_path, (), ("Q2",))
    # A folder that looks like a signature but is not spelt canonically is an error, not
    # something skipped in silence.
    (tmp_path / "m2_tau1_eps0.0550_lmin2").mkdir()
    with pytest.raises(DataError, match="write it 'm2_tau1_eps0.055_lmin2'"):
        discover(tmp_path, (), ())
