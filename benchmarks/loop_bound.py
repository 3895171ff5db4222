"""The realistic trial's loop against the FLOP bound of its members: what bounds it.

One packed trial of the realistic grid trains 36 signatures x 5 folds = 180 members for 100
epochs on 300 subjects (240 outside the held-out test set, 192 training rows per fold). This
runs that loop (`FoldFitter.fit`, early stopping off so every architecture does all its
epochs; the plateau schedule on, as in a sweep) on one thread, as a one-CPU trial does, and
prints per architecture of the sweep's search space (configs/sweep.yaml):

- fold-model epochs per second (one member seeing its training rows once, plus its
  validation pass), from this process's CPU time;
- the matmul FLOPs of one training step, forward and backward, counted by torch's
  `FlopCounterMode` on the real step, and the GFLOP/s the loop reaches;
- four floors for one step: its matmul FLOPs at this CPU's big-GEMM rate, its own matmuls
  replayed back to back (the FLOP floor at these shapes), its bytes (what every non-view op
  reads and writes) at this CPU's in-cache bandwidth, and the same step with one signature
  (5 members: 1/36 of the FLOPs and bytes, the same ops), which is what a step costs
  whatever its size: interpreter, dispatch, autograd;
- where a step's op time goes (torch.profiler, after the fit): forward, backward, gradient
  clip, Adam, and the share in matmuls.

Then, per architecture, the same fit with the loop as it was at commit 8f6ca27 (issue 28's
starting point: Adam's per-member path in nine elementwise passes, its state page-aligned
like the weights, dropout masks copied for every signature, the output layer a batched
matmul, the batches gathered by (member, row) pairs, every signature summarised apart),
bound to a fitter of its own, fitted in this process in turns with today's, epoch by
epoch (each on a thread of its own, one running at a time, each timed by its thread's CPU
clock), so that both meet the same load: the ratio of fold-model epochs/s (the median over
`--repeats` pairs) and how far apart the two fits end (best weights, best validation
losses, best epochs, final rates).

The last lines set the typical architecture's step against each floor,
`loop bound (typical): <step> ms per step = <ratio>x the FLOP floor, ...`, and against
the old loop, `speed-up over 8f6ca27 (typical): <ratio>x ...`.

    python benchmarks/loop_bound.py [--epochs 100] [--archs typical] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import MethodType

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout: tests.fixtures

from sweep_overhead import signatures  # the benchmark's 36 signature names

from mmse_model.core.config import Config
from mmse_model.data.dataset import MemberTensors, build_member_tensors, load_group, make_split
from mmse_model.training import optim as optim_module
from mmse_model.training.callbacks import Callback, CallbackManager, History
from mmse_model.training.loop import RECORD_METRICS, FoldFitter, epoch_batches
from mmse_model.training.model import MemberMLPs
from mmse_model.training.optim import MemberAdam
from tests.fixtures.toy_data import write_planted_root

TASK = "Q1"
MATMULS = {torch.ops.aten.mm, torch.ops.aten.bmm, torch.ops.aten.baddbmm, torch.ops.aten.addmm}

# Points of configs/sweep.yaml's search space. "typical" is the training defaults, the middle
# value of every choice the space offers; the other two are its cheapest and dearest corners.
ARCHS = {
    "typical": [
        "arch.hidden_layers=2",
        "arch.h1=64",
        "arch.h2=32",
        "arch.dropout=0.25",
        "arch.use_batch_norm=false",
        "training.batch_size=16",
    ],
    "largest": [
        "arch.hidden_layers=2",
        "arch.h1=128",
        "arch.h2=64",
        "arch.dropout=0.2",
        "arch.use_batch_norm=true",
        "training.batch_size=8",
    ],
    "linear": [
        "arch.hidden_layers=0",
        "arch.dropout=0.0",
        "arch.use_batch_norm=false",
        "training.batch_size=32",
    ],
}


class OpRecorder(TorchDispatchMode):
    """Counts the aten ops a region dispatches, the bytes its non-view ops read and write,
    and keeps a copy of every matmul's arguments for replay."""

    def __init__(self):
        super().__init__()
        self.ops, self.bytes, self.matmuls = 0, 0, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.ops += 1
        if not func.is_view:
            tensors = [
                t for t in tree_flatten((args, kwargs, out))[0] if isinstance(t, torch.Tensor)
            ]
            self.bytes += sum(t.numel() * t.element_size() for t in tensors)
        if func.overloadpacket in MATMULS:
            self.matmuls.append(
                (
                    func,
                    [a.detach().clone() if isinstance(a, torch.Tensor) else a for a in args],
                    dict(kwargs),
                )
            )
        return out


