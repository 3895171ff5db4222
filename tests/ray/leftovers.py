"""What a finished sweep may leave behind in its job: placement groups, actors, processes."""

from __future__ import annotations

import time
from pathlib import Path

# Train's controller and workers (the full Train path), Tune's function trials.
SWEEP_CLASSES = ("TrainController", "RayTrainWorker", "ImplicitFunc", "run_trial")


def wait_for_nothing_left(ray_session, job: str, seconds: float = 30.0) -> tuple[list, list, list]:
    """(groups, actors, processes) of `job` still there once Ray's asynchronous actor deaths
    have had `seconds` to settle: placement groups not removed, sweep actors alive, and
    sweep processes under the head node."""
    from ray.util.state import list_actors, list_placement_groups

    deadline = time.monotonic() + seconds
    while True:
        groups = [
            (g.placement_group_id, g.state, g.bundles)
            for g in list_placement_groups(address=ray_session.dashboard, limit=1000, detail=True)
            if g.state != "REMOVED" and g.creator_job_id == job
        ]
        actors = [
            (a.class_name, a.state)
            for a in list_actors(
                address=ray_session.dashboard, filters=[("state", "=", "ALIVE")], limit=1000
            )
            if a.job_id == job and any(name in a.class_name for name in SWEEP_CLASSES)
        ]
        processes = [
            cmd
            for cmd in descendant_cmdlines(ray_session.pid)
            if any(name in cmd for name in SWEEP_CLASSES)
        ]
        if not (groups or actors or processes) or time.monotonic() > deadline:
            return groups, actors, processes
        time.sleep(1)


def descendant_cmdlines(root: int) -> list[str]:
    """Command lines of every process below `root` (Ray renames workers `ray::<Class>...`)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            out.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            pass
    return out
