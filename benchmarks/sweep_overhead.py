"""How much of a sweep trial is fixed cost, where its CPU goes, and what lowers it.

On a tiny dataset (one signature, one task, so ASHA compares nothing and stops nothing),
run N trials through the real sweep code (`ray_jobs.sweep.build_tuner`, one TorchTrainer per
trial) on a fresh local Ray instance and print, per setting:

- trials per minute and the effective fixed cost per trial (sweep wall time / N);
- the mean fixed cost per trial: trial start to its first epoch report, minus that epoch;
- the fraction of trial wall time spent in the training loop (epoch compute);
- CPU-seconds per trial by process (sampled from /proc every 0.1 s: this benchmark and its
  descendants only, i.e. this Ray instance; processes that exit between two samples are
  counted from their parent's reaped-children time, as "exited unsampled").

    python benchmarks/sweep_overhead.py                 # the project's default settings
    python benchmarks/sweep_overhead.py --compare       # Ray's defaults, then one change at a time
    python benchmarks/sweep_overhead.py --compare --only 3,4,5 --repeat 2
    python benchmarks/sweep_overhead.py --trials 12 --epochs 10 --health-check 2.0 --cpus-per-worker 1

Each `--compare` setting runs in its own process with its own Ray instance.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SIG, TASK = "m2_tau1_eps0.055_lmin2", "Q1"
TICK = os.sysconf("SC_CLK_TCK")

# Process title (Ray sets `ray::<Actor>` once an actor runs) -> row of the breakdown.
KINDS = (
    ("RayTrainWorker", "Train worker (RayTrainWorker)"),
    ("TrainController", "Train controller"),
    ("ImplicitFunc", "Tune trial actor (ImplicitFunc)"),
    ("SynchronizationActor", "Train SynchronizationActor"),
    ("PlacementGroupCleaner", "Train PlacementGroupCleaner"),
    ("DatasetManager", "Train DatasetManager"),
    ("PreemptionWatcher", "Train PreemptionWatcher"),
    ("_QueueActor", "Tune report queue (_QueueActor)"),
    ("ray::IDLE", "workers that never ran an actor"),
    ("default_worker.py", "workers before they got a title"),
    ("python -B -c", "Ray's helper processes (python -c)"),
    ("raylet", "raylet"),
    ("gcs_server", "gcs_server"),
    ("dashboard", "dashboard + agents"),
    ("Agent", "dashboard + agents"),
    ("agent", "dashboard + agents"),
    ("log_monitor", "log_monitor"),
    ("monitor.py", "monitor"),
)


def _kind(title: str, own_pid: int, pid: int) -> str:
    if pid == own_pid:
        return "sweep driver (Tune loop)"
    for key, label in KINDS:
        if key in title:
            return label
    return "other: " + title[:60]


class ProcSampler:
    """CPU time of this process and all its descendants, by process title."""

    def __init__(self, interval: float = 0.1):
        self.interval, self.own = interval, os.getpid()
        self.cpu: dict[int, float] = {}
        self.title: dict[int, str] = {}
        self.parent: dict[int, int] = {}
        self.reaped: dict[int, float] = {}
        self.reaped_start: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "ProcSampler":
        self._sample()
        for pid in list(self.cpu):  # count only what happens from now on
            self.reaped_start[pid] = self.reaped.get(pid, 0.0)
        self.base = dict(self.cpu)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        stats = {}
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                stats[int(name)] = fields
            except OSError:
                continue
        mine = {self.own} | set(self.cpu)
        for _ in range(4):  # parents may be listed after their children
            grown = {pid for pid, f in stats.items() if int(f[1]) in mine} - mine
            if not grown:
                break
            mine |= grown
        for pid in mine & set(stats):
            fields = stats[pid]
            if pid not in self.parent:
                self.parent[pid] = int(fields[1])
            self.cpu[pid] = (int(fields[11]) + int(fields[12])) / TICK
            self.reaped[pid] = (int(fields[13]) + int(fields[14])) / TICK
            title = self.title.get(pid, "")
            if not title.startswith("ray::") or title.startswith("ray::IDLE"):
                try:  # keep the first actor title a worker process shows
                    with open(f"/proc/{pid}/cmdline") as fh:
                        cmd = fh.read().replace("\0", " ").strip()
                    if cmd:
                        self.title[pid] = cmd[:200]
                except OSError:
                    pass

    def breakdown(self) -> dict[str, float]:
        out: collections.Counter = collections.Counter()
        for pid, cpu in self.cpu.items():
            out[_kind(self.title.get(pid, "?"), self.own, pid)] += cpu - self.base.get(pid, 0.0)
        # Children that exited are reaped by their parent: what the parent gained beyond the
        # children we sampled is CPU we missed between samples.
        sampled_dead = collections.Counter()
        for pid, ppid in self.parent.items():
            if not os.path.exists(f"/proc/{pid}"):
                sampled_dead[ppid] += self.cpu[pid] - self.base.get(pid, 0.0)
        missed = sum(max(0.0, self.reaped[p] - self.reaped_start.get(p, 0.0) - sampled_dead[p])
                     for p in self.reaped if p != self.own)
        out["exited unsampled"] += missed
        return dict(out)


def run_one_setting(args: argparse.Namespace) -> dict:
    import ray

    from mmse_model.sweep_config import sweep_config_from_dict
    from mmse_model.toy_data import write_planted_root
    from ray_jobs.sweep import build_tuner
    from ray_jobs.train import PLAIN_TRAINER_ENV, train_env

    tmp = Path(tempfile.mkdtemp(prefix="mmse-bench-"))
    root = write_planted_root(tmp / "data", {SIG: 1.0}, tasks=(TASK,), n_subjects=120)
    sweep = sweep_config_from_dict({
        "name": "bench", "data_root": str(root), "storage": str(tmp / "runs"),
        "samples": args.trials, "search_space": {"training.lr": {"loguniform": [0.001, 0.01]}},
        "asha": {"grace_period": args.epochs},
        "resources": {"trial_cpus": 0.05, "max_concurrent_trials": args.concurrency},
        "config": {"training": {"epochs": args.epochs, "folds": 3, "checkpoint_every": 0},
                   "early_stopping": {"enable": False},
                   "ray": {"num_workers": 1, "cpus_per_worker": args.cpus_per_worker,
                           "health_check_interval_s": args.health_check,
                           "preemption_watcher": args.preemption_watcher}},
    })
    env = train_env(sweep.base_config().ray)
    if args.plain_trainer:
        env[PLAIN_TRAINER_ENV] = "1"
    for item in args.env:
        key, _, value = item.partition("=")
        env[key] = value
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    sampler = ProcSampler().start()
    ray.init(num_cpus=os.cpu_count(), log_to_driver=False, runtime_env={"env_vars": env})
    tuner = build_tuner(sweep, (SIG,), (TASK,), str(tmp / "runs"), time_epochs=True,
                        reuse_actors=args.reuse_actors)
    started = time.perf_counter()
    grid = tuner.fit()
    wall = time.perf_counter() - started
    ray.shutdown()
    sampler.stop()
    fixed, loop_fraction = [], []
    for result in grid:
        history = result.metrics_dataframe.sort_values("epoch")
        first = history.iloc[0]
        trial_wall = float(history["time_total_s"].iloc[-1])
        fixed.append(float(first["time_total_s"]) - float(first["time/epoch_s"]))
        loop_fraction.append(float(history["time/epoch_s"].sum()) / trial_wall)
    cpu = {k: round(v / args.trials, 2) for k, v in sampler.breakdown().items() if v > 0.005}
    return {
        "trials": args.trials, "epochs": args.epochs, "sweep_wall_s": round(wall, 1),
        "trials_per_min": round(60 * args.trials / wall, 2),
        "effective_fixed_cost_s": round(wall / args.trials, 2),
        "mean_fixed_cost_s": round(sum(fixed) / len(fixed), 2),
        "loop_fraction": round(sum(loop_fraction) / len(loop_fraction), 3),
        "loop_cpu_s_per_trial": round(args.epochs * statistics.mean(
            float(r.metrics_dataframe["time/epoch_s"].mean()) for r in grid), 2),
        "cpu_s_per_trial": dict(sorted(cpu.items(), key=lambda kv: -kv[1])),
        "cpu_s_per_trial_total": round(sum(cpu.values()), 2),
    }


# (label, extra arguments): Ray's defaults first, then one change at a time, each kept.
RAY_DEFAULTS = ["--health-check", "2.0", "--cpus-per-worker", "1.0", "--preemption-watcher",
                "--plain-trainer"]
SETTINGS = (
    ("1 Ray defaults (2 s poll, 1 CPU/worker)", RAY_DEFAULTS),
    ("2 + report poll 0.1 s", ["--health-check", "0.1", "--cpus-per-worker", "1.0",
                               "--preemption-watcher", "--plain-trainer"]),
    ("3 + 0.5 CPU per worker", ["--health-check", "0.1", "--cpus-per-worker", "0.5",
                                "--preemption-watcher", "--plain-trainer"]),
    ("4 + no PreemptionWatcher", ["--health-check", "0.1", "--cpus-per-worker", "0.5",
                                  "--plain-trainer"]),
    ("5 + no DatasetManager = default", []),
    # Measured, not adopted (docs/sweep_overhead.md says why):
    ("6 (5) + reuse trial actors*", ["--reuse-actors"]),
    ("7 (5) + Train metrics off", ["--env", "RAY_TRAIN_METRICS_ENABLED=0"]),
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--health-check", type=float, default=0.1)
    parser.add_argument("--cpus-per-worker", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=0, help="0: from cluster resources")
    parser.add_argument("--preemption-watcher", action="store_true", help="Ray's default: on")
    parser.add_argument("--plain-trainer", action="store_true",
                        help="Ray's TorchTrainer callbacks as they are (DatasetManager kept)")
    parser.add_argument("--reuse-actors", action="store_true", help="Tune reuse_actors=True")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra runtime-env variable")
    parser.add_argument("--compare", action="store_true", help="run the settings in SETTINGS")
    parser.add_argument("--only", help="comma-separated setting numbers for --compare (1-based)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per --compare setting")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.compare:
        figures = run_one_setting(args)
        print(json.dumps(figures) if args.json else _report([("this setting", [figures])]))
        return 0
    chosen = [SETTINGS[int(i) - 1] for i in args.only.split(",")] if args.only else SETTINGS
    rows = []
    for label, extra in chosen:
        runs = []
        for _ in range(args.repeat):  # each in its own process and its own Ray instance
            done = subprocess.run(
                [sys.executable, __file__, "--json", "--trials", str(args.trials),
                 "--epochs", str(args.epochs), *extra],
                capture_output=True, text=True,
            )
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode != 0 or not lines:
                print(f"{label}: failed\n{done.stderr[-3000:]}", file=sys.stderr)
                return 1
            runs.append(json.loads(lines[-1]))
        rows.append((label, runs))
        print(_report(rows[-1:]), flush=True)
    print("\n" + _report(rows))
    return 0


def _spread(values) -> str:
    mean = statistics.mean(values)
    return f"{mean:.2f}" if len(values) == 1 else f"{mean:.2f}±{(max(values) - min(values)) / 2:.2f}"


def _report(rows) -> str:
    head = (f"{'setting':<42}{'trials/min':>12}{'eff. s/trial':>14}{'fixed s':>12}"
            f"{'loop frac':>11}{'CPU-s/trial':>13}")
    lines = [head]
    for label, runs in rows:
        lines.append(
            f"{label:<42}{_spread([r['trials_per_min'] for r in runs]):>12}"
            f"{_spread([r['effective_fixed_cost_s'] for r in runs]):>14}"
            f"{_spread([r['mean_fixed_cost_s'] for r in runs]):>12}"
            f"{_spread([r['loop_fraction'] for r in runs]):>11}"
            f"{_spread([r['cpu_s_per_trial_total'] for r in runs]):>13}"
        )
    lines.append("CPU-s per trial by process (mean over runs):")
    kinds = sorted({k for _, runs in rows for r in runs for k in r["cpu_s_per_trial"]})
    short = [label.split(" ")[0] for label, _ in rows]
    lines.append(f"  {'process':<40}" + "".join(f"{s:>8}" for s in short))
    for kind in sorted(kinds, key=lambda k: -max(statistics.mean(r["cpu_s_per_trial"].get(k, 0) for r in runs)
                                                 for _, runs in rows)):
        cells = [statistics.mean(r["cpu_s_per_trial"].get(kind, 0.0) for r in runs) for _, runs in rows]
        lines.append(f"  {kind[:40]:<40}" + "".join(f"{c:>8.2f}" for c in cells))
    lines.append(f"  {'(training loop compute, in the worker)':<40}" + "".join(
        f"{statistics.mean(r['loop_cpu_s_per_trial'] for r in runs):>8.2f}" for _, runs in rows))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
