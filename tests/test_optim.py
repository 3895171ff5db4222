"""MemberAdam against torch's own optimisers, one independent instance per member."""

import itertools

import pytest
import torch

from mmse_model.training.optim import MemberAdam, staggered_zeros

N_MEMBERS = 6
# Rates per member over the run: all equal (the fused path), then diverging as plateau steps
# cut some signatures' rates, then one member stopped (rate 0) while the others go on.
SCHEDULE = {
    0: [1e-3] * N_MEMBERS,
    10: [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 1e-3],
    25: [5e-4, 1e-3, 2.5e-4, 5e-4, 1.25e-4, 1e-3],
    40: [5e-4, 0.0, 2.5e-4, 5e-4, 1.25e-4, 1e-3],
}


@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float32, 1e-6), (torch.float64, 1e-13)])
@pytest.mark.parametrize(("weight_decay", "decoupled"), [(0.0, True), (0.01, True), (0.01, False)])
def test_member_rates_match_one_torch_adam_per_member(dtype, tolerance, weight_decay, decoupled):
    """Every member of a stacked (M, ...) parameter list steps as its own torch.optim.Adam
    (coupled weight decay) or AdamW (decoupled) with its own rate, also after the rates
    diverge and after a member stops (rate 0)."""
    generator = torch.Generator().manual_seed(0)
    # Two parameters, shaped like MemberMLPs' flat weights and a batch-norm scale.
    stacked = [
        torch.randn(N_MEMBERS, 37, generator=generator, dtype=dtype) * 0.3,
        1 + torch.randn(N_MEMBERS, 5, generator=generator, dtype=dtype) * 0.1,
    ]
    optimizer = MemberAdam(stacked, 1e-3, N_MEMBERS, weight_decay=weight_decay, decoupled=decoupled)
    reference_class = torch.optim.AdamW if decoupled else torch.optim.Adam
    singles = [[p[m].clone() for p in stacked] for m in range(N_MEMBERS)]
    references = [reference_class(params, lr=1e-3, weight_decay=weight_decay) for params in singles]
    for step in range(60):
        if step in SCHEDULE:
            rates = SCHEDULE[step]
            optimizer.set_lr(torch.tensor(rates, dtype=dtype))
            for reference, rate in zip(references, rates):
                reference.param_groups[0]["lr"] = rate
        # Gradients of a realistic size, some exactly zero (dead ReLU units, dropped rows).
        grads = [
            torch.randn(p.shape, generator=generator, dtype=dtype)
            * 0.05
            * (torch.rand(p.shape, generator=generator) > 0.2)
            for p in stacked
        ]
        for p, g in zip(stacked, grads):
            p.grad = g.clone()
        optimizer.step()
        for m, (params, reference) in enumerate(zip(singles, references)):
            for p, g in zip(params, grads):
                p.grad = g[m].clone()
            reference.step()
    assert optimizer.shared_lr is None  # the per-member path ran
    for m, params in enumerate(singles):
        for p_stacked, p_single in zip(stacked, params):
            diff = (p_stacked[m] - p_single).abs().max().item()
            assert diff < tolerance, (m, diff)
    # A stopped member's weights did not move after it stopped, decay included.
    frozen = [p[1].clone() for p in stacked]
    for p in stacked:
        p.grad = torch.ones_like(p)
    optimizer.step()
    for p, before in zip(stacked, frozen):
        assert torch.equal(p[1], before)


def test_state_round_trip_keeps_member_rates():
    stacked = [torch.zeros(3, 4)]
    optimizer = MemberAdam(stacked, 1e-3, 3, weight_decay=0.01)
    optimizer.set_lr(torch.tensor([1e-3, 5e-4, 0.0]))
    stacked[0].grad = torch.ones(3, 4)
    optimizer.step()
    other = MemberAdam([torch.zeros(3, 4)], 1e-3, 3, weight_decay=0.01)
    other.load_state_dict(optimizer.state_dict())
    assert other.shared_lr is None and other.steps == 1
    torch.testing.assert_close(other.lr, optimizer.lr)
    torch.testing.assert_close(other._member_lr[0], optimizer.lr.view(-1, 1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_staggered_state_starts_at_distinct_page_offsets(dtype):
    """Adam's state tensors: zero, contiguous, apart from each other, and none at the page
    offset of the weights or of another (4K aliasing, optim.staggered_zeros)."""
    weights = torch.empty(180, 2817, dtype=dtype)
    state = staggered_zeros(weights, 3)
    offsets = [t.data_ptr() % 4096 for t in [weights, *state]]
    assert len(set(offsets)) == 4
    spans = sorted((t.data_ptr(), t.data_ptr() + t.numel() * t.element_size()) for t in state)
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))
    for t in state:
        assert t.shape == weights.shape and t.dtype == dtype and t.is_contiguous()
        assert not t.any()
