"""Where a sweep trial's time goes, and what packing signatures into one trial buys.

Runs the real sweep code (`ray_jobs.sweep.build_tuner`: Tune trial function -> TorchTrainer)
on planted data, each setting in its own process with a fresh local Ray instance, and
prints per setting: sweep wall time, trials per minute, wall per trial, the loop fraction
(the trials' epoch compute, `time/epoch_s`, over their wall time) and the CPU-seconds per
trial of every process of that Ray instance (sampled from /proc every 0.1 s).

    python benchmarks/sweep_overhead.py                 # one setting: project defaults
    python benchmarks/sweep_overhead.py --packed        # packed vs one trial per signature
    python benchmarks/sweep_overhead.py --in-trial      # full Train path vs training in the trial
    python benchmarks/sweep_overhead.py --write-grid-data DIR  # the realistic grid's SYNTHETIC data

`--packed` runs the same coverage (12 signatures x 1 task x 4 samples, 30 epochs, 3 folds,
the project's defaults) packed (every signature in one trial) and one trial per signature,
one after the other, extrapolates each to the realistic grid (36 signatures x 5 tasks x 16
samples), times one packed trial of that grid (36 signatures, 5 folds, 100 epochs), and
ends with the line `packed speed-up: <ratio>x`.

`--in-trial` runs the same coverage of realistic-size packed trials (36 signatures x 2 tasks
x 4 samples, 300 subjects, 5 folds, 100 epochs, ASHA and early stopping stopping nothing)
twice: through the full Train path (`ray.num_workers: 1`: controller, worker group,
placement group) and trained inside the Tune trial actor (`ray.num_workers: 0`, Train's local
mode), and ends with the line `in-trial speed-up: <ratio>x`.

`--write-grid-data DIR` writes the realistic grid's data root (36 signatures x 5 tasks, 300
subjects, planted signal: SYNTHETIC) for a timed `mmse sweep` of the whole grid.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout: tests.fixtures

TASKS = ("Q1", "Q2", "Q3", "Q4", "Q5")
TICK = os.sysconf("SC_CLK_TCK")
GRID = {"signatures": 36, "tasks": 5, "samples": 16}

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
    """CPU time of this process and all its descendants, by process title. Processes that
    exit between two samples are counted from their parent's reaped-children time."""

    def __init__(self, interval: float = 0.1):
        self.interval, self.own = interval, os.getpid()
        self.cpu: dict[int, float] = {}
        self.title: dict[int, str] = {}
        self.parent: dict[int, int] = {}
        self.reaped: dict[int, float] = {}
        self.reaped_start: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> ProcSampler:
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
                    stats[int(name)] = fh.read().rsplit(")", 1)[1].split()
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
            self.parent.setdefault(pid, int(fields[1]))
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
        sampled_dead = collections.Counter()
        for pid, ppid in self.parent.items():
            if not os.path.exists(f"/proc/{pid}"):
                sampled_dead[ppid] += self.cpu[pid] - self.base.get(pid, 0.0)
        out["exited unsampled"] += sum(
            max(0.0, self.reaped[p] - self.reaped_start.get(p, 0.0) - sampled_dead[p])
            for p in self.reaped
            if p != self.own
        )
        return dict(out)


def signatures(n: int) -> list[str]:
    """n distinct signature names (3 m x 3 tau x 4 eps covers the realistic 36)."""
    names = [
        f"m{m}_tau{tau}_eps{eps}_lmin2"
        for m in (2, 3, 4)
        for tau in (1, 2, 3)
        for eps in ("0.04", "0.055", "0.07", "0.085")
    ]
    return names[:n]


