"""The MLP (10 -> [h1 -> [h2 ->]] 1), alone and as M independent models in one module.

`MemberMLPs` stacks the weights of M MLPs (one per signature and fold) along a leading
dimension so one batched matmul (`torch.baddbmm`) runs a step for every one at once. The
models share nothing: each has its own weights, batch-norm statistics, optimiser state and
learning rate (mmse_model/training/optim.py) and gradient-norm clipping
(`clip_grad_norm_per_model`). With `hidden_layers: 0` a model is linear in the standardised
features. `MLP` is the plain single model, the shape the original design had, used for the
TensorBoard graph and the equivalence tests.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from mmse_model.core.config import ArchConfig
from mmse_model.core.domain import N_FEATURES

BN_MOMENTUM = 0.1
BN_EPS = 1e-5


def hidden_widths(arch: ArchConfig) -> list[int]:
    return [arch.h1, arch.h2][: arch.hidden_layers]


class MLP(nn.Sequential):
    """Linear -> [BatchNorm] -> ReLU -> [Dropout] per hidden layer, then Linear to one output."""

    def __init__(self, arch: ArchConfig, n_features: int = N_FEATURES):
        layers: list[nn.Module] = []
        width_in = n_features
        for width in hidden_widths(arch):
            layers.append(nn.Linear(width_in, width))
            if arch.use_batch_norm:
                layers.append(nn.BatchNorm1d(width, eps=BN_EPS, momentum=BN_MOMENTUM))
            layers.append(nn.ReLU())
            if arch.dropout > 0:
                layers.append(nn.Dropout(arch.dropout))
            width_in = width
        layers.append(nn.Linear(width_in, 1))
        super().__init__(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 10) -> (B,)
        return super().forward(x).squeeze(-1)


class FoldBatchNorm(nn.Module):
    """BatchNorm1d for K stacked models whose batches carry padding rows.

    Statistics come from each fold's real rows only (`mask`), with the same biased/unbiased
    variance conventions and momentum as `nn.BatchNorm1d`, so a fold-model behaves exactly
    like a plain MLP with batch-norm trained on that fold's batches.
    """

    def __init__(self, n_models: int, width: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n_models, width))
        self.bias = nn.Parameter(torch.zeros(n_models, width))
        self.register_buffer("running_mean", torch.zeros(n_models, width))
        self.register_buffer("running_var", torch.ones(n_models, width))
        # Per-model momentum once some model stopped (0 for those: they keep their statistics,
        # as a run of that signature alone would); None, the scalar, until then. Not saved:
        # the trainer sets it from which signatures are active.
        self.register_buffer("momentum", None, persistent=False)

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        # h: (K, B, W); mask: (K, B) bool or None (every row real)
        if self.training:
            if mask is None:
                count = torch.full((h.shape[0], 1, 1), h.shape[1], dtype=h.dtype, device=h.device)
                weights = torch.ones_like(h[..., :1])
            else:
                weights = mask.unsqueeze(-1).to(h.dtype)  # (K, B, 1)
                count = weights.sum(dim=1, keepdim=True)  # (K, 1, 1)
            mean = (h * weights).sum(dim=1, keepdim=True) / count  # (K, 1, W)
            var = (((h - mean) ** 2) * weights).sum(dim=1, keepdim=True) / count
            with torch.no_grad():
                unbiased = var * count / (count - 1).clamp(min=1)
                momentum = BN_MOMENTUM if self.momentum is None else self.momentum
                self.running_mean.lerp_(mean.squeeze(1), momentum)
                self.running_var.lerp_(unbiased.squeeze(1), momentum)
        else:
            mean = self.running_mean.unsqueeze(1)
            var = self.running_var.unsqueeze(1)
        normed = (h - mean) * torch.rsqrt(var + BN_EPS)
        return normed * self.weight.unsqueeze(1) + self.bias.unsqueeze(1)


def state_shapes(
    arch: ArchConfig, n_models: int, n_features: int = N_FEATURES
) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor in a `MemberMLPs(arch, n_models)` state dict, computed
    without building one: what a stored state must match before anything is allocated."""
    widths = [n_features, *hidden_widths(arch), 1]
    flat = sum(w_in * w_out + w_out for w_in, w_out in itertools.pairwise(widths))
    shapes: dict[str, tuple[int, ...]] = {"flat": (n_models, flat)}
    if arch.use_batch_norm:
        for i, width in enumerate(widths[1:-1]):
            for name in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"norms.{i}.{name}"] = (n_models, width)
    return shapes


