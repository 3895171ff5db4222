"""The nested estimate's outer repeats as Ray tasks, placed like Train workers.

A sweep's driver may sit on a node that offers Ray no CPU (cluster.yaml's head), so it does
no training itself: each outer repeat (`mmse_model.sweeps.nested.run_repeat`: the reduced
search's training runs one after the other, then the baselines) is one Ray task that
reserves what one Train worker of the repeat's `ray:` config reserves (its CPUs, a GPU with
`use_gpu`, `worker_resources`) on a node with `worker_label_selector`'s labels, and trains on
that GPU when Ray gave it one. Every repeat is submitted at once; results come back by value
(each model's signature and test RMSE, the node id), in the order of the repeats.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mmse_model.core.config import RayConfig
from mmse_model.core.errors import RunFailure, first_line
from mmse_model.sweeps.nested import OuterRepeat, RepeatResult, run_repeat
from ray_jobs.train import worker_label_selector, worker_resources


def repeat_on_this_node(repeat: dict[str, Any]) -> RepeatResult:
    """The body of one repeat's Ray task: search, choose, score; say which node it ran on."""
    import ray
    import torch

    device = "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"
    result = run_repeat(OuterRepeat.from_dict(repeat), device=device)
    return replace(result, ran_on=ray.get_runtime_context().get_node_id())


def task_options(ray_cfg: RayConfig) -> dict[str, Any]:
    """`.options()` of a repeat's task: one Train worker's resources and label selector."""
    resources = worker_resources(ray_cfg)
    options: dict[str, Any] = {
        "num_cpus": resources.pop("CPU"),
        "num_gpus": resources.pop("GPU", 0),
        "resources": resources,
        "name": "mmse_outer_repeat",
    }
    selector = worker_label_selector(ray_cfg)
    if selector:
        options["label_selector"] = selector
    return options


def run_repeats_on_ray(
    repeats: list[OuterRepeat], stall_timeout_s: float = 900.0
) -> list[RepeatResult]:
    """The sweep's `RepeatRunner`: one Ray task per repeat, all submitted before any is awaited.
    A task lost with its node is retried by Ray (tasks retry system failures by default).

    The repeats run after Tune has ended, where the sweep's watchdog no longer looks: when
    none finishes for `stall_timeout_s` and none is running (all wait for resources no node
    offers), or when one fails, this ends with one line rather than waiting for ever or a
    Ray traceback; the trials are kept, and `--resume` writes the results again. (The clock is
    per wait: a repeat that trains for longer than `stall_timeout_s` is running, not stalled.)"""
    import ray
    from ray.exceptions import RayError

    remote = ray.remote(repeat_on_this_node)
    refs = [
        remote.options(**task_options(repeat.config.ray)).remote(repeat.to_dict())
        for repeat in repeats
    ]
    pending = list(refs)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=len(pending), timeout=stall_timeout_s)
            if not done and pending and not _any_running(pending):
                for ref in pending:
                    ray.cancel(ref, force=True)
                raise RunFailure(
                    f"outer repeats: {len(pending)} of {len(refs)} "
                    f"waited {stall_timeout_s:g} s for "
                    "the resources of a Train worker "
                    f"({task_options(repeats[0].config.ray)['num_cpus']} "
                    "CPU each) and no node offered them; free them, then run the same command with "
                    "--resume"
                )
        return ray.get(refs)
    except RayError as exc:
        raise RunFailure(
            f"outer repeats: a repeat failed: {first_line(exc)}; run the same command with --resume"
        ) from None


def _any_running(refs: list) -> bool:
    """Whether any of these tasks is running (not waiting for a node or its arguments)."""
    from ray.util.state import list_tasks
    from ray.util.state.exception import RayStateApiException

    ids = {ref.task_id().hex() for ref in refs}
    try:
        tasks = list_tasks(
            filters=[("name", "=", "mmse_outer_repeat")],
            detail=False,
            limit=10_000,
            raise_on_missing_output=False,
        )
    except (
        RayStateApiException,
        ConnectionError,
        TimeoutError,
    ):  # the state API unreachable: assume progress rather than kill a sweep's results
        return True
    return any(t.task_id in ids and t.state == "RUNNING" for t in tasks)