def run_one_setting(args: argparse.Namespace) -> dict:
    """One sweep in this process (a fresh local Ray instance); returns its figures."""
    import ray

    from mmse_model.sweeps.config import SweepConfig
    from ray_jobs.sweep import build_tuner
    from ray_jobs.train import train_env
    from tests.fixtures.toy_data import write_planted_root

    tmp = Path(tempfile.mkdtemp(prefix="mmse-bench-"))
    sigs = signatures(args.signatures)
    tasks = TASKS[: args.tasks]
    root = write_planted_root(
        tmp / "data", {sig: 1.0 for sig in sigs}, tasks=tasks, n_subjects=args.subjects
    )
    sweep = SweepConfig.parse(
        {
            "name": "bench",
            "data_root": str(root),
            "storage": str(tmp / "runs"),
            "samples": args.samples,
            "signatures_per_trial": args.per_trial,
            "search_space": {"training.lr": {"loguniform": [0.001, 0.01]}},
            "asha": {
                "grace_period": args.epochs
            },  # ASHA stops nothing: every trial does the same work
            # A trial that trains itself reserves its worker's CPU and needs nothing more; one that
            # waits on a Train worker reserves a sliver of a CPU besides the worker's.
            "resources": {"trial_cpus": 0.0 if args.workers == 0 else 0.05},
            "config": {
                "split": {"folds": args.folds},
                "training": {"epochs": args.epochs},
                "early_stopping": {"enable": False},
                "ray": {"num_workers": args.workers},
            },
        }
    )
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    sampler = ProcSampler().start()
    ray.init(
        num_cpus=os.cpu_count(),
        log_to_driver=False,
        runtime_env={"env_vars": train_env(sweep.base_config().ray)},
    )
    tuner = build_tuner(sweep, sigs, tasks, str(tmp / "runs"))
    started = time.perf_counter()
    grid = tuner.fit()
    wall = time.perf_counter() - started
    ray.shutdown()
    sampler.stop()
    loop, trial_wall, spans = [], [], []
    for result in grid:
        history = result.metrics_dataframe
        loop.append(float(history["time/epoch_s"].sum()))
        trial_wall.append(float(history["time_total_s"].max()))
        end = float(history["timestamp"].max())
        spans.append((end - trial_wall[-1], end))
    trials = len(trial_wall)
    cpu = {k: round(v / trials, 2) for k, v in sampler.breakdown().items() if v > 0.005}
    return {
        "trials": trials,
        "signatures": len(sigs),
        "sweep_wall_s": round(wall, 1),
        "trials_per_min": round(60 * trials / wall, 2),
        "wall_per_trial_s": round(wall / trials, 2),
        "loop_fraction": round(sum(loop) / sum(trial_wall), 3),
        "concurrent_trials": max_overlap(spans),
        "loop_s_per_trial": round(statistics.mean(loop), 2),
        "cpu_s_per_trial": dict(sorted(cpu.items(), key=lambda kv: -kv[1])),
        "cpu_s_per_trial_total": round(sum(cpu.values()), 2),
    }


