import copy

import pytest
import torch
from torch import nn

from mmse_model.core.config import ArchConfig
from mmse_model.training.loop import epoch_batches
from mmse_model.training.model import MLP, MemberMLPs, clip_grad_norm_per_model


def test_fold_model_matches_plain_mlp_forward():
    arch = ArchConfig(h1=8, h2=4, dropout=0.0, use_batch_norm=True)
    model = MemberMLPs(arch, n_models=3)
    model.reset_parameters([1, 2, 3])
    x = torch.randn(3, 7, 10)
    model.train()
    out = model(x)
    for k in range(3):
        single = model.fold_model(k).train()
        torch.testing.assert_close(single(x[k]), out[k])


def test_init_of_a_fold_does_not_depend_on_k():
    arch = ArchConfig(h1=8, h2=4)
    a, b = MemberMLPs(arch, 2), MemberMLPs(arch, 4)
    a.reset_parameters([11, 12])
    b.reset_parameters([11, 12, 13, 14])
    for (wa, _), (wb, _) in zip(a.layers(), b.layers()):
        torch.testing.assert_close(wa[:2], wb[:2])


def test_per_model_clipping_leaves_other_models_alone():
    w = nn.Parameter(torch.zeros(2, 3))
    w.grad = torch.tensor([[3.0, 4.0, 0.0], [0.3, 0.4, 0.0]])  # norms 5 and 0.5
    norms = clip_grad_norm_per_model([w], max_norm=1.0)
    torch.testing.assert_close(norms, torch.tensor([5.0, 0.5]))
    torch.testing.assert_close(w.grad[0].norm(), torch.tensor(1.0), atol=1e-5, rtol=0)
    torch.testing.assert_close(w.grad[1], torch.tensor([0.3, 0.4, 0.0]))


def test_masked_batch_norm_ignores_padding_rows():
    arch = ArchConfig(h1=6, h2=4, dropout=0.0, use_batch_norm=True)
    model = MemberMLPs(arch, n_models=1)
    model.reset_parameters([0])
    x = torch.randn(1, 5, 10)
    padded = torch.cat([x, 100 * torch.randn(1, 3, 10)], dim=1)
    mask = torch.tensor([[True] * 5 + [False] * 3])
    torch.testing.assert_close(model(padded, mask)[:, :5], copy.deepcopy(model)(x))


@pytest.mark.parametrize(
    ("counts", "batch_size", "min_rows"),
    [([50, 49, 51], 16, 1), ([33, 32], 16, 2), ([17, 18], 16, 2), ([5, 6], 16, 2), ([3, 3], 2, 2)],
)
def test_epoch_batches_keep_every_row_once_and_no_batch_of_one(counts, batch_size, min_rows):
    index, valid = epoch_batches(counts, batch_size, min_rows, [1, 2, 3][: len(counts)], epoch=4)
    for k, n in enumerate(counts):
        rows = index[k][valid[k]]
        assert sorted(rows.tolist()) == list(range(n))  # every row exactly once: nothing dropped
        sizes = valid[k].sum(dim=-1)
        assert sizes.min() >= min_rows
        assert sizes.max() <= max(batch_size, 2 * min_rows - 1)  # exceeded only to avoid a lone row
        assert sizes.max() - sizes.min() <= 1


def test_epoch_batches_depend_on_epoch_and_seed_only():
    a = epoch_batches([30, 31], 8, 1, [5, 6], epoch=2)
    b = epoch_batches([30, 31], 8, 1, [5, 6], epoch=2)
    c = epoch_batches([30, 31], 8, 1, [5, 6], epoch=3)
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])
    # Fold 0's shuffle does not depend on which other folds are trained beside it.
    d = epoch_batches([30], 8, 1, [5], epoch=2)
    assert torch.equal(a[0][0][a[1][0]], d[0][0][d[1][0]])


def test_plain_mlp_layers_follow_config():
    layers = [
        type(m).__name__ for m in MLP(ArchConfig(h1=4, h2=3, dropout=0.2, use_batch_norm=True))
    ]
    assert layers == [
        "Linear",
        "BatchNorm1d",
        "ReLU",
        "Dropout",
        "Linear",
        "BatchNorm1d",
        "ReLU",
        "Dropout",
        "Linear",
    ]
    assert [type(m).__name__ for m in MLP(ArchConfig(dropout=0.0))] == [
        "Linear",
        "ReLU",
        "Linear",
        "ReLU",
        "Linear",
    ]
