"""Successive halving inside the nested search (mmse_model/sweeps/nested.py `search`): a run
paused at a rung goes on as if it had not stopped, a run cut to some of its signatures goes
on for them as the whole run would have, and the search trains fewer candidate-epochs but
chooses by the same numbers."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from mmse_model.core.config import Config
from mmse_model.core.errors import CheckpointError
from mmse_model.sweeps.config import SweepConfig
from mmse_model.sweeps.nested import Halving, NestedSearch, OuterRepeat, search
from mmse_model.training import loop
from mmse_model.training.callbacks import NullReporter
from mmse_model.training.checkpoint import select_signatures
from mmse_model.training.loop import RunSpec, train_run
from mmse_model.training.optim import MemberAdam
from tests.fixtures.toy_data import write_planted_root

# Six signatures: two with the whole planted signal, two with part, two with none.
STRENGTHS = {
    "m2_tau1_eps0.04_lmin2": 1.0,
    "m2_tau1_eps0.055_lmin2": 0.9,
    "m2_tau1_eps0.07_lmin2": 0.5,
    "m3_tau1_eps0.04_lmin2": 0.4,
    "m3_tau2_eps0.1_lmin2": 0.0,
    "m4_tau2_eps0.1_lmin2": 0.0,
}
SIGS = tuple(sorted(STRENGTHS))
EPOCHS = 18


@pytest.fixture(scope="module")
def six_root(tmp_path_factory):
    return write_planted_root(tmp_path_factory.mktemp("six"), STRENGTHS, n_subjects=100)


def config(**values) -> Config:
    base = {
        "split.folds": 3,
        "split.seed": 4,
        "split.outer_folds": 5,
        "split.outer_fold": 1,
        "training.epochs": EPOCHS,
        "training.lr": 0.01,
        "arch.dropout": 0.2,
        "arch.use_batch_norm": True,
        "early_stopping.patience": 4,  # some signatures stop before the end
        "lr_scheduler.patience": 2,
    }
    return Config().with_values({**base, **values})


def close(a, b, tol: float = 1e-5) -> bool:
    return bool(np.allclose(np.asarray(a, float), np.asarray(b, float), rtol=tol, atol=tol))


def assert_same_state(one, other, signature: str, tol: float = 1e-5) -> None:
    """One signature's standing and best weights in two payloads agree."""
    a, b = one.state(signature), other.state(signature)
    assert (a.best_epoch, a.active, a.stop_epoch) == (b.best_epoch, b.active, b.stop_epoch)
    assert close(a.best_val_loss, b.best_val_loss, tol), (a.best_val_loss, b.best_val_loss)
    K = one.folds
    i, j = one.signature_index(signature), other.signature_index(signature)
    for name, tensor in one.best_model_state.items():
        theirs = other.best_model_state[name]
        assert close(tensor[i * K : (i + 1) * K], theirs[j * K : (j + 1) * K], tol), name


def test_a_paused_run_resumed_ends_where_the_whole_run_ends(six_root):
    run = RunSpec(str(six_root), SIGS[:3], "Q1", config())
    whole = train_run(run, NullReporter()).checkpoint
    first = train_run(run, NullReporter(), pause_at=9)
    assert first.fit.paused and not first.checkpoint.finished and first.checkpoint.epoch == 9
    # Paused, it kept its current weights: a signature whose best epoch lies before the
    # pause has other best weights than current ones (none is restored).
    K = first.checkpoint.folds
    behind = [i for i, s in enumerate(first.checkpoint.states) if s.best_epoch < 9]
    assert behind, [s.best_epoch for s in first.checkpoint.states]
    for i in behind:
        rows = slice(i * K, (i + 1) * K)
        assert not torch.equal(
            first.checkpoint.model_state["flat"][rows],
            first.checkpoint.best_model_state["flat"][rows],
        )
    rest = train_run(run, NullReporter(), resume=first.checkpoint)
    assert not rest.fit.paused and rest.checkpoint.finished
    assert rest.checkpoint.epoch == whole.epoch and rest.checkpoint.stop_reason == whole.stop_reason
    for signature in SIGS[:3]:
        assert_same_state(rest.checkpoint, whole, signature)


