"""What the grid of configs/sweep.yaml costs as subjects, signatures and nodes grow.

A model of the grid's wall time built from per-trial costs measured here, on one thread,
as a one-CPU trial or outer fold runs (CPU seconds, `time.process_time`, torch and BLAS
on one thread), on SYNTHETIC planted-signal data (one task, `tests/fixtures/toy_data.py`,
every signature at full signal as `sweep_overhead.py --write-grid-data` writes the grid's):

- `epochs`: one packed run's epoch (`FoldFitter.train_epoch` + `validate` + the
  per-signature summaries), the typical architecture (benchmarks/loop_bound.py's
  ARCHS["typical"]), as a sweep trial trains it (5 inner folds over every subject,
  `signatures_per_trial: 0`: S x 5 members), at every size; with the run's set-up (load,
  split, member tensors, fitter), the member tensors' bytes, the process's peak RSS and
  the host's share of an epoch (shuffles and dropout masks, what stays on the CPU when the
  loop runs on a GPU);
- `mix`: at the smallest subjects, the epoch of every distinct architecture the grid trains
  (the sweep's 16 samples; the nested search's 4 samples in each of the 10 outer folds) as
  a ratio to the typical one measured next to it in time, and the aten ops and bytes of a
  step (the GPU projection);
- `baselines`: `baselines_over_signatures` on one outer fold at every size;
- `nested`: `run_repeat` on Q1's outer folds: all 10 searches (2 repeats x 5 folds; every
  task has the same samples) at the first `--nested-sizes`, the fold whose samples cost the
  median at the others, with the epochs each packed run ran (early stopping, no ASHA).

Every measurement runs in a subprocess of its own (its peak RSS is its own) and records
the load average before and after.

The model. A trial is its start-up plus its set-up's growth over 300 x 36 plus its epochs
(ASHA's, below) of the 16 samples' mean epoch, times a real run's overhead over the bare
epoch (train_run against FoldFitter alone, from the measured folds). An outer fold is the
same fold measured at the first nested size, each run's loop grown by the typical epoch's
growth and the measured change in epochs, plus the baselines measured at that size. Nodes
have `--slots-per-node` one-CPU slots (2, as this machine); the trials phase is the most of
(every trial's work over min(slots, trials), the longest trial, the driver's CPU for every
trial), the nested phase the 50 folds list-scheduled on min(slots, 50), each fold's runs one
after another; then the driver's serial phases. What it takes from docs/sweep_overhead.md
rather than measuring (constants below, each cited): ASHA's epochs (the grid at d0d2f88),
the Tune driver's CPU per trial, the driver's serial phases, and the grid measured phase by
phase at 66da264, on which the per-trial start-up, the per-fold Ray overhead and how much
two jobs on one node slow each other are calibrated. GPU rows are a PROJECTION from assumed
costs (`--gpu-*`), not a measurement.

    python benchmarks/grid_cost.py [--save cost.json]       # measure (~40 min), print the table
    python benchmarks/grid_cost.py --load cost.json [--nested-epochs-scale 0.33] [--nodes 1,8]

`--load` prints the table again from saved measurements under other model inputs (the
nested runs' epochs once successive halving lands, slots per node, the GPU assumptions).
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout: tests.fixtures
sys.path.insert(0, str(REPO / "benchmarks"))

TASK = "Q1"
TASKS = 5
INNER_FOLDS = 5
OUTER_FOLDS = 50  # 5 tasks x 2 repeats x 5 outer folds (configs/sweep.yaml)
FOLD_SHARE = 0.8  # an outer fold's runs train on 4/5 of the subjects: 0.8 of a trial's rows

# --- inputs taken from docs/sweep_overhead.md (not measured by this script) ------------------
# "Phase by phase: benchmarks/grid_time.py", 2026-12-07 at 66da264, this machine, 300 subjects
# x 36 signatures, 2 slots: the trials phase, the nested phase, and the CPU seconds the 50
# outer folds spent in the sweep (training 1,127.5 + baselines 399.4). Against the same folds
# measured alone here (`nested` at 300 x 36, all 10 searches), that gives how much two jobs on
# the 2 cores slow each other (the doc: "two folds at once on the 2 cores run at about 60 %
# of one alone each", from one fold alone).
GRID_TRIALS_S = 380.3
GRID_NESTED_S = 927.5
GRID_FOLDS_CPU_S = (1127.5 + 399.4) / 50
# Its serial driver phases: scoring 0.3 + intervals 2.2 + results 0.2 + bundle 0.4 +
# dashboard 1.5 s; and process start to exit (1,333.6 s) less the driver phases (1,312.3 s):
# Ray's start and shutdown, imports.
DRIVER_AFTER_S = 4.6
PROCESS_S = 21.3
# "Again, as committed, on a quiet machine", d0d2f88: 80 trials trained 1,320 epochs, 45 of
# them stopped at ASHA's grace period (10). The doc's loaded run at 712e346 trained 1,715
# (45 at 10, 33 between 22 and 59, one ran 100): ASHA lets a trial run to max_t.
ASHA_EPOCHS = 1320
ASHA_AT_GRACE = 45
ASHA_GRACE = 10
ASHA_LONGEST = 100
MAX_EPOCHS = 100  # configs/sweep.yaml's training.epochs: a nested run's limit too
# "Packing signatures into one trial": the sweep driver (the Tune loop) spent 1.1 CPU-s per
# trial; it runs on the head, one process, whatever the number of nodes.
DRIVER_PER_TRIAL_S = 1.1

# The GPU projection's assumptions (nothing here is measured on a GPU).
GPU_OP_US = 10.0  # an eager aten op on a CUDA device: dispatch + launch, launch-bound
GPU_BYTES_PER_S = 1.5e12  # what a step's tensors stream at, well below an H100's HBM peak
GPU_INIT_S = 5.0  # CUDA context and the first kernels, per trial or fold process

UNLIMITED = 10**6  # nodes: the floor no number of nodes goes below
SLOT_GIB = 4.0  # a 1-CPU slot's typical memory (general-purpose cloud nodes: 4 GiB per vCPU)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def signature_names(n: int) -> list[str]:
    """n distinct canonical signatures: 4 m x 4 tau x 9 eps covers 144."""
    names = [
        f"m{m}_tau{tau}_eps{eps}_lmin2"
        for m in (2, 3, 4, 5)
        for tau in (1, 2, 3, 4)
        for eps in ("0.04", "0.045", "0.05", "0.055", "0.06", "0.065", "0.07", "0.075", "0.08")
    ]
    assert n <= len(names), n
    return names[:n]


def write_root(folder: Path, subjects: int, signatures: int) -> Path:
    """The grid's SYNTHETIC planted data (every signature at full signal, as
    `sweep_overhead.py --write-grid-data`), one task."""
    from tests.fixtures.toy_data import write_planted_root

    if (folder / "dataset.json").exists():
        return folder
    sigs = signature_names(signatures)
    return write_planted_root(folder, {s: 1.0 for s in sigs}, tasks=(TASK,), n_subjects=subjects)


# --- measurements, each in a process of its own -----------------------------------------------


def one_thread() -> None:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(limits=1)


def sweep_config(root: Path):
    from mmse_model.sweeps.config import load_sweep_config

    return load_sweep_config(REPO / "configs" / "sweep.yaml", data_root=str(root))


def arch_key(config) -> str:
    """What an epoch's cost depends on (the learning rate, decay and the dropout rate do not)."""
    a = config.arch
    widths = [a.h1, a.h2][: a.hidden_layers]
    return (
        f"{'/'.join(map(str, widths)) or 'linear'}"
        f"{' bn' if a.use_batch_norm else ''}{' dropout' if a.dropout > 0 and widths else ''}"
        f" b{config.training.batch_size}"
    )


