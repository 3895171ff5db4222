"""The realistic grid end to end, phase by phase, against the 7-minute target (2 cores).

Writes the realistic grid's data root (36 signatures x 5 tasks, 300 subjects, planted
signal: SYNTHETIC; not timed), then runs `mmse sweep --config configs/sweep.yaml` on it in a
fresh process, as a user runs it: 16 samples per task with ASHA, 100 epochs, then the
evaluation as shipped (repeated nested cross-validation over every subject, the baselines'
searches, the prediction intervals), the results, the bundle and the dashboard. Prints the
phases the sweep's driver measured (its `time:` line, mmse_model/sweeps/phases.py), the
process's wall time from start to exit (Ray's start and shutdown included) and its ratio to
the target.

    python benchmarks/grid_time.py                      # data and runs in a temporary folder
    python benchmarks/grid_time.py --data DIR --keep    # reuse DIR's grid data; keep the runs
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mmse_model.sweeps.phases import IN_FOLDS, WALL, parse_line

TARGET_S = 7 * 60
AIM_S = 5 * 60


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def git_commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        check=False,
        capture_output=True,
        text=True,
    )
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
        check=False,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return done.stdout.strip() + (" (with uncommitted changes)" if dirty else "")


def write_data(folder: Path) -> None:
    if any(folder.glob("*/Q5.npz")):
        return
    subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "sweep_overhead.py"),
            "--write-grid-data",
            str(folder),
        ],
        check=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="the grid's data root (written there when absent)")
    parser.add_argument("--config", default=str(REPO / "configs" / "sweep.yaml"))
    parser.add_argument("--keep", action="store_true", help="keep the runs folder")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="grid-time-") as scratch:
        data = Path(args.data) if args.data else Path(scratch) / "data"
        write_data(data)
        storage = Path(tempfile.mkdtemp(prefix="grid-runs-")) if args.keep else Path(scratch)
        storage = storage / "runs"
        command = [
            sys.executable,
            "-m",
            "mmse_app",
            "sweep",
            "--config",
            args.config,
            "--data",
            str(data),
            "--storage",
            str(storage),
        ]
        print(f"commit {git_commit()}; load average before: {load()}", flush=True)
        start = time.perf_counter()
        done = subprocess.run(
            command, check=False, capture_output=True, text=True, cwd=REPO, env=os.environ
        )
        wall = time.perf_counter() - start
        if done.returncode != 0:
            sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
            print(f"mmse sweep exited {done.returncode} after {wall:.0f} s", file=sys.stderr)
            return 1
        phases = parse_line(done.stdout)
        print(f"load average after: {load()}")
        print("SYNTHETIC grid: 36 signatures x 5 tasks x 16 samples, 300 subjects, 100 epochs")
        for name in WALL:
            if name in phases:
                print(f"  {name:<26} {phases[name]:8.1f} s")
        for name in IN_FOLDS:
            if name in phases:
                print(f"  {name:<26} {phases[name]:8.1f} CPU-s (summed over the folds)")
        print(f"  {'driver phases, total':<26} {phases['total']:8.1f} s")
        print(f"  {'process start to exit':<26} {wall:8.1f} s")
        if args.keep:
            print(f"runs kept in {storage}")
    print(
        f"grid time: {wall:.0f} s = {wall / TARGET_S:.2f}x the 7-minute target "
        f"({wall / AIM_S:.2f}x the 5-minute aim)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
