"""Adam and a plateau schedule for stacked models that each keep their own learning rate.

Every parameter of a `MemberMLPs` has the member (signature x fold model) as its first
dimension. Adam is element-wise, so one optimiser over the stacked tensors is M
independent ones; what the members do not share is their learning rate: each signature
has its own plateau schedule and stops on its own (learning rate 0). `MemberAdam` takes a
learning rate per member; `PlateauSchedule` is torch's `ReduceLROnPlateau` (mode "min",
relative threshold) run for S signatures at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class MemberAdam:
    """Adam, or AdamW with `decoupled` weight decay, with one learning rate per member.

    Matches `torch.optim.Adam` / `torch.optim.AdamW` step for step (the equivalence tests
    train single models with those).
    """

    def __init__(
        self,
        params: list[torch.Tensor],
        lr: float,
        n_members: int,
        *,
        weight_decay: float = 0.0,
        decoupled: bool = True,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        self.params = list(params)
        self.weight_decay, self.decoupled, self.betas, self.eps = (
            weight_decay,
            decoupled,
            betas,
            eps,
        )
        first = self.params[0]
        self.lr = torch.full((n_members,), float(lr), dtype=first.dtype, device=first.device)
        # The moments, and each member's Adam direction (written by the fused kernel when the
        # rates differ), at staggered page offsets: see `staggered_zeros`.
        self.exp_avg, self.exp_avg_sq, self._directions = (
            list(state) for state in zip(*(staggered_zeros(p, 3) for p in self.params))
        )
        self.steps = 0
        # While every member has the same rate, torch's fused kernel does the whole step.
        self.shared_lr: float | None = float(lr)
        # The fused kernel wants its step counters on the parameters' device (CUDA included).
        self._step_counts = [
            torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params
        ]
        self._set_member_factors()

    def set_lr(self, lr_per_member: torch.Tensor) -> None:
        self.lr.copy_(lr_per_member)
        low, high = float(self.lr.min()), float(self.lr.max())  # once an epoch, not a step
        self.shared_lr = high if low == high and high > 0 else None
        self._set_member_factors()

    def _set_member_factors(self) -> None:
        """Per parameter, the rate and decoupled decay factor of each member, shaped
        (M, 1, ...) to broadcast over its member dimension: made when the rates change
        (once an epoch), not every step."""
        shapes = [(-1, *([1] * (p.dim() - 1))) for p in self.params]
        self._member_lr = [self.lr.view(shape) for shape in shapes]
        decay = 1.0 - self.lr * self.weight_decay
        self._member_decay = [decay.view(shape) for shape in shapes]

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        for count in self._step_counts:
            count.fill_(self.steps)
        if self.shared_lr is not None:
            self._fused(self.params, [p.grad for p in self.params], self.shared_lr)
        else:
            self._member_step()

    def _member_step(self) -> None:
        """One step with a rate per member, in three passes over the weights.

        Adam's update is the rate times a direction that does not depend on the rate,
        -m_hat / (sqrt(v_hat) + eps), and the moments do not depend on it either. So the
        fused kernel, run with rate 1 and no weight decay on zeroed buffers, updates the
        moments and writes every member's direction in one pass; the parameters then take
        their own rate of it (and their own decoupled decay). The per-member elementwise
        version this replaces took nine passes and a third of a step.
        """
        torch._foreach_zero_(self._directions)
        grads = [p.grad for p in self.params]
        if self.weight_decay and not self.decoupled:  # Adam's L2 penalty: in the gradient
            grads = torch._foreach_add(grads, self.params, alpha=self.weight_decay)
        self._fused(self._directions, grads, 1.0, weight_decay=0.0)
        decoupled_decay = self.weight_decay and self.decoupled
        for param, direction, lr, decay in zip(
            self.params, self._directions, self._member_lr, self._member_decay
        ):
            if decoupled_decay:
                param.mul_(decay)  # AdamW: (1 - lr * weight_decay), before the Adam update
            param.addcmul_(direction, lr)

    def _fused(
        self,
        targets: list[torch.Tensor],
        grads: list[torch.Tensor],
        lr: float,
        weight_decay: float | None = None,
    ) -> None:
        """Torch's fused Adam (AdamW with decoupled decay) kernel over `targets`, the kernel
        `torch.optim.Adam(fused=True)` runs, called as that optimiser calls it but without
        its per-step grouping of the tensors by device, which costs about a tenth of a
        millisecond; tests/test_optim.py holds the result to torch.optim.Adam's."""
        weight_decay = self.weight_decay if weight_decay is None else weight_decay
        kernel = torch._fused_adamw_ if self.decoupled and weight_decay else torch._fused_adam_
        beta1, beta2 = self.betas
        kernel(
            targets,
            grads,
            self.exp_avg,
            self.exp_avg_sq,
            [],
            self._step_counts,
            lr=lr,
            beta1=beta1,
            beta2=beta2,
            weight_decay=weight_decay,
            eps=self.eps,
            amsgrad=False,
            maximize=False,
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "lr": self.lr.clone(),
            "exp_avg": [t.clone() for t in self.exp_avg],
            "exp_avg_sq": [t.clone() for t in self.exp_avg_sq],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = int(state["steps"])
        self.set_lr(state["lr"])
        for mine, theirs in zip(
            self.exp_avg + self.exp_avg_sq, list(state["exp_avg"]) + list(state["exp_avg_sq"])
        ):
            mine.copy_(theirs)


def staggered_zeros(like: torch.Tensor, copies: int, page_bytes: int = 4096) -> list[torch.Tensor]:
    """`copies` zero tensors shaped like `like`, carved from one buffer so that no two of
    them, nor `like`, start at the same offset within a page.

    The allocator hands out large tensors page-aligned, so tensors allocated alike (the
    weights, the Adam moments) all start at the same offset in their pages. A kernel that
    streams through several of them at once, as Adam does through four, then suffers 4K
    aliasing: the CPU takes each load for one that may depend on an earlier store to
    another stream at the same page offset, and waits. Measured here (AMD EPYC, Zen 3, one
    thread), torch's fused Adam over the typical trial's (180, 2817) weights: 0.98 ms with
    its state from `zeros_like`, 0.33 ms with the same state staggered.
    """
    if like.device.type != "cpu" or not like.is_contiguous():
        return [torch.zeros_like(like) for _ in range(copies)]
    size = like.element_size()
    page = page_bytes // size  # elements per page
    spacing = page // (copies + 1)
    slot = -(-like.numel() // page) * page + page  # a whole number of pages, one to spare
    buffer = torch.zeros(copies * slot, dtype=like.dtype)
    base, target = buffer.data_ptr() % page_bytes, like.data_ptr() % page_bytes
    tensors = []
    for i in range(copies):
        # Copy i starts (i + 1) spacings after `like` does, modulo a page.
        offset = ((target - base) // size + (i + 1) * spacing) % page
        start = i * slot + offset
        tensors.append(buffer[start : start + like.numel()].view(like.shape))
    return tensors


class PlateauSchedule:
    """Cut a signature's learning rate by `factor` after `patience` epochs without a
    relative improvement of `threshold`, then wait `cooldown` epochs; never below `min_lr`."""

    def __init__(
        self,
        n: int,
        lr: float,
        *,
        factor: float,
        patience: int,
        min_lr: float,
        threshold: float,
        cooldown: int,
        eps: float = 1e-8,
    ):
        self.factor, self.patience, self.min_lr = factor, patience, min_lr
        self.threshold, self.cooldown, self.eps = threshold, cooldown, eps
        self.lr = np.full(n, float(lr))
        self.best = np.full(n, np.inf)
        self.bad_epochs = np.zeros(n, dtype=np.int64)
        self.cooldown_left = np.zeros(n, dtype=np.int64)

    def step(self, values: np.ndarray, active: np.ndarray) -> np.ndarray:
        """One epoch's validation losses (n,); returns the learning rates (n,)."""
        better = values < self.best * (1.0 - self.threshold)
        best = np.where(better, values, self.best)
        bad = np.where(better, 0, self.bad_epochs + 1)
        cooling = self.cooldown_left > 0
        cooldown_left = np.where(cooling, self.cooldown_left - 1, self.cooldown_left)
        bad = np.where(cooling, 0, bad)
        reduce = bad > self.patience
        cut = np.maximum(self.lr * self.factor, self.min_lr)
        lr = np.where(reduce & (self.lr - cut > self.eps), cut, self.lr)
        cooldown_left = np.where(reduce, self.cooldown, cooldown_left)
        bad = np.where(reduce, 0, bad)
        # A stopped signature keeps its state as it was.
        self.best = np.where(active, best, self.best)
        self.bad_epochs = np.where(active, bad, self.bad_epochs)
        self.cooldown_left = np.where(active, cooldown_left, self.cooldown_left)
        self.lr = np.where(active, lr, self.lr)
        return self.lr

    def state_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k).tolist() for k in ("lr", "best", "bad_epochs", "cooldown_left")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("lr", "best", "bad_epochs", "cooldown_left"):
            setattr(self, key, np.asarray(state[key], dtype=getattr(self, key).dtype))