def typical_config(base):
    from loop_bound import ARCHS

    return base.with_overrides(ARCHS["typical"])


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def fitter_for(root: Path, signatures: int, config):
    """A packed run's fitter as train_run builds it, and the seconds it took to build."""
    from mmse_model.data.dataset import build_member_tensors
    from mmse_model.training.loop import FoldFitter, RunSpec, load_run_data

    sigs = tuple(signature_names(signatures))
    started = time.process_time()
    group, split = load_run_data(RunSpec(str(root), sigs, TASK, config))
    folds = build_member_tensors(group, split, config.score_range(TASK))
    fitter = FoldFitter(config, folds, sigs)
    return fitter, time.process_time() - started


def epoch_seconds(fitter, timed: int, first: int = 1) -> float:
    """CPU seconds of one epoch, the mean of `timed` after one warm-up epoch."""
    fitter.train_epoch(first)
    fitter.validate()
    started = time.process_time()
    for epoch in range(first + 1, first + 1 + timed):
        fitter.train_epoch(epoch)
        fitter.signature_summaries(*fitter.validate())
    return (time.process_time() - started) / timed


def host_seconds(fitter, repeats: int = 3) -> float:
    """The CPU part of an epoch that stays on the host on a GPU: shuffles and dropout masks."""
    from mmse_model.training.loop import _mix, epoch_batches

    cfg, folds = fitter.config, fitter.folds
    counts = folds.train_counts.tolist()
    started = time.process_time()
    for epoch in range(repeats):
        index, _ = epoch_batches(counts, cfg.training.batch_size, 1, fitter.fold_seeds, epoch)
        fitter.module.dropout_masks(
            _mix(cfg.seed, "dropout", epoch), index.shape[1], index.shape[2], folds.n_folds
        )
    return (time.process_time() - started) / repeats


def cell_epochs(root: Path, signatures: int, timed: int) -> dict:
    config = typical_config(sweep_config(root).base_config())
    fitter, setup = fitter_for(root, signatures, config)
    f = fitter.folds
    tensors = (f.X_train, f.y_train, f.X_val, f.y_val, f.val_mask)
    return {
        "epoch_s": epoch_seconds(fitter, timed),
        "epochs_timed": timed,
        "setup_s": setup,
        "host_s": host_seconds(fitter),
        "member_bytes": sum(t.numel() * t.element_size() for t in tensors),
        "members": f.n_members,
        "train_rows": int(f.train_counts.max()),
        "peak_rss": peak_rss(),
    }


