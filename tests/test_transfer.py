"""The transfer estimate (leave-one-site-out): its folds, its refusals, and what it shows that
the nested cross-validation cannot (mmse_model/sweeps/transfer.py)."""

from __future__ import annotations

import numpy as np
import pytest

from mmse_app.cli import main
from mmse_model.bundle.manifest import read_manifest
from mmse_model.core.config import Config
from mmse_model.core.errors import ConfigError, DataError, InputError
from mmse_model.data.dataset import held_out_split, shared_split
from mmse_model.sweeps.config import SweepConfig
from mmse_model.sweeps.finish import check_evaluation_inputs
from mmse_model.sweeps.nested import NETWORK, NestedSearch, run_repeat
from mmse_model.sweeps.sampling import draw_samples
from mmse_model.sweeps.summary_schema import read_summary
from mmse_model.sweeps.transfer import check_sites, read_sites, site_repeats
from tests.fixtures.trained_sweep import (
    OVERRIDES,
    SITES,
    STRONG,
    WEAK,
    site_of,
    write_labels,
    write_sited_sweep,
)

TASKS = ("Q1", "Q3")
N = 90


@pytest.fixture(scope="module")
def sited(tmp_path_factory):
    """(experiment, data root, labels) of a sweep over three sites whose third reads every
    feature shifted (tests/fixtures/trained_sweep.py)."""
    return write_sited_sweep(tmp_path_factory.mktemp("sited"), TASKS, N)


@pytest.fixture(scope="module")
def summary(sited):
    experiment = sited[0]
    path = experiment / "summary.json"
    return read_summary(str(path), path.read_text()), Config().with_overrides(OVERRIDES)


# --- the folds ---------------------------------------------------------------------------------


def test_a_site_is_held_out_whole_and_the_rest_dealt_to_inner_folds(sited):
    _, root, _ = sited
    ranges = Config().score_ranges
    held = tuple(f"S{i:04d}" for i in range(N) if site_of(i) == "B")
    split = shared_split(root, STRONG, 3, 0.2, 7, ranges, test_subjects=held)
    assert split.test_subjects == tuple(sorted(held))
    assert set(split.fold_of_subject) == {f"S{i:04d}" for i in range(N)} - set(held)
    assert sorted(np.bincount(list(split.fold_of_subject.values()))) == [20, 20, 20]


def test_a_split_that_cannot_be_made_is_refused_in_one_line():
    ids, y = np.array([f"S{i}" for i in range(10)]), np.arange(10.0)
    with pytest.raises(DataError, match=r"^d: 1 held-out subject\(s\) not in the data \(X9\)$"):
        held_out_split(ids, y, ("S1", "X9"), 2, 0, "d")
    with pytest.raises(
        DataError, match="^d: holding out 7 of 10 subjects leaves 3, need at least 4"
    ):
        held_out_split(ids, y, tuple(f"S{i}" for i in range(7)), 2, 0, "d")


def test_each_site_is_one_outer_fold_with_its_own_samples(sited):
    _, root, labels = sited
    space = {"training.lr": {"loguniform": [0.001, 0.01]}}
    base = Config().with_values({"split.folds": 3, "split.seed": 4})
    search = NestedSearch(base, space, 2, 1, search_seed=9)
    sites = read_sites(labels, "site")
    order, repeats = site_repeats(search, root, "Q1", [STRONG, WEAK], sites)
    assert order == list(SITES) and len(repeats) == 3
    for i, (site, repeat) in enumerate(zip(order, repeats)):
        assert repeat.config.split.test_subjects == tuple(
            sorted(s for s, v in sites.items() if v == site)
        )
        assert repeat.config.split.seed == 5 and repeat.config.split.outer_folds == 0
        assert list(repeat.samples) == draw_samples(space, 2, (9, 5, i, 1))
    # Never the nested cross-validation's samples (those are seeded by three numbers).
    nested = search.repeats_of(root, "Q1", [STRONG, WEAK])
    assert all(r.samples != n.samples for r in repeats for n in nested)


# --- refusals, before anything trains ------------------------------------------------------------


def test_a_labels_file_without_the_column_or_a_subject_is_refused(tmp_path):
    bad = tmp_path / "labels.csv"
    bad.write_text("subject_id,group\nS0001,healthy\n")
    with pytest.raises(InputError, match=f"^{bad}: needs subject_id and site columns"):
        read_sites(bad, "site")
    bad.write_text("subject_id,site\nS0001,A\nS0001,B\n")
    with pytest.raises(InputError, match=r"subject S0001 has two sites \(A, B\)$"):
        read_sites(bad, "site")
    bad.write_text("subject_id,site\nS0001,\n")
    with pytest.raises(InputError, match="line 2: no subject_id or no site$"):
        read_sites(bad, "site")
    subjects = [f"S{i}" for i in range(12)]
    every = {s: "A" if i < 6 else "B" for i, s in enumerate(subjects)}
    assert check_sites(every, subjects, 3, "f", "site") == ["A", "B"]
    with pytest.raises(InputError, match=r"^f: 1 subject\(s\) of the data have no site \(S3\)"):
        check_sites({k: v for k, v in every.items() if k != "S3"}, subjects, 3, "f", "site")
    with pytest.raises(
        InputError, match=r"^f: one headset \(A\); the transfer estimate needs two$"
    ):
        check_sites(dict.fromkeys(subjects, "A"), subjects, 3, "f", "headset")
    lopsided = {s: "A" if i < 8 else "B" for i, s in enumerate(subjects)}
    with pytest.raises(
        InputError, match="^f: holding out site A leaves 4 subjects, need at least 6"
    ):
        check_sites(lopsided, subjects, 3, "f", "site")


