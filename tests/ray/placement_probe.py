"""A driver for the GPU placement test: one TorchTrainer run whose scaling comes from a
training config's `ray:` section through `ray_jobs.train.scaling_config` (what every run
and sweep trial uses), and whose workers only report where they run and which GPUs Ray gave
them. Logical GPUs are enough: nothing touches CUDA, and the process group is gloo.

    RAY_ADDRESS=... python -m tests.ray.placement_probe CONFIG.json STORAGE OUT
writes OUT/rank<r>.json per worker (its node, GPU ids, CUDA_VISIBLE_DEVICES) and prints one
line: PROBE {"job_id": ..., "driver_node": ...}
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def probe_loop(config: dict) -> None:
    import ray
    import ray.train

    rank = ray.train.get_context().get_world_rank()
    seen = {
        "rank": rank,
        "node_id": ray.get_runtime_context().get_node_id(),
        "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
    }
    Path(config["out"], f"rank{rank}.json").write_text(
        json.dumps(seen)
    )  # this machine: one file system
    ray.train.report({"rank": rank})


def main(config_path: str, storage: str, out: str) -> None:
    import ray
    from ray.train import RunConfig
    from ray.train.torch import TorchConfig

    from mmse_model.core.config import Config
    from ray_jobs import ray_internals
    from ray_jobs.train import connect, scaling_config

    config = Config.from_dict(json.loads(Path(config_path).read_text()))
    connect(None, config)
    trainer = ray_internals.lean_torch_trainer()(
        probe_loop,
        train_loop_config={"out": out},
        scaling_config=scaling_config(config.ray),
        torch_config=TorchConfig(backend="gloo"),  # nccl needs real GPUs
        run_config=RunConfig(name="placement_probe", storage_path=storage),
    )
    trainer.fit()
    context = ray.get_runtime_context()
    print(
        "PROBE "
        + json.dumps({"job_id": context.get_job_id(), "driver_node": context.get_node_id()}),
        flush=True,
    )


if __name__ == "__main__":  # pragma: no cover
    main(*sys.argv[1:4])
