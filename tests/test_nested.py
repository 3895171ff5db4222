"""The nested estimate without Ray: samples drawn from the search space, outer repeats that
search again on their split's training subjects only, and the summary entry they make."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from mmse_model.core.config import Config
from mmse_model.core.domain import BASELINES
from mmse_model.core.errors import ConfigError
from mmse_model.data.dataset import shared_split
from mmse_model.data.manifest import MANIFEST_NAME
from mmse_model.sweeps.config import SweepConfig, apply_sample
from mmse_model.sweeps.nested import (
    IN_PROCESS,
    NETWORK,
    NestedSearch,
    OuterRepeat,
    run_repeat,
)
from mmse_model.sweeps.sampling import draw_samples
from tests.conftest import SIG, WEAK_SIG
from tests.fixtures.toy_data import write_npz

SPACE = {
    "training.lr": {"loguniform": [0.001, 0.1]},
    "arch.dropout": {"uniform": [0.0, 0.4]},
    "arch.h1": {"randint": [8, 11]},
    "arch.use_batch_norm": {"choice": [False, True]},
    "training.batch_size": {"choice": [8, 16, 32]},
}


def test_samples_are_the_same_for_a_seed_and_of_each_specs_type_and_range():
    samples = draw_samples(SPACE, 400, (3, 0))
    assert samples == draw_samples(SPACE, 400, (3, 0))
    assert samples != draw_samples(SPACE, 400, (3, 1)) and samples != draw_samples(
        SPACE, 400, (4, 0)
    )
    assert (
        draw_samples(SPACE, 5, (3, 0)) == samples[:5]
    )  # more samples extend, never reshuffle, the first
    assert all(set(s) == set(SPACE) for s in samples)
    lr = np.array([s["training.lr"] for s in samples])
    dropout = np.array([s["arch.dropout"] for s in samples])
    assert all(
        type(s["training.lr"]) is float and type(s["arch.dropout"]) is float for s in samples
    )
    assert lr.min() >= 0.001 and lr.max() <= 0.1 and dropout.min() >= 0.0 and dropout.max() <= 0.4
    # loguniform: uniform in log space, so half the draws fall below the geometric mean (0.01);
    # uniform: half below the midpoint.
    assert 0.4 < np.mean(lr < 0.01) < 0.6 and 0.4 < np.mean(dropout < 0.2) < 0.6
    # randint leaves out its upper end, as Tune's does; every value below it comes up.
    assert {s["arch.h1"] for s in samples} == {8, 9, 10} and all(
        type(s["arch.h1"]) is int for s in samples
    )
    # choice gives the list's own values: a bool stays a bool (not numpy's bool_ or 0/1).
    assert {s["arch.use_batch_norm"] for s in samples} == {False, True}
    assert all(type(s["arch.use_batch_norm"]) is bool for s in samples)
    assert {s["training.batch_size"] for s in samples} == {8, 16, 32}
    # Every sample makes a valid training config.
    for sample in samples[:20]:
        apply_sample(Config(), sample)
    assert draw_samples({}, 2, 0) == [{}, {}]


def sweep_config(**evaluation) -> SweepConfig:
    return SweepConfig.parse(
        {
            "search_space": {"training.lr": {"loguniform": [0.001, 0.005]}},
            "search_seed": 7,
            "asha": {"max_t": 12, "grace_period": 4},
            "evaluation": evaluation,
            "config": {"training": {"epochs": 30}, "split": {"folds": 3}},
        }
    )


def test_a_sweeps_nested_search_is_its_base_config_and_search_space():
    assert NestedSearch.of_sweep(sweep_config()) is None  # outer_repeats 0: no nested estimate
    search = NestedSearch.of_sweep(sweep_config(outer_repeats=2))
    assert search.samples == 4 and search.repeats == 2 and search.search_seed == 7
    assert search.search_space == {"training.lr": {"loguniform": [0.001, 0.005]}}
    # The sweep's base config, not any trial's, and no epoch past what ASHA let a trial reach.
    assert search.base == sweep_config().base_config().with_values({"training.epochs": 12})
    assert NestedSearch.of_sweep(sweep_config(outer_repeats=1, nested_samples=9)).samples == 9
    with pytest.raises(ConfigError, match="nested_samples"):
        sweep_config(outer_repeats=1, nested_samples=0)


def test_each_repeat_partitions_every_subject_into_outer_folds_with_their_own_samples(data_root):
    base = Config().with_values({"split.folds": 3, "split.seed": 5})
    search = NestedSearch(base, SPACE, 3, 2, outer_folds=5, search_seed=11)
    repeats = search.repeats_of(data_root, "Q1", [SIG, WEAK_SIG])
    # Repeat r (seed 5 + 1 + r) x outer fold k, repeat by repeat.
    assert [(r.config.split.seed, r.config.split.outer_fold) for r in repeats] == [
        (seed, k) for seed in (6, 7) for k in range(5)
    ]
    assert {r.config.split.outer_folds for r in repeats} == {5}
    assert [list(r.samples) for r in repeats[:2]] == [
        draw_samples(SPACE, 3, (11, 6, 0)),
        draw_samples(SPACE, 3, (11, 6, 1)),
    ]
    runs = repeats[1].runs()
    assert len(runs) == 3 and all(
        run.signatures == (SIG, WEAK_SIG) and run.task == "Q1" for run in runs
    )
    assert [run.config for run in runs] == [
        apply_sample(
            base.with_values({"split.seed": 6, "split.outer_folds": 5, "split.outer_fold": 1}), s
        )
        for s in repeats[1].samples
    ]
    assert OuterRepeat.from_dict(repeats[1].to_dict()) == repeats[1]
    # Each repeat's outer folds hold every subject out exactly once, and every task gets the
    # same folds (the partition is of every subject's total) and the same samples.
    ranges = base.score_ranges
    for seed in (6, 7):
        held = [
            s
            for k in range(5)
            for s in shared_split(data_root, SIG, 3, 0.2, seed, ranges, 5, k).test_subjects
        ]
        everyone = shared_split(data_root, SIG, 3, 0.0, seed, ranges)
        assert sorted(held) == sorted(everyone.fold_of_subject)
    assert [r.samples for r in search.repeats_of(data_root, "Q3", [SIG])] == [
        r.samples for r in repeats
    ]
    # An empty search space has one config to try, not `samples` copies of it.
    assert {
        len(r.samples) for r in NestedSearch(base, {}, 4, 2).repeats_of(data_root, "Q1", [SIG])
    } == {1}


def with_features_replaced(root, out, subjects):
    """A copy of the data root in which the features of `subjects` are other numbers (their
    scores, and so every split, stay as they were)."""
    shutil.copytree(root, out)
    (out / MANIFEST_NAME).unlink()  # its checksums are of the original files
    rng = np.random.default_rng(0)
    for path in out.glob("*/*.npz"):
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        rows = np.isin(arrays["subject_id"], list(subjects))
        arrays["X"][rows] = rng.normal(size=(int(rows.sum()), arrays["X"].shape[1])) * 100
        write_npz(path, **arrays)
    return out


def test_a_repeat_chooses_from_its_training_subjects_only(data_root, tmp_path):
    """Nothing the repeat chooses depends on its outer split's test subjects: with their
    features replaced by noise, every fit's validation loss, the chosen sample and signature,
    and each baseline's choice and CV RMSE are the same numbers; only the test RMSEs move."""
    config = Config().with_values(
        {
            "split.folds": 3,
            "split.seed": 1,
            "split.outer_folds": 5,
            "split.outer_fold": 2,
            "training.epochs": 8,
        }
    )
    samples = ({"training.lr": 0.01}, {"training.lr": 0.002, "arch.hidden_layers": 0})
    repeat = OuterRepeat(str(data_root), "Q1", (SIG, WEAK_SIG), config, samples)
    split = shared_split(data_root, SIG, 3, 0.2, 1, config.score_ranges, 5, 2)
    test_subjects = split.test_subjects
    here = run_repeat(repeat)
    noisy_root = with_features_replaced(data_root, tmp_path / "noisy", test_subjects)
    noisy = run_repeat(OuterRepeat(str(noisy_root), "Q1", (SIG, WEAK_SIG), config, samples))
    assert [(c.sample, c.signature) for c in here.candidates] == [
        (0, SIG),
        (0, WEAK_SIG),
        (1, SIG),
        (1, WEAK_SIG),
    ]
    assert all(math.isfinite(c.val_loss) for c in here.candidates)
    assert noisy.candidates == here.candidates and noisy.sample == here.sample
    best = min(here.candidates, key=lambda c: c.val_loss)
    assert (here.sample, here.models[NETWORK].signature, here.models[NETWORK].selection) == (
        best.sample,
        best.signature,
        best.val_loss,
    )
    assert here.models[NETWORK].signature == SIG  # the planted signal is in SIG's features
    assert list(here.models) == [NETWORK, *BASELINES]
    for name in here.models:
        assert (noisy.models[name].signature, noisy.models[name].selection) == (
            here.models[name].signature,
            here.models[name].selection,
        ), name
        assert here.models[name].rmse > 0
    assert (
        noisy.models[NETWORK].rmse != here.models[NETWORK].rmse
    )  # the test subjects' features do count there
    assert here.ran_on == IN_PROCESS
    # It sends back each model's predictions of the outer fold's subjects, and how many
    # subjects its models learnt from.
    assert sorted(set(here.subjects)) == sorted(test_subjects)
    assert here.n_train == len(split.fold_of_subject)
    assert set(here.predictions) == set(here.models)
    assert all(len(p) == len(here.subjects) == len(here.y_true) for p in here.predictions.values())
    network = np.array(here.predictions[NETWORK])
    assert here.models[NETWORK].rmse == pytest.approx(
        np.sqrt(np.mean((network - np.array(here.y_true)) ** 2))
    )