def test_the_sweep_checks_its_labels_before_its_first_trial(sited, tmp_path):
    _, root, labels = sited

    def sweep(**evaluation):
        return SweepConfig.parse(
            {
                "data_root": str(root),
                "evaluation": {"outer_repeats": 1, **evaluation},
                "config": {"split": {"folds": 3, "test_fraction": 0}},
            }
        )

    check_evaluation_inputs(sweep(groups_file=str(labels), transfer_by="site"), [STRONG])
    partial = write_labels(tmp_path / "partial.csv", n=N - 1)
    with pytest.raises(InputError, match=f"^{partial}: 1 subject\\(s\\) of the data have no site"):
        check_evaluation_inputs(sweep(groups_file=str(partial), transfer_by="site"), [STRONG])
    with pytest.raises(InputError, match="needs subject_id and clinic columns"):
        check_evaluation_inputs(sweep(groups_file=str(labels), transfer_by="clinic"), [STRONG])
    with pytest.raises(InputError, match="cannot read subject groups"):
        check_evaluation_inputs(sweep(groups_file=str(tmp_path / "none.csv")), [STRONG])
    with pytest.raises(ConfigError, match="evaluation.transfer_by: 'site' names a column"):
        sweep(transfer_by="site")


# --- the estimate ------------------------------------------------------------------------------


def test_the_transfer_estimate_reports_every_site_apart_from_the_estimate(summary, sited):
    result, config = summary
    _, root, labels = sited
    for task in TASKS:
        entry = result.tasks[task]
        transfer = entry.transfer
        assert transfer.by == "site" and transfer.method == "leave-one-site-out cross-validation"
        assert (transfer.repeats, transfer.outer_folds, transfer.n_subjects) == (1, 3, N)
        assert [(s.site, s.n_subjects, s.n_train) for s in transfer.sites] == [
            (site, 30, 60) for site in SITES
        ]
        assert {s.network_signature for s in transfer.sites} <= {STRONG, WEAK}
        # Each model's RMSE over the sites is the mean of its sites' RMSEs, with an interval
        # from three folds: wide, and said to be.
        rmse = transfer.network.rmse
        assert rmse.value == pytest.approx(np.mean([s.network_rmse for s in transfer.sites]))
        assert rmse.folds == 3 and rmse.ci[0] < rmse.value < rmse.ci[1]
        comparator = transfer.difference("ridge")
        assert comparator.primary and comparator.p_holm is None
        ridge = next(b for b in transfer.baselines if b.key == "ridge")
        assert [s.comparator_rmse for s in transfer.sites] == pytest.approx(ridge.fold_rmse)
        # The verdict stays the nested cross-validation's.
        assert entry.verdict.source.startswith("the declared comparator's RMSE difference over")
        # The site whose headset reads differently is the one the models miss most, worse
        # than the nested estimate says of the procedure: what a k-fold partition hides.
        by_site = {s.site: s.network_rmse for s in transfer.sites}
        assert by_site["C"] > max(by_site["A"], by_site["B"]), by_site
        assert by_site["C"] > entry.estimate.network.rmse.value
    # A site's fold is the same selection run alone: the numbers are reproduced.
    sites = read_sites(labels, "site")
    search = NestedSearch(config, {}, 1, 1)
    _, repeats = site_repeats(search, root, "Q3", [STRONG, WEAK], sites)
    alone = run_repeat(repeats[2])
    assert alone.models[NETWORK].rmse == pytest.approx(
        result.tasks["Q3"].transfer.sites[2].network_rmse
    )
    subtotal = result.subtotal.transfer
    assert subtotal.by == "site" and [s.site for s in subtotal.sites] == list(SITES)
    assert all(s.network_signature is None for s in subtotal.sites)


def test_the_report_the_bundle_and_its_card_carry_it(summary, sited, tmp_path):
    result, _ = summary
    experiment = sited[0]
    text = (experiment / "summary.txt").read_text()
    assert (
        "transfer to an unseen site (leave-one-site-out cross-validation by site: 3 sites" in text
    )
    assert "[95 % corrected resampled t over the sites: 2 degrees of freedom]" in text
    site = result.tasks["Q1"].transfer.sites[0]
    assert (
        f"by site held out: A (n 30, trained on 60) network {site.network_rmse:.2f}, Ridge "
        f"{site.comparator_rmse:.2f}; B (n 30" in text
    )
    out = tmp_path / "bundle"
    assert main(["bundle", str(experiment), "--data", str(sited[1]), "--out", str(out)]) == 0
    manifest = read_manifest(out)
    assert manifest.tasks["Q3"].transfer == result.tasks["Q3"].transfer
    card = (out / "model_card.md").read_text()
    assert "## Performance at an unseen site (leave-one-site-out, the transfer estimate)" in card
    assert f"| Q1 | A | 30 | 60 | {site.network_rmse:.2f} | {site.comparator_rmse:.2f} |" in card
