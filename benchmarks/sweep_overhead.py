"""How much of a sweep trial is fixed cost, and what lowers it.

On a tiny dataset (one signature, one task, so ASHA compares nothing and stops nothing),
run N trials through the real sweep code (`ray_jobs.sweep.build_tuner`, one TorchTrainer per
trial) on a fresh local Ray instance and print, per setting:

- trials per minute and the effective fixed cost per trial (sweep wall time / N);
- the mean fixed cost per trial: trial start to its first epoch report, minus that epoch;
- the fraction of trial wall time spent in the training loop (epoch compute).

    python benchmarks/sweep_overhead.py                 # the default settings
    python benchmarks/sweep_overhead.py --compare       # Ray's defaults vs ours, one by one
    python benchmarks/sweep_overhead.py --trials 12 --epochs 10 --health-check 2.0 --cpus-per-worker 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIG, TASK = "m2_tau1_eps0.055_lmin2", "Q1"


def run_one_setting(args: argparse.Namespace) -> dict:
    import ray

    from mmse_model.sweep_config import sweep_config_from_dict
    from mmse_model.toy_data import write_planted_root
    from ray_jobs.sweep import build_tuner

    tmp = Path(tempfile.mkdtemp(prefix="mmse-bench-"))
    root = write_planted_root(tmp / "data", {SIG: 1.0}, tasks=(TASK,), n_subjects=120)
    sweep = sweep_config_from_dict({
        "name": "bench", "data_root": str(root), "storage": str(tmp / "runs"),
        "samples": args.trials, "search_space": {"training.lr": {"loguniform": [0.001, 0.01]}},
        "asha": {"grace_period": args.epochs},
        "resources": {"trial_cpus": 0.05, "max_concurrent_trials": args.concurrency},
        "config": {"training": {"epochs": args.epochs, "folds": 3},
                   "early_stopping": {"enable": False},
                   "ray": {"num_workers": 1, "cpus_per_worker": args.cpus_per_worker,
                           "health_check_interval_s": args.health_check}},
    })
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    ray.init(num_cpus=os.cpu_count(), log_to_driver=False,
             runtime_env={"env_vars": {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": str(args.health_check)}})
    tuner = build_tuner(sweep, (SIG,), (TASK,), str(tmp / "runs"), time_epochs=True)
    started = time.perf_counter()
    grid = tuner.fit()
    wall = time.perf_counter() - started
    fixed, loop_fraction = [], []
    for result in grid:
        history = result.metrics_dataframe.sort_values("epoch")
        first = history.iloc[0]
        trial_wall = float(history["time_total_s"].iloc[-1])
        fixed.append(float(first["time_total_s"]) - float(first["time/epoch_s"]))
        loop_fraction.append(float(history["time/epoch_s"].sum()) / trial_wall)
    ray.shutdown()
    return {
        "setting": f"health_check={args.health_check}s cpus_per_worker={args.cpus_per_worker} "
                   f"concurrency={args.concurrency or 'auto'}",
        "trials": args.trials, "epochs": args.epochs, "sweep_wall_s": round(wall, 1),
        "trials_per_min": round(60 * args.trials / wall, 2),
        "effective_fixed_cost_s": round(wall / args.trials, 2),
        "mean_fixed_cost_s": round(sum(fixed) / len(fixed), 2),
        "loop_fraction": round(sum(loop_fraction) / len(loop_fraction), 3),
    }


SETTINGS = (  # (label, extra arguments): Ray's defaults first, then one change at a time
    ("ray defaults: 2 s report poll, 1 CPU per worker", ["--health-check", "2.0", "--cpus-per-worker", "1.0"]),
    ("report poll 0.1 s", ["--health-check", "0.1", "--cpus-per-worker", "1.0"]),
    ("+ 0.5 CPU per worker (more trials at once)", ["--health-check", "0.1", "--cpus-per-worker", "0.5"]),
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--health-check", type=float, default=0.1)
    parser.add_argument("--cpus-per-worker", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=0, help="0: from cluster resources")
    parser.add_argument("--compare", action="store_true", help="run every setting in SETTINGS")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.compare:
        figures = run_one_setting(args)
        print(json.dumps(figures) if args.json else _table([("this setting", figures)]))
        return 0
    rows = []
    for label, extra in SETTINGS:  # each in its own process and its own Ray instance
        done = subprocess.run(
            [sys.executable, __file__, "--json", "--trials", str(args.trials), "--epochs", str(args.epochs), *extra],
            capture_output=True, text=True,
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            print(f"{label}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            return 1
        rows.append((label, json.loads(lines[-1])))
        print(_table(rows[-1:]), flush=True)
    print("\n" + _table(rows))
    return 0


def _table(rows) -> str:
    lines = [f"{'setting':<48}{'trials/min':>11}{'eff. s/trial':>13}{'fixed s':>9}{'loop frac':>10}{'wall s':>8}"]
    for label, f in rows:
        lines.append(f"{label:<48}{f['trials_per_min']:>11}{f['effective_fixed_cost_s']:>13}"
                     f"{f['mean_fixed_cost_s']:>9}{f['loop_fraction']:>10}{f['sweep_wall_s']:>8}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