@dataclass
class Machine:
    gemm_gflops: float  # a big square GEMM, one thread: this CPU's FLOP peak in practice
    cache_gbps: float  # read+write bandwidth of an in-place add over 4 MB buffers (in L3)


def measure_machine(buffer_bytes: int = 4 << 20) -> Machine:
    n = 1024
    a, b = torch.randn(n, n), torch.randn(n, n)
    gemm = _best(lambda: torch.mm(a, b), repeats=20)
    elements = max(1, buffer_bytes // 4)
    x, y = torch.randn(elements), torch.randn(elements)
    add = _best(lambda: x.add_(y), repeats=200)  # reads two buffers, writes one
    return Machine(2 * n**3 / gemm / 1e9, 12 * elements / add / 1e9)


MATMUL_EVENTS = ("aten::bmm", "aten::baddbmm", "aten::mm", "aten::addmm")
PHASES = ("forward, loss, epoch setup", "backward", "gradient clip", "Adam")


def step_profile(fitter, first_epoch: int, epochs: int) -> dict[str, float]:
    """Share of the profiled training epochs' op time (torch.profiler's self CPU time, which
    leaves out the interpreter between ops) per phase of a step, and in matmuls."""
    from torch.profiler import ProfilerActivity, profile, record_function

    import mmse_model.training.loop as loop_module

    def labelled(label, fn):
        def run(*args, **kwargs):
            with record_function(label):
                return fn(*args, **kwargs)

        return run

    clip, step = loop_module.clip_grad_norm_per_model, fitter.optimizer.step
    loop_module.clip_grad_norm_per_model = labelled("gradient clip", clip)
    fitter.optimizer.step = labelled("Adam", step)
    try:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for epoch in range(first_epoch, first_epoch + epochs):
                fitter.train_epoch(epoch)
    finally:
        loop_module.clip_grad_norm_per_model = clip
        del fitter.optimizer.step
    shares = dict.fromkeys([*PHASES, "matmuls"], 0.0)
    for event in prof.events():
        phase, parent = PHASES[0], event
        while parent is not None:
            if parent.name in PHASES[2:]:
                phase = parent.name
                break
            if parent.name.startswith("autograd::engine"):
                phase = "backward"
                break
            parent = parent.cpu_parent
        shares[phase] += event.self_cpu_time_total
        if event.name in MATMUL_EVENTS:
            shares["matmuls"] += event.self_cpu_time_total
    total = sum(shares[phase] for phase in PHASES)
    return {k: v / total for k, v in shares.items()}


def _best(fn, repeats: int) -> float:
    """Fastest of `repeats` timed calls (process CPU time, after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        started = time.process_time()
        fn()
        times.append(time.process_time() - started)
    return max(min(times), 1e-9)


def realistic_folds(n_signatures: int, n_subjects: int, n_folds: int, root: Path):
    sigs = signatures(n_signatures)
    config = Config().with_overrides([f"split.folds={n_folds}"])
    data_root = write_planted_root(
        root, {sig: 1.0 for sig in sigs}, tasks=(TASK,), n_subjects=n_subjects
    )
    group = load_group(data_root, sigs, TASK, config.score_range(TASK))
    split = make_split(
        group.subject_ids, group.y, n_folds, config.split.test_fraction, config.split.seed
    )
    return sigs, group, split


# --- the baseline: the loop at commit 8f6ca27 -------------------------------------------------

BASELINE = "8f6ca27"


def _elementwise_member_step(self: MemberAdam) -> None:
    """MemberAdam's per-member path at 8f6ca27: Adam in nine elementwise passes."""
    beta1, beta2 = self.betas
    bias1 = 1.0 - beta1**self.steps
    bias2_sqrt = math.sqrt(1.0 - beta2**self.steps)
    for param, exp_avg, exp_avg_sq in zip(self.params, self.exp_avg, self.exp_avg_sq):
        grad = param.grad
        lr = self.lr.view(-1, *([1] * (param.dim() - 1)))  # (M, 1, ...)
        if self.weight_decay:
            if self.decoupled:
                param.mul_(1.0 - lr * self.weight_decay)
            else:
                grad = grad.add(param, alpha=self.weight_decay)
        exp_avg.lerp_(grad, 1.0 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
        denom = (exp_avg_sq.sqrt() / bias2_sqrt).add_(self.eps)
        param.addcdiv_(exp_avg * lr, denom, value=-1.0 / bias1)


def _functional_fused(self: MemberAdam, targets, grads, lr: float, weight_decay=None) -> None:
    """MemberAdam's fused step at 8f6ca27: through torch.optim's functional wrapper, which
    groups the tensors by device and adds the one to the step counters itself."""
    from torch.optim.adam import adam
    from torch.optim.adamw import adamw

    weight_decay = self.weight_decay if weight_decay is None else weight_decay
    for count in self._step_counts:
        count.fill_(self.steps - 1)
    beta1, beta2 = self.betas
    (adamw if self.decoupled and weight_decay else adam)(
        targets,
        grads,
        self.exp_avg,
        self.exp_avg_sq,
        [],
        self._step_counts,
        fused=True,
        amsgrad=False,
        beta1=beta1,
        beta2=beta2,
        lr=lr,
        weight_decay=weight_decay,
        eps=self.eps,
        maximize=False,
    )


def _aligned_zeros(like: torch.Tensor, copies: int) -> list[torch.Tensor]:
    """Adam's state at 8f6ca27: zeros_like, so page-aligned like the weights."""
    return [torch.zeros_like(like) for _ in range(copies)]


_fold_masks = MemberMLPs.dropout_masks


def _repeated_dropout_masks(self: MemberMLPs, seed: int, n_steps: int, rows: int, n_folds: int):
    """The dropout masks at 8f6ca27: fold k's copied for every signature, (n_steps, M, rows, w)."""
    masks = _fold_masks(self, seed, n_steps, rows, n_folds)
    if masks is None:
        return None
    return [m.repeat(1, self.n_models // n_folds, 1, 1) for m in masks]


def _forward_8f6ca27(self: MemberMLPs, x, mask=None, dropout=None):
    """MemberMLPs.forward at 8f6ca27: every layer a batched matmul, masks of M members."""
    h = x
    layers = self.layers()
    last = len(layers) - 1
    for i, (weight, bias) in enumerate(layers):
        h = torch.baddbmm(bias.unsqueeze(1), h, weight)  # (M, B, w_out)
        if i == last:
            break
        if self.arch.use_batch_norm:
            h = self.norms[i](h, mask)
        h = torch.nn.functional.relu(h)
        if dropout is not None:
            h = h * dropout[i]
        elif self.training and self.arch.dropout > 0:
            h = torch.nn.functional.dropout(h, self.arch.dropout)
    return h.squeeze(-1)  # (M, B)


def _training_rows_8f6ca27(self: MemberTensors, index):
    """The batches' rows at 8f6ca27: indexing with (member, row) pairs."""
    members = torch.arange(self.n_members, device=index.device).view(-1, 1, 1)
    return self.X_train[members, index], self.y_train[members, index]


def _signature_summaries_8f6ca27(self: FoldFitter, val_loss, metrics):
    """FoldFitter.signature_summaries at 8f6ca27: numpy reductions per signature."""
    K = self.folds.n_folds
    out = []
    for s in range(len(self.signatures)):
        rows = slice(s * K, (s + 1) * K)
        summary = {}
        for name in RECORD_METRICS:
            values = np.asarray(metrics[name][rows], dtype=np.float64)
            summary[name] = float(values.mean())
            summary[f"{name}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        summary["loss"] = float(val_loss[rows].mean())
        out.append(summary)
    return out


def baseline_fitter(config: Config, folds: MemberTensors, sigs) -> FoldFitter:
    """A FoldFitter that runs the loop as it was at 8f6ca27 (same draws, same arithmetic):
    Adam's per-member path, its fused path's call, its state's allocation, the dropout
    masks, the forward pass, the batches' gather and the per-signature summaries as they
    were then, bound to this fitter's own objects so that a fitter of today's loop can run
    beside it. Checked: a 30-epoch typical fit ends bit for bit where the 8f6ca27 tree's
    ends."""
    today = optim_module.staggered_zeros
    optim_module.staggered_zeros = _aligned_zeros  # the Adam state, allocated as then
    try:
        fitter = FoldFitter(config, copy.copy(folds), tuple(sigs))
    finally:
        optim_module.staggered_zeros = today
    for owner, name, then in [
        (fitter.optimizer, "_member_step", _elementwise_member_step),
        (fitter.optimizer, "_fused", _functional_fused),
        (fitter.module, "dropout_masks", _repeated_dropout_masks),
        (fitter.module, "forward", _forward_8f6ca27),
        (fitter.folds, "training_rows", _training_rows_8f6ca27),
        (fitter, "signature_summaries", _signature_summaries_8f6ca27),
    ]:
        setattr(owner, name, MethodType(then, owner))
    return fitter


class TakeTurns(Callback):
    """Lets its fit run one epoch at a time, in turn with others (one thread each), and
    adds up the CPU time of its thread in its epochs."""

    def __init__(self, turn: threading.Event, next_turn: threading.Event):
        super().__init__()
        self.turn, self.next_turn = turn, next_turn
        self.cpu_s, self._started = 0.0, 0.0

    def on_epoch_begin(self, ctx) -> None:
        self.turn.wait()
        self.turn.clear()
        self._started = time.thread_time()

    def on_epoch_end(self, ctx) -> None:
        self.cpu_s += time.thread_time() - self._started
        self.next_turn.set()


def fit_in_turns(fitters: list[FoldFitter], epochs: int) -> list[float]:
    """Fit every fitter, epoch by epoch in turn, and return the CPU-s of each one's epochs.

    Two fits of 10 s one after the other on a shared machine meet different loads; epochs
    of ~0.1 s taken in turn meet the same, so their ratio holds even when their absolute
    times do not."""
    turns = [threading.Event() for _ in fitters]
    takers = [TakeTurns(turns[i], turns[(i + 1) % len(fitters)]) for i in range(len(fitters))]
    failures: list[BaseException] = []

    def fit(fitter: FoldFitter, taker: TakeTurns) -> None:
        try:
            fitter.fit(CallbackManager([taker]), epochs, lambda directory, record: None)
        except BaseException as exc:  # noqa: BLE001 -- re-raised in the caller's thread
            failures.append(exc)
            for turn in turns:  # let the others finish rather than wait forever
                turn.set()
        finally:
            taker.next_turn.set()

    threads = [
        threading.Thread(target=fit, args=pair, daemon=True) for pair in zip(fitters, takers)
    ]
    for thread in threads:
        thread.start()
    turns[0].set()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return [taker.cpu_s for taker in takers]


@dataclass
class Comparison:
    members: int
    epochs: int
    baseline_s: list[float]  # CPU-s of each baseline fit's epochs
    current_s: list[float]  # and of today's fit run in turns with it
    weights_max_diff: float  # best weights, the largest absolute difference
    weights_scale: float  # the largest absolute best weight
    val_loss_max_rel: float  # best validation loss per signature, the largest relative gap
    same_best_epoch: int  # signatures whose best epoch is the same in both fits
    same_final_lr: int
    signatures: int

    @property
    def ratios(self) -> list[float]:
        return [old / new for old, new in zip(self.baseline_s, self.current_s)]

    @property
    def speedup(self) -> float:
        """The median of the repeats' ratios (each from two fits run in turns)."""
        return statistics.median(self.ratios)

    def rate(self, seconds: list[float]) -> float:
        return self.members * self.epochs / min(seconds)


def compare_with_baseline(
    sigs, group, split, overrides: list[str], epochs: int, repeats: int
) -> Comparison:
    """The baseline loop and today's, fitted in turns epoch by epoch in this process, and
    how their ends differ."""
    config = loop_config(overrides, split, epochs)
    folds = build_member_tensors(group, split, config.score_range(TASK))
    baseline_s, current_s = [], []
    for _ in range(repeats):
        old = baseline_fitter(config, folds, sigs)
        new = FoldFitter(config, copy.copy(folds), tuple(sigs))
        old_s, new_s = fit_in_turns([old, new], epochs)
        baseline_s.append(old_s)
        current_s.append(new_s)
    old_flat, new_flat = old.best_state["flat"], new.best_state["flat"]
    old_loss, new_loss = old.tracker.best, new.tracker.best
    return Comparison(
        folds.n_members,
        epochs,
        baseline_s,
        current_s,
        float((old_flat - new_flat).abs().max()),
        float(old_flat.abs().max()),
        float((abs(new_loss - old_loss) / old_loss).max()),
        int((old.tracker.best_epoch == new.tracker.best_epoch).sum()),
        int((old.schedule.lr == new.schedule.lr).sum()),
        len(sigs),
    )


@dataclass
class LoopFigures:
    members: int
    epochs: int
    steps_per_epoch: int
    cpu_s: float  # the whole fit
    train_s: float  # train_epoch, all epochs
    validate_s: float
    per_member_adam_epochs: int  # epochs run on MemberAdam's per-member path (rates differ)
    step_flops: float
    val_flops: float
    step_ops: int
    step_bytes: int
    matmul_replay_s: float  # one step's matmuls, replayed
    param_bytes: int  # the members' stacked weights (Adam keeps two more of these)
    profile: dict[str, float]  # share of a step's op time by phase, and in matmuls
    profiled_per_member_adam: bool

    @property
    def step_ms(self) -> float:
        return 1e3 * self.train_s / (self.epochs * self.steps_per_epoch)


def loop_config(overrides: list[str], split, epochs: int) -> Config:
    """The realistic trial's config at one architecture, early stopping off (every
    architecture runs all its epochs), the plateau schedule on."""
    return Config().with_overrides(
        [
            *overrides,
            f"split.folds={split.folds}",
            f"training.epochs={epochs}",
            "early_stopping.enable=false",
        ]
    )


def run_loop(sigs, group, split, overrides: list[str], epochs: int) -> LoopFigures:
    config = loop_config(overrides, split, epochs)
    folds = build_member_tensors(group, split, config.score_range(TASK))
    fitter = FoldFitter(config, folds, tuple(sigs))
    min_rows = 2 if config.arch.use_batch_norm else 1
    steps = epoch_batches(
        folds.train_counts.tolist(), config.training.batch_size, min_rows, fitter.fold_seeds, 1
    )[0].shape[1]

    # One epoch under the counters (it also warms the kernels up), then a fresh fitter.
    with FlopCounterMode(display=False) as flops, OpRecorder() as recorder:
        fitter.train_epoch(1)
    with FlopCounterMode(display=False) as val_flops:
        fitter.validate()
    # The output layer is a product and sum per row, not a matmul, since 17c1895: count it
    # as the matmuls it replaces (forward, and backward for its input and its weights).
    index = epoch_batches(
        folds.train_counts.tolist(), config.training.batch_size, min_rows, fitter.fold_seeds, 1
    )[0]
    out_in = fitter.module.layer_shapes[-1][0]
    out_flops = 2 * folds.n_members * out_in  # per row
    step_flops = flops.get_total_flops() / steps + 3 * out_flops * index.shape[2]
    val_step_flops = val_flops.get_total_flops() + out_flops * folds.X_val.shape[1]
    step_matmuls = recorder.matmuls[: len(recorder.matmuls) // steps]
    replay = _best(
        lambda: [func(*args, **kwargs) for func, args, kwargs in step_matmuls], repeats=50
    )
    param_bytes = fitter.module.flat.numel() * fitter.module.flat.element_size()

    fitter = FoldFitter(config, folds, tuple(sigs))
    timed = {"train": 0.0, "validate": 0.0, "per_member": 0}

    def timing(name, fn):
        def wrapped(*args):
            if name == "train" and fitter.optimizer.shared_lr is None:
                timed["per_member"] += 1
            started = time.process_time()
            out = fn(*args)
            timed[name] += time.process_time() - started
            return out

        return wrapped

    fitter.train_epoch = timing("train", fitter.train_epoch)
    fitter.validate = timing("validate", fitter.validate)
    started = time.process_time()
    fitter.fit(CallbackManager([History()]), epochs, lambda directory, record: None)
    cpu = time.process_time() - started
    # Profiled after the fit, in the state most of its epochs ran in (per-member Adam, once the
    # plateau schedule gave the signatures different rates).
    del fitter.train_epoch, fitter.validate
    per_member_adam = fitter.optimizer.shared_lr is None
    profile = step_profile(fitter, epochs + 1, 3)
    return LoopFigures(
        folds.n_members,
        epochs,
        steps,
        cpu,
        timed["train"],
        timed["validate"],
        timed["per_member"],
        step_flops,
        val_step_flops,
        recorder.ops // steps,
        recorder.bytes // steps,
        replay,
        param_bytes,
        profile,
        per_member_adam,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--signatures", type=int, default=36)
    parser.add_argument("--subjects", type=int, default=300)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--archs", default="typical,largest,linear", help=f"comma-separated, of {sorted(ARCHS)}"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help=f"pairs of fits of the {BASELINE} loop and today's, in turns (0: no comparison)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)  # a trial's one CPU

    with tempfile.TemporaryDirectory() as tmp:
        sigs, group, split = realistic_folds(args.signatures, args.subjects, args.folds, Path(tmp))
        one_sig = (sigs[:1], *realistic_folds(1, args.subjects, args.folds, Path(tmp) / "one")[1:])
    print(
        f"realistic trial: {len(sigs)} signatures x "
        f"{args.folds} folds = {len(sigs) * args.folds} members, "
        f"{args.subjects} subjects, {args.epochs} epochs, 1 thread, CPU time of this process"
    )
    lines, comparisons = [], {}
    for name in args.archs.split(","):
        overrides = ARCHS[name]
        full = run_loop(sigs, group, split, overrides, args.epochs)
        small = run_loop(*one_sig, overrides, max(10, args.epochs // 5))
        machine = measure_machine()
        fold_epochs = full.members * full.epochs
        total_flops = full.epochs * (full.steps_per_epoch * full.step_flops + full.val_flops)
        gflops = total_flops / full.cpu_s / 1e9
        step_s = full.step_ms / 1e3
        floors = {
            "FLOPs at the big-GEMM rate": full.step_flops / (machine.gemm_gflops * 1e9),
            "its own matmuls, replayed": full.matmul_replay_s,
            "its bytes at in-cache bandwidth": full.step_bytes / (machine.cache_gbps * 1e9),
            "the same step, 1 signature": small.step_ms / 1e3,
        }
        print(f"\n[{name}] {' '.join(overrides)}")
        print(
            f"  loop: {full.cpu_s:.2f} CPU-s for {fold_epochs} fold-model epochs = "
            f"{fold_epochs / full.cpu_s:,.0f} fold-model epochs/s "
            f"(training steps {full.train_s:.2f} s, "
            f"validation {full.validate_s:.2f} s, "
            f"bookkeeping {full.cpu_s - full.train_s - full.validate_s:.2f} s; "
            f"{full.per_member_adam_epochs} of {full.epochs} epochs on per-member Adam)"
        )
        print(
            f"  step: {full.steps_per_epoch} per epoch, {full.step_ms:.3f} ms each, "
            f"{full.step_flops / 1e6:.1f} MFLOP (matmuls, forward + backward), "
            f"{full.step_ops} aten ops "
            f"reading+writing {full.step_bytes / 1e6:.1f} MB "
            f"(weights {full.param_bytes / 1e6:.1f} MB)"
        )
        print(
            f"  loop rate: {gflops:.2f} GFLOP/s against "
            f"{machine.gemm_gflops:.1f} GFLOP/s for a 1024^3 GEMM "
            f"({gflops / machine.gemm_gflops:.1%}); "
            f"in-cache bandwidth {machine.cache_gbps:.1f} GB/s"
        )
        for label, seconds in floors.items():
            print(f"  floor: {label:<34}{seconds * 1e3:9.3f} ms  (step = {step_s / seconds:5.1f}x)")
        adam = "per-member" if full.profiled_per_member_adam else "fused"
        print(
            f"  step op time ({adam} Adam): "
            + ", ".join(f"{k} {v:.0%}" for k, v in full.profile.items())
        )
        lines.append((name, full, fold_epochs / full.cpu_s, gflops, machine, step_s, floors))
        if args.repeats > 0:
            comparison = compare_with_baseline(
                sigs, group, split, overrides, args.epochs, args.repeats
            )
            comparisons[name] = comparison
            print_comparison(comparison)
    print()
    for name, full, rate, gflops, machine, step_s, floors in lines:
        print(
            f"{name:<9}{full.members:>4} members "
            f"{rate:>8,.0f} fold-model epochs/s {gflops:>6.2f} GFLOP/s "
            f"({gflops / machine.gemm_gflops:5.1%} of GEMM peak) {full.step_ms:>7.3f} ms/step "
            f"= {step_s / floors['FLOPs at the big-GEMM rate']:.1f}x FLOP floor, "
            f"{full.profile['matmuls']:.0%} in matmuls"
        )
    name, full, rate, gflops, machine, step_s, floors = lines[0]
    print(
        f"loop bound ({name}): {step_s * 1e3:.3f} ms per step = "
        f"{step_s / floors['FLOPs at the big-GEMM rate']:.1f}x the FLOP floor, "
        f"{step_s / floors['its own matmuls, replayed']:.1f}x its matmuls alone, "
        f"{step_s / floors['its bytes at in-cache bandwidth']:.1f}x the memory floor, "
        f"{step_s / floors['the same step, 1 signature']:.1f}x a 1-signature step"
    )
    if name in comparisons:
        comparison = comparisons[name]
        print(
            f"speed-up over {BASELINE} ({name}): {comparison.speedup:.2f}x the fold-model "
            f"epochs/s (median of {len(comparison.ratios)} pairs of fits run in turns; "
            f"target >= 1.5x)"
        )


def print_comparison(c: Comparison) -> None:
    print(
        f"  against {BASELINE}: {c.speedup:.2f}x the fold-model epochs/s "
        f"(median of {len(c.ratios)} pairs of fits run in turns, epoch by epoch: "
        f"{', '.join(f'{r:.2f}x' for r in c.ratios)}; CPU-s of the epochs {BASELINE} "
        f"{', '.join(f'{t:.2f}' for t in c.baseline_s)}, today "
        f"{', '.join(f'{t:.2f}' for t in c.current_s)}; best "
        f"{c.rate(c.baseline_s):,.0f} -> {c.rate(c.current_s):,.0f} fold-model epochs/s)"
    )
    print(
        f"  same results?  best weights differ by at most {c.weights_max_diff:.2e} "
        f"(largest weight {c.weights_scale:.2f}); best validation loss by at most "
        f"{c.val_loss_max_rel:.2e} relative; same best epoch for {c.same_best_epoch} and "
        f"same final rate for {c.same_final_lr} of {c.signatures} signatures"
    )


if __name__ == "__main__":
    main()