def test_a_run_cut_to_some_signatures_goes_on_for_them_as_the_whole_run(six_root):
    """Members share nothing: the survivors of a cut, in another order, end with the very
    losses, epochs and weights they end with in the whole packed run."""
    run = RunSpec(str(six_root), SIGS, "Q1", config())
    whole = train_run(run, NullReporter()).checkpoint
    paused = train_run(run, NullReporter(), pause_at=9).checkpoint
    keep = (SIGS[4], SIGS[0], SIGS[2])
    cut = select_signatures(paused, keep)
    assert cut.signatures == list(keep) and cut.standardiser_mean.shape[0] == 3 * paused.folds
    assert [s.signature for s in cut.states] == list(keep)
    assert cut.tracker["best"] == [paused.tracker["best"][SIGS.index(s)] for s in keep]
    rest = train_run(replace(run, signatures=keep), NullReporter(), resume=cut).checkpoint
    for signature in keep:
        assert_same_state(rest, whole, signature)
    # A signature it does not hold is refused by name.
    with pytest.raises(CheckpointError, match="holds no signature"):
        select_signatures(cut, ("m9_tau1_eps0.1_lmin2",))


def repeat_of(root, halving: Halving | None) -> OuterRepeat:
    samples = ({"training.lr": 0.01}, {"training.lr": 0.003}, {"training.lr": 0.03})
    return OuterRepeat(str(root), "Q1", SIGS, config(), samples, halving)


class MemberPathAdam(MemberAdam):
    """MemberAdam on its per-member path at every step. While every member of a run has one
    rate, the real one takes torch's fused kernel, which rounds differently (both within
    1e-6 of torch.optim.Adam, tests/test_optim.py); a cut run's survivors may share a rate
    where the whole run's members did not, and over a dozen epochs of dropout and
    batch-norm that rounding grows to ~1e-4. On one path the numbers are the same bits."""

    @property
    def shared_lr(self) -> None:
        return None

    @shared_lr.setter
    def shared_lr(self, value: float | None) -> None:
        pass


def test_halving_trains_fewer_epochs_and_chooses_by_the_same_numbers(six_root, monkeypatch):
    monkeypatch.setattr(loop, "MemberAdam", MemberPathAdam)
    halving = Halving((3, 9), 3.0)
    full_candidates, full_best, _ = search(repeat_of(six_root, None))
    candidates, best, payload = search(repeat_of(six_root, halving))
    keys = [(c.sample, c.signature) for c in candidates]
    assert keys == [(c.sample, c.signature) for c in full_candidates]  # each one, once
    assert len(keys) == 18
    # At each rung at most the best third (rounded up) of those still in go on.
    assert sum(c.epochs > 3 for c in candidates) <= 6
    assert sum(c.epochs > 9 for c in candidates) <= 2
    assert sum(c.epochs for c in candidates) < 0.5 * sum(c.epochs for c in full_candidates)
    # Every candidate's numbers are the ones it had at that epoch in the whole search: one
    # that went on to the end has the whole search's loss and epochs.
    full = {(c.sample, c.signature): c for c in full_candidates}
    for c in candidates:
        whole = full[(c.sample, c.signature)]
        if c.epochs == whole.epochs:
            assert c.val_loss == whole.val_loss, (c, whole)
        else:
            assert c.epochs < whole.epochs and c.val_loss >= whole.val_loss
    assert best == full[(best.sample, best.signature)]
    assert best.val_loss >= full_best.val_loss
    # The chosen one trained to its end and its weights are in the payload handed back.
    assert best.epochs == full[(best.sample, best.signature)].epochs
    assert payload.state(best.signature).best_val_loss == pytest.approx(best.val_loss)
    assert STRENGTHS[best.signature] >= 0.9  # the planted signal is found either way
    assert all(math.isfinite(c.val_loss) for c in candidates)


def test_the_search_and_its_words_come_from_the_sweeps_asha():
    def sweep(**evaluation) -> SweepConfig:
        return SweepConfig.parse(
            {
                "search_space": {"training.lr": {"loguniform": [0.001, 0.01]}},
                "asha": {"grace_period": 10, "reduction_factor": 3},
                "evaluation": {"outer_repeats": 2, **evaluation},
                "config": {"training": {"epochs": 100}},
            }
        )

    search_ = NestedSearch.of_sweep(sweep())
    assert search_.halving == Halving((10, 30, 90), 3.0)
    assert search_.describe("36") == (
        "4 hyper-parameter samples x 36 signatures on 5 inner folds, "
        "successive halving at epochs 10, 30, 90 (best 1/3 on)"
    )
    assert NestedSearch.of_sweep(sweep(nested_halving=False)).halving is None
    assert [Halving((10,), 3.0).keep(n) for n in (1, 2, 3, 4, 144)] == [1, 1, 1, 2, 48]
    repeat = NestedSearch.of_sweep(sweep()).repeats_of("data", "Q1", ["a"])[0]
    assert OuterRepeat.from_dict(repeat.to_dict()) == repeat and repeat.halving is not None