def step_ops(fitter, epoch: int) -> tuple[float, float, float]:
    """Non-view aten ops and the bytes they read and write per training step, and the ops of
    one validation pass (counted on the CPU; each op is a kernel launch on a GPU)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class Count(TorchDispatchMode):
        ops = bytes = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if not func.is_view:
                Count.ops += 1
                Count.bytes += sum(
                    t.numel() * t.element_size()
                    for t in tree_flatten((args, kwargs, out))[0]
                    if isinstance(t, torch.Tensor)
                )
            return out

    from mmse_model.training.loop import epoch_batches

    cfg, folds = fitter.config, fitter.folds
    min_rows = 2 if cfg.arch.use_batch_norm else 1
    index, _ = epoch_batches(
        folds.train_counts.tolist(), cfg.training.batch_size, min_rows, fitter.fold_seeds, epoch
    )
    with Count():
        fitter.train_epoch(epoch)
    steps = index.shape[1]
    train_ops, train_bytes = Count.ops / steps, Count.bytes / steps
    Count.ops = 0
    with Count():
        fitter.validate()
    return train_ops, train_bytes, float(Count.ops)


def cell_mix(root: Path, signatures: int, timed: int) -> dict:
    """Every distinct architecture of the grid's samples: its epoch against the typical one."""
    from mmse_model.sweeps.config import apply_sample
    from mmse_model.sweeps.nested import NestedSearch
    from mmse_model.sweeps.plan import hyperparameter_samples

    sweep = sweep_config(root)
    base = sweep.base_config()
    trial_samples = hyperparameter_samples(sweep.search_space, sweep.samples, sweep.search_seed)
    repeats = NestedSearch.of_sweep(sweep).repeats_of(str(root), TASK, signature_names(signatures))
    typical = typical_config(base)
    configs = {arch_key(typical): typical}
    warm, _ = fitter_for(root, signatures, typical)  # the process's first fit: not timed
    epoch_seconds(warm, 1)
    trial_keys = []
    for sample in trial_samples:
        config = apply_sample(base, sample)
        trial_keys.append(arch_key(config))
        configs.setdefault(trial_keys[-1], config)
    fold_keys = []
    for repeat in repeats:
        fold_keys.append([arch_key(run.config) for run in repeat.runs()])
        for run in repeat.runs():
            configs.setdefault(arch_key(run.config), run.config)
    # The typical architecture again after every few others: each ratio is taken against the
    # typical epochs measured next to it in time (the load on a shared machine drifts).
    keys, typical_s, since = {}, [], []
    for key, config in configs.items():
        fitter, _ = fitter_for(root, signatures, config)
        ops, nbytes, val_ops = step_ops(fitter, 50)
        keys[key] = {
            "epoch_s": epoch_seconds(fitter, timed),
            "ops_step": ops,
            "bytes_step": nbytes,
            "ops_validate": val_ops,
            "batch": config.training.batch_size,
        }
        since.append(key)
        if len(since) == 6 or key == list(configs)[-1]:
            typical_s.append(epoch_seconds(fitter_for(root, signatures, typical)[0], timed))
            for k in since:
                keys[k]["typical_s"] = statistics.mean(typical_s[-2:])
            since = []
        print(f"  {signatures} signatures, {key}: {keys[key]['epoch_s']:.3f} s", file=sys.stderr)
    return {
        "keys": keys,
        "typical": arch_key(typical),
        "trial_keys": trial_keys,
        "fold_keys": fold_keys,
        "epochs_timed": timed,
    }


def cell_nested(root: Path, signatures: int, fold: int) -> dict:
    """`run_repeat` on one outer fold of Q1 (`fold`: repeat * 5 + outer fold), as a sweep's
    Ray task runs it, with its runs' epochs."""
    from mmse_model.sweeps import nested

    sweep = sweep_config(root)
    repeat = nested.NestedSearch.of_sweep(sweep).repeats_of(
        str(root), TASK, signature_names(signatures)
    )[fold]
    runs = []
    train_run = nested.train_run

    def recorded(run, reporter, **kwargs):
        started = time.process_time()
        outcome = train_run(run, reporter, **kwargs)
        runs.append(
            {
                "key": arch_key(run.config),
                "epochs": outcome.fit.final_epoch,
                "cpu_s": time.process_time() - started,
            }
        )
        return outcome

    nested.train_run = recorded
    started = time.process_time()
    result = nested.run_repeat(repeat)
    return {
        "cpu_s": time.process_time() - started,
        "training_s": result.seconds["fold training"],
        "baselines_s": result.seconds["fold baselines"],
        "runs": runs,
        "peak_rss": peak_rss(),
    }


def cell_baselines(root: Path, signatures: int) -> dict:
    """`baselines_over_signatures` on the outer fold run_repeat's first fold scores."""
    from mmse_model.evaluation.baselines import baselines_over_signatures
    from mmse_model.sweeps.nested import NestedSearch
    from mmse_model.training.loop import load_run_data

    sweep = sweep_config(root)
    repeat = NestedSearch.of_sweep(sweep).repeats_of(str(root), TASK, signature_names(signatures))[
        0
    ]
    group, split = load_run_data(repeat.runs()[0])
    datas = {s: group.task_data(s) for s in repeat.signatures}
    started = time.process_time()
    baselines_over_signatures(datas, split, repeat.config.score_range(TASK), repeat.config.seed)
    return {"cpu_s": time.process_time() - started, "peak_rss": peak_rss()}


CELLS = {"epochs": cell_epochs, "mix": cell_mix, "nested": cell_nested, "baselines": cell_baselines}


def run_cell(kind: str, root: Path, signatures: int, timed: int = 0) -> dict:
    """One measurement in a fresh process; returns its figures with the load around it."""
    before = load_average()
    started = time.perf_counter()
    command = [sys.executable, __file__, "--cell", kind, str(root), str(signatures), str(timed)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    sys.stderr.write(done.stderr)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures.update(load_before=before, load_after=load_average())
    figures["wall_s"] = time.perf_counter() - started
    return figures


# --- the plan of measurements ----------------------------------------------------------------


# Epochs timed per (subjects, signatures) after one warm-up; a 30,000 x 144 epoch is ~1 min.
def epochs_timed(subjects: int, signatures: int) -> int:
    work = subjects * signatures
    return 10 if work <= 12_000 else 3 if work <= 120_000 else 1


def measure(args) -> dict:
    subjects = sorted(int(v) for v in args.subjects.split(","))
    signatures = sorted(int(v) for v in args.signatures.split(","))
    nested_sizes = [tuple(map(int, s.split("x"))) for s in args.nested_sizes.split(",") if s]
    baseline_sizes = (
        [(n, s) for n in subjects for s in signatures]
        if args.baseline_sizes == "all"
        else [tuple(map(int, s.split("x"))) for s in args.baseline_sizes.split(",") if s]
    )
    out = {
        "started_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_commit(),
        "load_start": load_average(),
        "epochs": {},
        "mix": {},
        "nested": {},
        "baselines": {},
    }
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="grid-cost-"))
    roots = {n: write_root(scratch / f"n{n}", n, max(signatures)) for n in subjects}

    def note(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')} load {load_average()}] {text}", file=sys.stderr)

    for n in subjects:
        for s in sorted({*signatures, args.what_if_spt}):
            note(f"epochs {n} x {s}")
            out["epochs"][f"{n}x{s}"] = run_cell("epochs", roots[n], s, epochs_timed(n, s))
    for s in signatures:
        note(f"mix {subjects[0]} x {s}")
        out["mix"][str(s)] = run_cell("mix", roots[subjects[0]], s, 10 if s <= 36 else 5)
    for n, s in baseline_sizes:
        note(f"baselines {n} x {s}")
        out["baselines"][f"{n}x{s}"] = run_cell("baselines", roots[n], s)
    # run_repeat: all 10 outer folds' searches (their samples differ; every task has the same
    # ones) at the first size, the fold whose samples cost the median at the others.
    inp = Inputs(out, args)
    median = median_fold(inp)
    for i, (n, s) in enumerate(nested_sizes):
        out["nested"][f"{n}x{s}"] = {}
        for fold in range(len(inp.mix(s)["fold_keys"])) if i == 0 else [median]:
            note(f"nested fold {fold}, {n} x {s}")
            out["nested"][f"{n}x{s}"][str(fold)] = run_cell("nested", roots[n], s, fold)
    out["load_end"] = load_average()
    out["finished_utc"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return out


def git_commit() -> str:
    def git(*argv: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(REPO), *argv], check=False, capture_output=True, text=True
        )
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "--short", "HEAD") + (" (with uncommitted changes)" if dirty else "")


