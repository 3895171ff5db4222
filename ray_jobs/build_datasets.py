"""Feature extraction as Ray tasks: `python ray_jobs/build_datasets.py --recordings ...`.

Also runs as `ray job submit --working-dir . -- python ray_jobs/build_datasets.py ...`.
It is `mmse data build` (the same options; `--no-ray` computes in the process), whose Ray
runner, `run_on_ray`, lives here. With RAY_ADDRESS set it joins that cluster; otherwise it
starts a local Ray instance.

The unit of work is one recording (subject, task) for *all* signatures, so each CSV is
parsed once; recordings are batched so a task's work outweighs its scheduling. Ray tasks
run `mmse_model.features.build.compute_items`, which imports numpy only (no torch: a Ray
worker that imports torch takes seconds to start here). The writing phase is the same
code as `--no-ray`, which is why the two paths give identical bytes.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

from mmse_model.core.domain import Signature
from mmse_model.features.build import (
    ItemResult,
    WorkItem,
    compute_items,
)
from ray_jobs.cluster import connect

# Recordings per Ray task: a few hundred ms of work each, and enough tasks for a smooth
# progress bar and load balance.
MAX_BATCH = 16


def _batches(items: list[WorkItem], n_cpus: int) -> list[list[WorkItem]]:
    size = max(1, min(MAX_BATCH, math.ceil(len(items) / (4 * max(1, n_cpus)))))
    return [items[i : i + size] for i in range(0, len(items), size)]


def run_on_ray(items: list[WorkItem], signatures: list[Signature], mode: str) -> list[ItemResult]:
    """Compute every item as Ray tasks, with a progress bar; results in any order."""
    import ray

    connect()
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


def main(argv: Sequence[str] | None = None) -> int:
    """`python ray_jobs/build_datasets.py ...` is `mmse data build ...` (on Ray unless --no-ray)."""
    from mmse_app.cli import main as mmse

    return mmse(["data", "build", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