def max_overlap(spans: list[tuple[float, float]]) -> int:
    """Most trials running at one moment (a trial that starts as another ends does not
    overlap it)."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def in_subprocess(extra: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--json", *extra], capture_output=True, text=True, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"benchmark setting {extra} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def packed_comparison() -> None:
    coverage = ["--signatures", "12", "--samples", "4", "--epochs", "30", "--folds", "3"]
    packed = in_subprocess([*coverage, "--per-trial", "0"])
    print(_report([("packed: 12 signatures per trial", packed)]), flush=True)
    single = in_subprocess([*coverage, "--per-trial", "1"])
    print(_report([("one trial per signature", single)]), flush=True)
    realistic = in_subprocess(
        [
            "--signatures",
            "36",
            "--samples",
            "1",
            "--epochs",
            "100",
            "--folds",
            "5",
            "--per-trial",
            "0",
            "--subjects",
            "300",
        ]
    )
    print(_report([("one packed trial of the realistic grid", realistic)]), flush=True)

    grid_trials_single = GRID["signatures"] * GRID["tasks"] * GRID["samples"]
    grid_trials_packed = GRID["tasks"] * GRID["samples"]
    hours_single = grid_trials_single * single["wall_per_trial_s"] / 3600
    # A realistic packed trial was timed alone: its wall time is what each of the 80 costs.
    hours_packed = grid_trials_packed * realistic["sweep_wall_s"] / 3600
    print()
    print(f"{'mode':<28}{'wall s':>9}{'trials':>8}{'trials/min':>12}{'loop frac':>11}")
    for label, r in (("packed (12 sig./trial)", packed), ("one signature per trial", single)):
        print(
            f"{label:<28}{r['sweep_wall_s']:>9.1f}{r['trials']:>8}{r['trials_per_min']:>12.2f}"
            f"{r['loop_fraction']:>11.1%}"
        )
    print(
        "realistic packed trial (36 signatures x 5 folds, 100 epochs): "
        f"{realistic['sweep_wall_s']:.1f} s wall, "
        f"loop fraction {realistic['loop_fraction']:.1%} (target >= 25 %)"
    )
    print(
        "36 x 5 x 16 grid, extrapolated on this machine: one trial per signature "
        f"{grid_trials_single} trials "
        f"= {hours_single:.2f} h; packed {grid_trials_packed} trials = {hours_packed:.2f} h"
    )
    print(f"packed speed-up: {single['sweep_wall_s'] / packed['sweep_wall_s']:.1f}x")


def in_trial_comparison() -> None:
    coverage = [
        "--signatures",
        "36",
        "--tasks",
        "2",
        "--samples",
        "4",
        "--epochs",
        "100",
        "--folds",
        "5",
        "--subjects",
        "300",
        "--per-trial",
        "0",
    ]
    modes = (("full Train path (num_workers 1)", "1"), ("in the trial (num_workers 0)", "0"))
    results = []
    for label, workers in modes:
        print(f"{label}: load average before {os.getloadavg()[0]:.2f}", flush=True)
        result = in_subprocess([*coverage, "--workers", workers])
        results.append((label, result))
        print(_report([(label, result)]), flush=True)
    print()
    print(
        f"{'mode':<34}{'wall s':>9}{'trials':>8}{'at once':>9}{'s/trial':>9}{'CPU-s/trial':>13}"
        f"{'loop s':>12}{'loop frac':>11}"
    )
    for label, r in results:
        print(
            f"{label:<34}{r['sweep_wall_s']:>9.1f}{r['trials']:>8}{r['concurrent_trials']:>9}"
            f"{r['wall_per_trial_s']:>9.2f}{r['cpu_s_per_trial_total']:>13.2f}{r['loop_s_per_trial']:>12.2f}"
            f"{r['loop_fraction']:>11.1%}"
        )
    (_, full), (_, local) = results
    print(f"in-trial speed-up: {full['sweep_wall_s'] / local['sweep_wall_s']:.2f}x")


def _report(rows) -> str:
    lines = [
        (
            f"{'setting':<44}{'trials':>7}{'wall s':>9}{'s/trial':>9}"
            f"{'loop frac':>11}{'CPU-s/trial':>13}"
        )
    ]
    for label, r in rows:
        lines.append(
            f"{label:<44}{r['trials']:>7}{r['sweep_wall_s']:>9.1f}{r['wall_per_trial_s']:>9.2f}"
            f"{r['loop_fraction']:>11.1%}{r['cpu_s_per_trial_total']:>13.2f}"
        )
        for kind, cpu in r["cpu_s_per_trial"].items():
            lines.append(f"    {kind[:50]:<50}{cpu:>8.2f}")
        lines.append(f"    {'(the training loop itself)':<50}{r['loop_s_per_trial']:>8.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packed", action="store_true", help="packed vs one trial per signature")
    parser.add_argument(
        "--in-trial", action="store_true", help="full Train path vs training in the trial"
    )
    parser.add_argument("--signatures", type=int, default=1)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--subjects", type=int, default=120)
    parser.add_argument("--tasks", type=int, default=1, help="the first n of Q1..Q5")
    parser.add_argument(
        "--workers", type=int, default=1, help="ray.num_workers (0: train in the trial)"
    )
    parser.add_argument("--per-trial", type=int, default=0, help="signatures_per_trial (0: all)")
    parser.add_argument(
        "--write-grid-data", metavar="DIR", help="write the realistic grid's data root and exit"
    )
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write_grid_data:
        from tests.fixtures.toy_data import write_planted_root

        sigs = signatures(GRID["signatures"])
        root = write_planted_root(
            args.write_grid_data,
            {sig: 1.0 for sig in sigs},
            tasks=TASKS[: GRID["tasks"]],
            n_subjects=300,
        )
        print(
            f"{root}: SYNTHETIC planted-signal data, "
            f"{len(sigs)} signatures x {GRID['tasks']} tasks, 300 subjects"
        )
        return 0
    if args.packed:
        packed_comparison()
        return 0
    if args.in_trial:
        in_trial_comparison()
        return 0
    figures = run_one_setting(args)
    print(json.dumps(figures) if args.json else _report([("project defaults", figures)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