# --- the model --------------------------------------------------------------------------------


@dataclass
class Inputs:
    """The model's inputs: measured (`m`) and taken (`args`)."""

    m: dict
    args: argparse.Namespace

    def nearest(self, table: dict, n: int, s: int) -> tuple[dict, str]:
        """The measured cell, or the nearest one in signatures at the same subjects."""
        key = f"{n}x{s}"
        if key in table:
            return table[key], key
        same_n = [k for k in table if int(k.split("x")[0]) == n]
        if not same_n:
            raise SystemExit(f"no measurement at {n} subjects in {sorted(table)}")
        best = min(same_n, key=lambda k: abs(int(k.split("x")[1]) - s))
        return table[best], best

    def epoch(self, n: int, s: int) -> dict:
        return self.nearest(self.m["epochs"], n, s)[0]

    def mix(self, s: int) -> dict:
        near = min(self.m["mix"], key=lambda k: abs(int(k) - s))
        return self.m["mix"][near]

    def ratio(self, s: int, key: str) -> float:
        mix = self.mix(s)
        return mix["keys"][key]["epoch_s"] / mix["keys"][key]["typical_s"]

    def trial_mix(self, s: int) -> float:
        """The sweep's 16 samples' mean epoch against the typical architecture's."""
        return statistics.mean(self.ratio(s, k) for k in self.mix(s)["trial_keys"])

    def baselines(self, n: int, s: int) -> tuple[float, str]:
        """CPU-s of one fold's baselines: measured, or linear in signatures from the two
        measured at these subjects (the screens are per signature, the grid once)."""
        table = self.m["baselines"]
        if f"{n}x{s}" in table:
            return table[f"{n}x{s}"]["cpu_s"], "measured"
        at_n = sorted(
            (int(k.split("x")[1]), v["cpu_s"]) for k, v in table.items() if k.startswith(f"{n}x")
        )
        if len(at_n) >= 2:
            (s0, c0), (s1, c1) = at_n[0], at_n[-1]
            return c0 + (c1 - c0) * (s - s0) / (s1 - s0), "linear in signatures"
        # Linear in subjects from the largest measured size of these signatures.
        same_s = sorted(
            (int(k.split("x")[0]), v["cpu_s"]) for k, v in table.items() if k.endswith(f"x{s}")
        )
        n0, c0 = same_s[-1]
        return c0 * n / n0, "linear in subjects"

    def base_nested(self) -> str:
        """The size at which every outer fold's search was measured."""
        return max(self.m["nested"], key=lambda k: len(self.m["nested"][k]))

    def epochs_factor(self, n: int, s: int) -> tuple[float, str]:
        """How much longer (or shorter) a nested run runs at (n, s) than at the base size:
        the measured fold's runs' epochs there over the same fold's at the base size; for a
        size not measured, the factor of its signatures at the base subjects times that of
        the largest measured subjects up to n at the base signatures."""
        table, base = self.m["nested"], self.base_nested()
        n0, s0 = map(int, base.split("x"))

        def factor(size: str) -> float:
            ((fold, cell),) = table[size].items()
            there = sum(r["epochs"] for r in cell["runs"])
            here = sum(r["epochs"] for r in table[base][fold]["runs"])
            return there / here

        if f"{n}x{s}" in table and f"{n}x{s}" != base:
            return factor(f"{n}x{s}"), f"{n}x{s}"
        f, used = 1.0, []
        if s != s0 and f"{n0}x{s}" in table:
            f *= factor(f"{n0}x{s}")
            used.append(f"{n0}x{s}")
        below = [int(k.split("x")[0]) for k in table if k.endswith(f"x{s0}")]
        n1 = max(v for v in below if v <= n)
        if n1 != n0:
            f *= factor(f"{n1}x{s0}")
            used.append(f"{n1}x{s0}")
        return f, " x ".join(used) or base

    def nested_runs(self, n: int, s: int, fold: int, scale: float = 1.0) -> list[tuple[str, float]]:
        """The fold's runs at (n, s): (architecture, epochs)."""
        a = self.args
        runs = self.m["nested"][self.base_nested()][str(fold)]["runs"]
        factor = self.epochs_factor(n, s)[0]
        out = []
        for run in runs:
            epochs = a.nested_epochs or min(MAX_EPOCHS, run["epochs"] * factor)
            out.append((run["key"], epochs * a.nested_epochs_scale * scale))
        return out

    def fold_parts(
        self,
        n: int,
        s: int,
        fold: int,
        gpu: bool = False,
        runs: list[tuple[str, float]] | None = None,
        scale: float = 1.0,
    ) -> tuple[list[float], float]:
        """One outer fold alone: each of its runs' seconds, and the rest (the baselines, on the
        CPU, and the test predictions).

        On the CPU from the same fold measured at the base size: each run's loop there grown
        by a packed run's epoch at (n, s) over the base's (the typical epochs measured) and by
        the epochs factor, its set-up by the measured set-ups. On a GPU, and with `runs`
        given, from its parts: each run's set-up and its epochs of its architecture (the
        sample mix's ratio to the typical epoch) at 0.8 of a trial's rows."""
        a = self.args
        e = self.epoch(n, s)
        if gpu or runs is not None:
            seconds = []
            for key, epochs in runs or self.nested_runs(n, s, fold, scale):
                per_epoch = self.gpu_epoch(n, s, key) if gpu else self.bare_epoch(n, s, key)
                seconds.append(FOLD_SHARE * (e["setup_s"] + epochs * per_epoch))
            return seconds, self.baselines(n, s)[0]
        base = self.base_nested()
        n0, s0 = map(int, base.split("x"))
        e0 = self.epoch(n0, s0)
        cell = self.m["nested"][base][str(fold)]
        work, factor = e["epoch_s"] / e0["epoch_s"], self.epochs_factor(n, s)[0]
        seconds = []
        for r in cell["runs"]:
            loop = max(0.0, r["cpu_s"] - FOLD_SHARE * e0["setup_s"])
            epochs = a.nested_epochs or min(MAX_EPOCHS, r["epochs"] * factor)
            epochs *= a.nested_epochs_scale * scale
            seconds.append(FOLD_SHARE * e["setup_s"] + loop * work * epochs / r["epochs"])
        other = cell["training_s"] - sum(r["cpu_s"] for r in cell["runs"])
        return seconds, self.baselines(n, s)[0] + max(0.0, other)

    def bare_epoch(self, n: int, s: int, key: str) -> float:
        """A packed run's epoch of architecture `key` as FoldFitter alone runs it."""
        return self.epoch(n, s)["epoch_s"] * self.ratio(s, key)

    def fit_overhead(self) -> float:
        """A real run's epochs (train_run: callbacks, checkpoints every 10 epochs, the plateau
        schedule, the best weights' copies) over the bare epochs of the same architectures:
        the base size's measured runs against their parts."""
        base = self.base_nested()
        n0, s0 = map(int, base.split("x"))
        e0 = self.epoch(n0, s0)
        real = bare = 0.0
        for cell in self.m["nested"][base].values():
            for r in cell["runs"]:
                real += r["cpu_s"] - FOLD_SHARE * e0["setup_s"]
                bare += FOLD_SHARE * r["epochs"] * self.bare_epoch(n0, s0, r["key"])
        return real / bare

    def fold_cpu(self, n: int, s: int, fold: int, **kwargs) -> float:
        runs, baselines = self.fold_parts(n, s, fold, **kwargs)
        return sum(runs) + baselines

    def gpu_epoch(self, n: int, s: int, key: str) -> float:
        """PROJECTION: a step costs its ops at GPU_OP_US each or its bytes at
        GPU_BYTES_PER_S, whichever is more; plus a validation pass and the host's share, times
        a real run's overhead over the bare epoch as measured on the CPU."""
        k = self.mix(s)["keys"][key]
        steps = math.ceil(n * (INNER_FOLDS - 1) / INNER_FOLDS / k["batch"])
        # Bytes per step were counted at the mix's signatures: scale to s.
        bytes_step = k["bytes_step"] * s / int(self.mix_signatures(s))
        step = max(k["ops_step"] * self.args.gpu_op_us * 1e-6, bytes_step / self.args.gpu_bps)
        return self.fit_overhead() * (
            steps * step
            + k["ops_validate"] * self.args.gpu_op_us * 1e-6
            + self.epoch(n, s)["host_s"]
        )

    def mix_signatures(self, s: int) -> str:
        return min(self.m["mix"], key=lambda k: abs(int(k) - s))