class MemberMLPs(nn.Module):
    """M independent MLPs with stacked weights: input (M, B, 10) -> output (M, B).

    All linear weights and biases live in one (M, P) parameter, viewed per layer: the
    optimiser step and the per-model gradient clip are then a handful of kernels on one
    tensor instead of a few per layer, which is most of a step's cost at these sizes.
    """

    def __init__(self, arch: ArchConfig, n_models: int, n_features: int = N_FEATURES):
        super().__init__()
        self.arch = arch
        self.n_models = n_models
        widths = [n_features, *hidden_widths(arch), 1]
        self.layer_shapes = list(itertools.pairwise(widths))  # (in, out) per layer
        self.chunks = [n for w_in, w_out in self.layer_shapes for n in (w_in * w_out, w_out)]
        self.flat = nn.Parameter(torch.empty(n_models, sum(self.chunks)))
        self.norms = nn.ModuleList(
            FoldBatchNorm(n_models, w) for w in widths[1:-1] if arch.use_batch_norm
        )

    def set_active_members(self, active: torch.Tensor) -> None:
        """Freeze the batch-norm statistics of members that stopped (`active` (M,) bool);
        their weights are frozen by a learning rate of 0."""
        for norm in self.norms:
            stats = norm.running_mean  # the momentum in their dtype: exactly BN_MOMENTUM, or 0
            norm.momentum = (
                active.to(device=stats.device, dtype=stats.dtype).unsqueeze(1) * BN_MOMENTUM
            )

    def dropout_masks(
        self, seed: int, n_steps: int, rows: int, n_folds: int
    ) -> list[torch.Tensor] | None:
        """Every step's dropout scales for an epoch, drawn at once: [(n_steps, K, rows, w)].

        One draw per epoch instead of per step and layer saves kernels on the hot path; a
        private generator seeded per epoch makes a resumed run draw the same masks as an
        uninterrupted one and leaves the global RNG alone. Masks are drawn for the K folds
        and shared by every signature's fold k, as a run of that signature alone draws them:
        `forward` broadcasts fold k's mask over the S signatures' fold-k members rather than
        holding S copies. They are drawn on the CPU and moved: CUDA's generator gives other
        numbers for the same seed, and a run on a GPU should end where the same run on a CPU
        ends.
        """
        p = self.arch.dropout
        if p == 0 or len(self.layer_shapes) == 1:
            return None
        device, dtype = self.flat.device, self.flat.dtype
        generator = torch.Generator().manual_seed(seed)
        masks = []
        for _, width in self.layer_shapes[:-1]:
            draws = torch.rand(n_steps, n_folds, rows, width, generator=generator, dtype=dtype).to(
                device
            )
            masks.append((draws >= p).to(dtype).mul_(1.0 / (1.0 - p)))
        return masks

    def layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Views (W (M, in, out), b (M, out)) into the flat parameter, one pair per layer."""
        parts = torch.split(self.flat, self.chunks, dim=1)
        return [
            (parts[2 * i].view(self.n_models, w_in, w_out), parts[2 * i + 1])
            for i, (w_in, w_out) in enumerate(self.layer_shapes)
        ]

    def reset_parameters(self, model_seeds: list[int]) -> None:
        """nn.Linear's default init, each model from its own seed (independent of K)."""
        assert len(model_seeds) == self.n_models
        with torch.no_grad():
            for k, seed in enumerate(model_seeds):
                generator = torch.Generator().manual_seed(seed)
                for weight, bias in self.layers():
                    w_in, w_out = weight.shape[1:]
                    bound = 1.0 / math.sqrt(w_in)
                    w = torch.empty(w_out, w_in).uniform_(-bound, bound, generator=generator)
                    weight[k].copy_(w.T)  # stored (in, out) so a step is x @ W
                    bias[k].copy_(torch.empty(w_out).uniform_(-bound, bound, generator=generator))

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        dropout: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """x (M, B, 10) -> (M, B). `mask` marks real rows (batch-norm statistics);
        `dropout` holds one scale tensor (K, B, w) per hidden layer, in training only, for
        the M = S*K members (member s*K + k takes fold k's)."""
        *hidden, (weight_out, bias_out) = self.layers()
        h = x
        for i, (weight, bias) in enumerate(hidden):
            h = torch.baddbmm(bias.unsqueeze(1), h, weight)  # (M, B, w_out)
            if self.arch.use_batch_norm:
                h = self.norms[i](h, mask)
            h = F.relu(h)
            if dropout is not None:
                scale = dropout[i]  # (K, B, w), the same for every signature
                h = (h.view(-1, *scale.shape) * scale).view(h.shape)  # (S, K, B, w) -> (M, B, w)
            elif self.training and self.arch.dropout > 0:
                h = F.dropout(h, self.arch.dropout)
        # One output: a dot product per row. A batched matmul with one output column costs
        # more in its per-member calls than in arithmetic (forward and backward together,
        # about twice the CPU time of this product and sum).
        return (h * weight_out.transpose(1, 2)).sum(-1) + bias_out  # (M, B)

    def fold_model(self, k: int) -> MLP:
        """A plain `MLP` holding fold-model k's weights (a copy)."""
        single = MLP(self.arch, self.layer_shapes[0][0]).to(
            device=self.flat.device, dtype=self.flat.dtype
        )
        linears = [m for m in single if isinstance(m, nn.Linear)]
        norms = [m for m in single if isinstance(m, nn.BatchNorm1d)]
        with torch.no_grad():
            for linear, (weight, bias) in zip(linears, self.layers()):
                linear.weight.copy_(weight[k].T)
                linear.bias.copy_(bias[k])
            for norm, fold_norm in zip(norms, self.norms):
                norm.weight.copy_(fold_norm.weight[k])
                norm.bias.copy_(fold_norm.bias[k])
                norm.running_mean.copy_(fold_norm.running_mean[k])
                norm.running_var.copy_(fold_norm.running_var[k])
        return single


@torch.no_grad()
def clip_grad_norm_per_model(parameters: list[nn.Parameter], max_norm: float) -> torch.Tensor:
    """`clip_grad_norm_` applied to each stacked model separately; returns norms (K,).

    A global clip over all K would let one fold's large gradient shrink every other fold's
    step, coupling models that must stay independent.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    per_param = [torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads]  # each (K,)
    norms = (
        per_param[0]
        if len(per_param) == 1
        else torch.linalg.vector_norm(torch.stack(per_param), dim=0)
    )
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.view(-1, *([1] * (g.dim() - 1))))
    return norms
