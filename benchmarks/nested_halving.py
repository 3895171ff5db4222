"""Successive halving inside the nested search, against the search without it, fold by fold.

For outer folds of the realistic grid (36 signatures, 300 subjects: SYNTHETIC, the planted
signal of benchmarks/grid_time.py; configs/sweep.yaml's search: 4 samples x every
signature, 5 inner folds, 100 epochs, early stopping), runs the network's search of each
outer fold (`mmse_model.sweeps.nested.search`) twice in this process on one thread, as a
one-CPU Ray task runs it: once with the halving configs/sweep.yaml ships (the sweep's ASHA
rungs 10, 30, 90, the best third on) and once with every candidate trained to its end, in
alternating order so both meet the same load. Per fold it prints the CPU seconds of each,
the candidate-epochs trained, the (sample, signature) each chose, and the chosen network's
RMSE on the outer fold's subjects (points); then the totals:

    nested search speed-up: <CPU ratio>x (candidate-epochs <ratio>x); the same choice in
    <a>/<n> folds; outer RMSE with halving minus without: <mean> (sd <sd>, 95 % t interval)

The RMSE difference is what halving does to the estimate: the estimate is of the procedure
with halving, the one the sweep's own ASHA search resembles.

    python benchmarks/nested_halving.py [--data DIR] [--tasks Q1,Q3] [--repeats 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from scipy import stats

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from grid_time import git_commit, load, write_data

from mmse_model.sweeps.config import load_sweep_config
from mmse_model.sweeps.nested import NestedSearch, OuterRepeat, search
from mmse_model.training.held_out import test_predictions
from mmse_model.training.loop import load_run_data


def fold_run(repeat: OuterRepeat) -> dict:
    started = time.process_time()
    candidates, best, payload = search(repeat)
    seconds = time.process_time() - started
    group, split = load_run_data(repeat.runs()[0])
    _, y_true, y_pred, _ = test_predictions(
        payload, group.task_data(best.signature), split, best.signature
    )
    return {
        "cpu_s": seconds,
        "epochs": sum(c.epochs for c in candidates),
        "choice": (best.sample, best.signature),
        "rmse": float(((y_true - y_pred) ** 2).mean() ** 0.5),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="", help="the grid's data root (written if empty)")
    parser.add_argument("--tasks", default="Q1,Q3")
    parser.add_argument("--repeats", type=int, default=1, help="outer repeats (x 5 folds)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    data = Path(args.data or tempfile.mkdtemp(prefix="nested-halving-"))
    write_data(data)
    sweep = load_sweep_config(REPO / "configs" / "sweep.yaml", data_root=str(data))
    search_ = NestedSearch.of_sweep(sweep)
    assert search_ is not None and search_.halving is not None, "configs/sweep.yaml: no halving"
    search_ = replace(search_, repeats=args.repeats)
    signatures = sorted(p.name for p in data.iterdir() if (p / "Q1.npz").is_file())
    print(f"commit {git_commit()}; load average {load()}; {len(signatures)} signatures")
    print(f"search: {search_.describe(str(len(signatures)))}")
    print(f"{'task':<5}{'fold':>5}{'CPU s':>14}{'epochs':>16}  {'choice':<34}{'outer RMSE':>18}")
    rows = []
    for task in args.tasks.split(","):
        for i, repeat in enumerate(search_.repeats_of(data, task, signatures)):
            runs = {"halving": repeat, "full": replace(repeat, halving=None)}
            order = ["halving", "full"] if i % 2 == 0 else ["full", "halving"]
            done = {name: fold_run(runs[name]) for name in order}
            h, f = done["halving"], done["full"]
            rows.append((h, f))
            same = "same" if h["choice"] == f["choice"] else f"{f['choice'][0]},{f['choice'][1]}"
            print(
                f"{task:<5}{i:>5}{h['cpu_s']:>7.1f}/{f['cpu_s']:<6.1f}{h['epochs']:>8}/"
                f"{f['epochs']:<7} {h['choice'][0]},{h['choice'][1]:<30} {same:<6}"
                f"{h['rmse']:>8.3f}/{f['rmse']:.3f}",
                flush=True,
            )
    cpu = sum(f["cpu_s"] for _, f in rows) / sum(h["cpu_s"] for h, _ in rows)
    epochs = sum(f["epochs"] for _, f in rows) / sum(h["epochs"] for h, _ in rows)
    same = sum(h["choice"] == f["choice"] for h, f in rows)
    diffs = [h["rmse"] - f["rmse"] for h, f in rows]
    mean, sd = statistics.fmean(diffs), statistics.stdev(diffs) if len(diffs) > 1 else 0.0
    half = stats.t.ppf(0.975, len(diffs) - 1) * sd / len(diffs) ** 0.5 if len(diffs) > 1 else 0
    print(f"load average at the end {load()}")
    print(
        f"nested search speed-up: {cpu:.2f}x (candidate-epochs {epochs:.2f}x); the same "
        f"choice in {same}/{len(rows)} folds; outer RMSE with halving minus without: "
        f"{mean:+.4f} (sd {sd:.4f}, 95 % t interval [{mean - half:+.4f}, {mean + half:+.4f}])"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