def median_fold(inp: Inputs) -> int:
    """The outer fold whose 4 samples' epochs cost the median (at 36 signatures' mix)."""
    keys = inp.mix(36)["fold_keys"]
    cost = sorted(range(len(keys)), key=lambda j: sum(inp.ratio(36, k) for k in keys[j]))
    return cost[(len(cost) - 1) // 2]


def asha_epochs(trials: int, total: float, at_grace: int, grace: int, longest: int) -> list[int]:
    """Epochs per trial: `at_grace` stopped at the grace period, one ran `longest`, the rest
    share what is left of `total` (scaled with the number of trials)."""
    scale = trials / 80
    at_grace = round(at_grace * scale)
    rest = trials - at_grace - 1
    left = total * scale - at_grace * grace - longest
    middle = max(grace, left / max(rest, 1))
    return [grace] * at_grace + [longest] + [middle] * rest


def corun_factor(running: int, nodes: int, slots_per_node: int, corun: float) -> float:
    """How much slower a job runs when jobs share a node: spread one per node first, so
    2 x max(0, running - nodes) of the running jobs share a node with another one."""
    if slots_per_node < 2 or running <= nodes:
        return 1.0
    shared = min(running, 2 * (running - nodes))
    return 1.0 + (corun - 1.0) * shared / running


def list_schedule(durations: list[float], slots: int) -> float:
    """Jobs started in order on the first free slot: when the last ends."""
    free = [0.0] * slots
    for d in durations:
        heapq.heappush(free, heapq.heappop(free) + d)
    return max(free)


@dataclass
class Row:
    subjects: int
    signatures: int
    nodes: int
    trials: float
    trials_limit: str
    nested: float
    nested_limit: str
    total: float
    memory_gib: float


def knees(inp: Inputs, gpu: bool = False) -> dict[tuple[int, int], int]:
    """The fewest nodes at which each (subjects, signatures) reaches its floor (within 2 %)."""
    a = inp.args
    saved, a.nodes = a.nodes, ",".join(str(v) for v in range(1, 129))
    try:
        rows = model_rows(inp, gpu=gpu)
    finally:
        a.nodes = saved
    floor = {(r.subjects, r.signatures): r.total for r in rows if r.nodes == UNLIMITED}
    out: dict[tuple[int, int], int] = {}
    for r in rows:
        key = (r.subjects, r.signatures)
        if key not in out and r.total <= 1.02 * floor[key]:
            out[key] = r.nodes
    return out


def model_rows(
    inp: Inputs,
    gpu: bool = False,
    spt: int = 0,
    nested_scale: float = 1.0,
    runs_as_tasks: bool = False,
) -> list[Row]:
    """The table's rows. `spt`: signatures_per_trial; `nested_scale`: the nested runs'
    epochs scaled (successive halving); `runs_as_tasks`: a fold's runs and its baselines
    as Ray tasks of their own instead of one after another."""
    a = inp.args
    subjects = sorted(int(v) for v in a.subjects.split(","))
    signatures = sorted(int(v) for v in a.signatures.split(","))
    base_setup = inp.epoch(300, 36)["setup_s"] if "300x36" in inp.m["epochs"] else 0.0
    fold_keys = inp.mix(36)["fold_keys"]
    rows = []
    for n in subjects:
        for s in signatures:
            e = inp.epoch(n, s)
            # A trial: its start-up (calibrated at 300 x 36, set-up included) plus its own
            # set-up's growth, then its epochs of the sweep's sample mix.
            groups = math.ceil(s / spt) if spt else 1
            per_group = s if not spt else spt
            ge = inp.epoch(n, per_group) if spt else e
            trials = TASKS * a.samples * groups
            setup = ge["setup_s"] - base_setup
            if gpu:
                key_cost = statistics.mean(
                    inp.gpu_epoch(n, per_group, k) for k in inp.mix(per_group)["trial_keys"]
                )
                start = a.trial_start_s + a.gpu_init_s
            else:
                key_cost = ge["epoch_s"] * inp.trial_mix(per_group) * inp.fit_overhead()
                start = a.trial_start_s
            epochs = asha_epochs(trials, a.asha_epochs, a.asha_at_grace, ASHA_GRACE, a.longest)
            durations = [start + setup + k * key_cost for k in epochs]
            start = a.fold_start_s + (a.gpu_init_s if gpu else 0.0)
            folds = []
            for j in range(len(fold_keys)):
                runs, baselines = inp.fold_parts(n, s, j, gpu=gpu, scale=nested_scale)
                if runs_as_tasks:
                    folds += [start + r for r in runs] + [start + baselines]
                else:
                    folds.append(start + sum(runs) + baselines)
            folds *= TASKS
            for nodes in [*(int(v) for v in a.nodes.split(",")), UNLIMITED]:
                slots = nodes * (1 if gpu else a.slots_per_node)
                # Trials: at most `trials` at once; every trial's work over the slots, the
                # longest trial (ASHA's survivor to max_t) and the driver's serial Tune loop
                # bound the phase from below.
                running = min(slots, trials)
                f = 1.0 if gpu else corun_factor(running, nodes, a.slots_per_node, a.corun)
                bounds = {
                    "slots": sum(durations) * f / running,
                    "longest trial": max(durations) * f,
                    "driver": trials * a.driver_per_trial_s,
                }
                t_limit = max(bounds, key=bounds.get)
                # The nested phase: at most 50 folds at once, a fold's runs one after another.
                running = min(slots, len(folds))
                f = 1.0 if gpu else corun_factor(running, nodes, a.slots_per_node, a.corun)
                nested = list_schedule([d * f for d in folds], running)
                n_limit = "slots"
                if running == len(folds):
                    n_limit = "the longest run" if runs_as_tasks else "50 folds, runs serial"
                total = bounds[t_limit] + nested + DRIVER_AFTER_S + PROCESS_S
                rows.append(
                    Row(
                        n,
                        s,
                        nodes,
                        bounds[t_limit],
                        t_limit,
                        nested,
                        n_limit,
                        total,
                        e["peak_rss"] / 2**30,
                    )
                )
    return rows


def fmt_s(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def print_table(rows: list[Row], title: str, slot_words: str) -> None:
    print(f"\n{title}")
    print(
        f"| subjects | signatures | nodes ({slot_words}) | trials phase | its limit | "
        "nested phase | its limit | total | vs the row above |"
    )
    print("|---:|---:|---:|---:|---|---:|---|---:|---|")
    floors = {(r.subjects, r.signatures): r.total for r in rows if r.nodes == UNLIMITED}
    previous = None
    for r in rows:
        note = ""
        if previous and (previous.subjects, previous.signatures) == (r.subjects, r.signatures):
            note = f"{previous.total / r.total:.2f}x"
        if r.nodes != UNLIMITED and r.total <= 1.05 * floors[r.subjects, r.signatures]:
            note += " **at the floor: more nodes do not help**"
        nodes = "unlimited" if r.nodes == UNLIMITED else str(r.nodes)
        print(
            f"| {r.subjects:,} | {r.signatures} | {nodes} | {fmt_s(r.trials)} | "
            f"{r.trials_limit} | {fmt_s(r.nested)} | {r.nested_limit} | **{fmt_s(r.total)}** | "
            f"{note.strip()} |"
        )
        previous = r


def report(m: dict, args) -> None:
    inp = Inputs(m, args)
    print(f"measured {m['started_utc']} to {m['finished_utc']} at {m['commit']}")
    print(f"load average: {m['load_start']} at the start, {m['load_end']} at the end")
    print("\nMeasured here (one thread, CPU seconds; SYNTHETIC planted data, one task):")
    print(
        "| subjects | signatures | members | epoch, typical (epochs timed) | trial set-up | "
        "host share | member tensors | peak RSS | load before / after |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for key, e in m["epochs"].items():
        n, s = key.split("x")
        print(
            f"| {int(n):,} | {s} | {e['members']} | {e['epoch_s']:.3f} s ({e['epochs_timed']}) | "
            f"{e['setup_s']:.2f} s | {e['host_s'] * 1000:.1f} ms | "
            f"{e['member_bytes'] / 2**20:,.0f} MiB | {e['peak_rss'] / 2**30:.2f} GiB | "
            f"{e['load_before']} / {e['load_after']} |"
        )
    for s, mix in m["mix"].items():
        print(
            f"sample mix at {s} signatures: the sweep's 16 samples' epoch "
            f"{inp.trial_mix(int(s)):.2f}x "
            f"the typical one; {len(mix['keys']) - 1} architectures, "
            f"{min(inp.ratio(int(s), k) for k in mix['keys']):.2f}x to "
            f"{max(inp.ratio(int(s), k) for k in mix['keys']):.2f}x "
            f"(load {mix['load_before']} / {mix['load_after']})"
        )
    for key, b in m["baselines"].items():
        print(
            f"baselines, one outer fold, {key}: {b['cpu_s']:.1f} CPU-s "
            f"(load {b['load_before']} / {b['load_after']})"
        )
    base = inp.base_nested()
    for size, cells in m["nested"].items():
        n, s = map(int, size.split("x"))
        for fold, f in cells.items():
            runs = [(r["key"], r["epochs"]) for r in f["runs"]]
            if size == base:
                model = inp.fold_cpu(n, s, int(fold), runs=runs)
                how = "its parts (bare epochs)"
            else:
                model = inp.fold_cpu(n, s, int(fold))
                how = f"the {base} fold grown by the typical epochs and these epochs"
            print(
                f"run_repeat, outer fold {fold}, {size}: {f['cpu_s']:.1f} CPU-s (training "
                f"{f['training_s']:.1f}, baselines {f['baselines_s']:.1f}); runs "
                + ", ".join(f"{k} {e}" for k, e in runs)
                + f" epochs; peak RSS {f['peak_rss'] / 2**30:.2f} GiB; from {how}: "
                f"{model:.1f} CPU-s ({model / f['cpu_s']:.2f}x; load "
                f"{f['load_before']} / {f['load_after']})"
            )
    print(
        f"a real run's epoch (train_run) over FoldFitter's bare one, the {base} folds' runs: "
        f"{inp.fit_overhead():.2f}x"
    )
    n0, s0 = map(int, base.split("x"))
    print(
        f"\ncalibrated on the grid at 66da264 ({n0} x {s0}, 2 slots): co-run slow-down "
        f"{args.corun:.2f} (its folds' {GRID_FOLDS_CPU_S:.1f} CPU-s a fold in the sweep over "
        f"{args.fold_alone_s:.1f} alone here); per outer fold {args.fold_start_s:.1f} s (its "
        f"nested phase, {GRID_NESTED_S} s = 25 waves of 2 folds); per trial "
        f"{args.trial_start_s:.1f} s (its trials phase, {GRID_TRIALS_S} s on 2 slots, less "
        f"{args.asha_epochs:g} epochs x "
        f"{inp.epoch(n0, s0)['epoch_s'] * inp.trial_mix(s0) * inp.fit_overhead():.3f} s)"
    )
    print(
        f"model: {args.slots_per_node} slots per node, co-run factor {args.corun:.2f}, "
        f"{args.samples} samples x {TASKS} tasks, ASHA {args.asha_epochs} epochs per 80 trials "
        f"({args.asha_at_grace} at {ASHA_GRACE}, one to {args.longest}), epochs per nested run: "
        + ", ".join(
            f"{n:,}x{s}: {inp.epochs_factor(n, s)[0]:.2f}x ({inp.epochs_factor(n, s)[1]})"
            for n in sorted(int(v) for v in args.subjects.split(","))
            for s in sorted(int(v) for v in args.signatures.split(","))
        )
        + f" of the {inp.base_nested()} folds' (x {args.nested_epochs_scale:g}"
        + (f", fixed at {args.nested_epochs:g}" if args.nested_epochs else "")
        + ")"
        + f", driver {args.driver_per_trial_s} CPU-s a trial, serial "
        f"{DRIVER_AFTER_S + PROCESS_S:.1f} s"
    )
    for n in sorted(int(v) for v in args.subjects.split(",")):
        for s in sorted(int(v) for v in args.signatures.split(",")):
            b, how = inp.baselines(n, s)
            print(f"  baselines {n:,} x {s}: {b:.1f} CPU-s ({how})")

    rows = model_rows(inp)
    print_table(
        rows, "CPU (measured per-trial costs, modelled schedule)", f"{args.slots_per_node} slots"
    )
    print(
        "the floor (within 2 %) is reached at: "
        + ", ".join(f"{n:,} x {s}: {k} nodes" for (n, s), k in knees(inp).items())
    )
    for key, e in m["epochs"].items():
        if e["peak_rss"] / 2**30 > SLOT_GIB / 2:
            print(
                f"memory, {key}: member tensors {e['member_bytes'] / 2**30:.2f} GiB "
                f"({e['members']} members x {e['train_rows']:,} training rows x 10 features, "
                f"float32, and the validation rows); a trial's process peaks at "
                f"{e['peak_rss'] / 2**30:.2f} GiB against a {SLOT_GIB:g} GiB slot"
            )
    gpu = model_rows(inp, gpu=True)
    print_table(
        gpu,
        f"GPU PROJECTION, not measured (one GPU per node, one trial or fold per GPU at a time; "
        f"{args.gpu_op_us:g} us an op, {args.gpu_bps / 1e12:g} TB/s, "
        f"{args.gpu_init_s:g} s CUDA start-up; baselines on the CPU)",
        "1 GPU",
    )
    print(
        "the floor (within 2 %) is reached at: "
        + ", ".join(f"{n:,} x {s}: {k} nodes" for (n, s), k in knees(inp, gpu=True).items())
    )
    spt, scale = args.what_if_spt, args.what_if_halving
    nodes = max(int(v) for v in args.nodes.split(","))
    variants = {
        "as shipped": {},
        f"signatures_per_trial {spt}": {"spt": spt},
        f"nested epochs x {scale:.2g}": {"nested_scale": scale},
        "a fold's runs as tasks": {"runs_as_tasks": True},
        "all three": {"spt": spt, "nested_scale": scale, "runs_as_tasks": True},
    }
    found = {name: model_rows(inp, **kw) for name, kw in variants.items()}
    print(f"\nwhat lifts it, CPU, {nodes} nodes ({nodes * args.slots_per_node} slots): total")
    print("| subjects | signatures | " + " | ".join(variants) + " |")
    print("|---:|---:|" + "---:|" * len(variants))
    for i, r in enumerate(found["as shipped"]):
        if r.nodes != nodes:
            continue
        cells = [
            f"{fmt_s(rows[i].total)} ({fmt_s(rows[i].trials)} + {fmt_s(rows[i].nested)})"
            for rows in found.values()
        ]
        print(f"| {r.subjects:,} | {r.signatures} | " + " | ".join(cells) + " |")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--subjects", default="300,3000,30000")
    p.add_argument("--signatures", default="36,144")
    p.add_argument("--nodes", default="1,4,16,64")
    p.add_argument(
        "--nested-sizes",
        default="300x36,300x144,3000x36",
        help="run_repeat measured: every outer fold at the first size, the median one at the rest",
    )
    p.add_argument("--baseline-sizes", default="all", help="'all' or NxS,NxS")
    p.add_argument("--save", help="write the measurements to this JSON file")
    p.add_argument("--load", help="print the table from these measurements, measuring nothing")
    p.add_argument("--scratch", help="folder for the data roots (default: a temporary one)")
    m = p.add_argument_group("model inputs")
    m.add_argument("--slots-per-node", type=int, default=2, help="1-CPU slots per node (2: here)")
    m.add_argument(
        "--corun", type=float, default=0, help="slow-down of 2 jobs on a node (0: calibrated)"
    )
    m.add_argument("--samples", type=int, default=16, help="samples per task")
    m.add_argument("--asha-epochs", type=float, default=ASHA_EPOCHS, help="per 80 trials")
    m.add_argument("--asha-at-grace", type=int, default=ASHA_AT_GRACE, help="per 80 trials")
    m.add_argument("--longest", type=int, default=ASHA_LONGEST, help="the longest trial's epochs")
    m.add_argument("--nested-epochs", type=float, default=0, help="per nested run (0: measured)")
    m.add_argument(
        "--nested-epochs-scale", type=float, default=1.0, help="e.g. 0.33: successive halving"
    )
    m.add_argument("--driver-per-trial-s", type=float, default=DRIVER_PER_TRIAL_S)
    m.add_argument("--trial-start-s", type=float, default=0, help="0: calibrated")
    m.add_argument("--fold-start-s", type=float, default=0, help="0: calibrated")
    m.add_argument("--gpu-op-us", type=float, default=GPU_OP_US)
    m.add_argument("--gpu-bps", type=float, default=GPU_BYTES_PER_S)
    m.add_argument("--gpu-init-s", type=float, default=GPU_INIT_S)
    m.add_argument("--what-if-spt", type=int, default=12, help="signatures_per_trial to try")
    m.add_argument(
        "--what-if-halving", type=float, default=1 / 3, help="nested epochs' share to try"
    )
    p.add_argument("--cell", nargs=4, help=argparse.SUPPRESS)
    return p


def calibrate(m: dict, args) -> None:
    """The inputs fitted to the grid measured at 66da264 (300 x 36 on this machine's 2 slots):
    the co-run slow-down, the per-fold Ray overhead and the per-trial start-up."""
    inp = Inputs(m, args)
    base = inp.base_nested()
    n, s = map(int, base.split("x"))
    alone = statistics.mean(f["cpu_s"] for f in m["nested"][base].values())
    args.fold_alone_s = alone
    if not args.corun:
        args.corun = max(1.0, GRID_FOLDS_CPU_S / alone)
    if not args.fold_start_s:
        # 50 folds, 2 at a time: 25 waves of a fold's time in the sweep and its overhead.
        args.fold_start_s = max(0.0, 2 * GRID_NESTED_S / OUTER_FOLDS - args.corun * alone)
    if not args.trial_start_s:
        loop = args.asha_epochs * inp.epoch(n, s)["epoch_s"] * inp.trial_mix(s) * inp.fit_overhead()
        args.trial_start_s = max(0.0, (2 * GRID_TRIALS_S / args.corun - loop) / 80)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.cell:
        kind, root, signatures, timed = args.cell
        one_thread()
        fn = CELLS[kind]
        extra = (int(timed),) if kind != "baselines" else ()
        print(json.dumps(fn(Path(root), int(signatures), *extra)))
        return 0
    if args.load:
        m = json.loads(Path(args.load).read_text())
    else:
        m = measure(args)
        if args.save:
            Path(args.save).write_text(json.dumps(m, indent=1))
    calibrate(m, args)
    report(m, args)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
