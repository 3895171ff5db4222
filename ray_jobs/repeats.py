"""The procedure estimate's outer repeats as Ray tasks, placed like Train workers.

A sweep's driver may sit on a node that offers Ray no CPU (cluster.yaml's head), so it does
no training itself: each repeat (`mmse_model.sweeps.repeats.run_repeat`) is one Ray task
that reserves what one Train worker of the run's `ray:` config reserves (its CPUs, a GPU with
`use_gpu`, `worker_resources`) on a node with `worker_label_selector`'s labels, and trains on
that GPU when Ray gave it one. Every repeat is submitted at once; results come back by value
(a signature, an RMSE, the node id), in the order of the runs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mmse_model.core.config import RayConfig
from mmse_model.sweeps.repeats import RepeatResult, run_repeat
from mmse_model.training.loop import RunSpec
from ray_jobs.train import worker_label_selector, worker_resources


def repeat_on_this_node(run: dict[str, Any]) -> RepeatResult:
    """The body of one repeat's Ray task: train, choose, score; say which node it ran on."""
    import ray
    import torch

    device = "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"
    result = run_repeat(RunSpec.from_dict(run), device=device)
    return replace(result, ran_on=ray.get_runtime_context().get_node_id())


def task_options(ray_cfg: RayConfig) -> dict[str, Any]:
    """`.options()` of a repeat's task: one Train worker's resources and label selector."""
    resources = worker_resources(ray_cfg)
    options: dict[str, Any] = {"num_cpus": resources.pop("CPU"), "num_gpus": resources.pop("GPU", 0),
                               "resources": resources, "name": "mmse_outer_repeat"}
    selector = worker_label_selector(ray_cfg)
    if selector:
        options["label_selector"] = selector
    return options


def run_repeats_on_ray(runs: list[RunSpec]) -> list[RepeatResult]:
    """The sweep's `RepeatRunner`: one Ray task per run, all submitted before any is awaited.
    A task lost with its node is retried by Ray (tasks retry system failures by default)."""
    import ray

    remote = ray.remote(repeat_on_this_node)
    refs = [remote.options(**task_options(run.config.ray)).remote(run.to_dict()) for run in runs]
    return ray.get(refs)
