"""Feature extraction as Ray tasks: `python ray_jobs/build_datasets.py --recordings ...`.

Also runs as `ray job submit --working-dir . -- python ray_jobs/build_datasets.py ...`.
Takes the options of `mmse data build` (which uses `add_arguments` and `run_build` from
here, with `--no-ray` choosing the in-process runner). With RAY_ADDRESS set it joins that
cluster; otherwise it starts a local Ray instance.

The unit of work is one recording (subject, task) for *all* signatures, so each CSV is
parsed once; recordings are batched so a task's work outweighs its scheduling. Ray tasks
run `mmse_model.features.build.compute_items`, which imports numpy only (no torch: a Ray
worker that imports torch takes seconds to start here). The writing phase is the same
code as `--no-ray`, which is why the two paths give identical bytes.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from mmse_model.core.domain import Signature
from mmse_model.core.errors import run_command
from mmse_model.features.build import (
    MODES,
    BuildWarning,
    ItemResult,
    Runner,
    WorkItem,
    build_datasets,
    compute_items,
)
from mmse_model.features.recordings import DEFAULT_LIMITS, RecordingLimits

# Recordings per Ray task: a few hundred ms of work each, and enough tasks for a smooth
# progress bar and load balance.
MAX_BATCH = 16


def _batches(items: list[WorkItem], n_cpus: int) -> list[list[WorkItem]]:
    size = max(1, min(MAX_BATCH, math.ceil(len(items) / (4 * max(1, n_cpus)))))
    return [items[i : i + size] for i in range(0, len(items), size)]


def _ensure_ray():
    import ray

    if not ray.is_initialized():
        repo_root = str(Path(__file__).resolve().parents[1])
        if os.environ.get("RAY_ADDRESS"):
            ray.init(address=os.environ["RAY_ADDRESS"])
        else:
            # Local workers start in another directory: point them at this checkout.
            path = os.pathsep.join(p for p in (repo_root, os.environ.get("PYTHONPATH")) if p)
            ray.init(runtime_env={"env_vars": {"PYTHONPATH": path}})
    return ray


def run_on_ray(items: list[WorkItem], signatures: list[Signature], mode: str) -> list[ItemResult]:
    """Compute every item as Ray tasks, with a progress bar; results in any order."""
    ray = _ensure_ray()
    n_cpus = int(ray.cluster_resources().get("CPU", 1))
    remote = ray.remote(num_cpus=1)(compute_items)
    signatures_ref = ray.put(signatures)
    pending = {
        remote.remote(batch, signatures_ref, mode): len(batch) for batch in _batches(items, n_cpus)
    }
    results: list[ItemResult] = []
    bar = _progress(len(items))
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            results.extend(ray.get(ref))
            bar.update(pending.pop(ref))
    bar.close()
    return results


def _progress(total: int):
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, desc="rqa (ray)", unit="rec", file=sys.stderr)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--recordings",
        required=True,
        type=Path,
        help="directory of <subject_id>/<Q>.csv recordings",
    )
    parser.add_argument(
        "--labels", required=True, type=Path, help="labels.csv: subject_id,Q1,...,Q5[,mmse]"
    )
    parser.add_argument(
        "--signature",
        required=True,
        action="append",
        dest="signatures",
        metavar="SIG",
        help="m<int>_tau<int>_eps<decimal>_lmin<int> (repeatable)",
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        help="data root to write: new, empty, or one this command wrote (replaced whole)",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="trajectory",
        help="RQA on gaze samples (default) or on I-VT fixation sequences",
    )
    parser.add_argument(
        "--max-duration-s",
        type=float,
        default=DEFAULT_LIMITS.max_duration_s,
        metavar="S",
        help="skip a recording longer than this (default %(default)g s)",
    )
    parser.add_argument(
        "--max-file-mb",
        type=float,
        default=DEFAULT_LIMITS.max_file_mb,
        metavar="MB",
        help="skip a recording file larger than this, unread (default %(default)g MB)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="a recording or subject that would be skipped is an error (exit 2, nothing written)",
    )


def run_build(args: argparse.Namespace, runner: Runner, prog: str) -> int:
    """Build the datasets with `runner`, list skipped recordings as warnings, summarise."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BuildWarning)
        limits = RecordingLimits(max_duration_s=args.max_duration_s, max_file_mb=args.max_file_mb)
        report = build_datasets(
            args.recordings,
            args.labels,
            args.signatures,
            args.out,
            args.mode,
            runner,
            limits,
            args.strict,
        )
    for warning in caught:
        if issubclass(warning.category, BuildWarning):
            print(f"{prog}: warning: {warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    counts = ", ".join(f"{task} {n}" for task, n in report.subjects_per_task.items())
    print(f"wrote {len(report.written)} dataset files (subjects per task: {counts})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="build_datasets.py", description="RQA datasets from gaze recordings, on Ray"
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_command(
        "build_datasets.py", lambda: run_build(args, run_on_ray, "build_datasets.py")
    )


if __name__ == "__main__":
    sys.exit(main())
