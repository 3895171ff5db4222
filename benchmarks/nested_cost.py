"""What the nested estimate costs on a demo-sized sweep, per hyper-parameter sample.

Reads a sweep config (default configs/demo.yaml) and a built data root (the demo's:
`mmse demo` leaves it in demo_out/data), then for each `--samples` k times one outer repeat of
every task in this process (CPU seconds: the search's training runs, then the baselines, which
do not depend on k), and with `--ray` runs every repeat of the config (outer_repeats x tasks)
as the sweep does, as Ray tasks on a local Ray of `--cpus` CPUs, and prints its wall time.
Run it alone on the machine (under the Ray lock where Ray tests share one), or the wall time
measures the neighbours.

    python benchmarks/nested_cost.py --data demo_out/data [--samples 1,2,4] [--ray] [--cpus 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmse_model.sweeps.config import discover, load_sweep_config
from mmse_model.sweeps.nested import NestedSearch, run_repeat


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--data", required=True)
    parser.add_argument(
        "--samples", default="1,2,4", help="comma-separated values of nested_samples to time"
    )
    parser.add_argument(
        "--ray", action="store_true", help="also run every repeat on a local Ray, as a sweep does"
    )
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--ray-only", action="store_true", help="skip the in-process timing")
    args = parser.parse_args()
    sweep = load_sweep_config(args.config, data_root=args.data)
    signatures, tasks = discover(sweep.data_root, sweep.signatures, sweep.tasks)
    root = str(Path(sweep.data_root).resolve())
    print(
        f"{args.config}: {len(tasks)} tasks x {len(signatures)} signatures, "
        f"{sweep.evaluation.outer_repeats} outer "
        f"repeats, {sweep.base_config().split.folds} folds, up to {sweep.max_t()} epochs"
    )
    for k in (int(v) for v in args.samples.split(",")):
        search = replace(NestedSearch.of_sweep(sweep), samples=k)
        if not args.ray_only:
            started, cpu = time.perf_counter(), time.process_time()
            for task in tasks:
                run_repeat(search.repeats_of(root, task, signatures)[0])
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            print(
                f"nested_samples {k}: one repeat of each task in process: "
                f"{cpu:.1f} CPU-s ({wall:.1f} s wall), "
                f"{cpu / len(tasks):.1f} CPU-s a repeat",
                flush=True,
            )
        if args.ray:
            import ray

            from ray_jobs.repeats import run_repeats_on_ray

            repeats = [r for task in tasks for r in search.repeats_of(root, task, signatures)]
            ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
            try:
                started = time.perf_counter()
                run_repeats_on_ray(repeats)
                print(
                    f"nested_samples {k}: all {len(repeats)} repeats "
                    f"as Ray tasks on {args.cpus} CPUs: "
                    f"{time.perf_counter() - started:.1f} s wall",
                    flush=True,
                )
            finally:
                ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
