"""The one way this project starts or joins Ray.

`--address` (or RAY_ADDRESS) joins a cluster; otherwise a local instance sized to this
machine starts. The runtime env carries the caller's environment variables (a run's
`RAY_TRAIN_*` settings) to every process, and for a local instance this checkout on
`PYTHONPATH`, since Ray's workers start in another directory.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parents[1])


def connect(address: str | None = None, env_vars: dict[str, str] | None = None) -> None:
    """Join the cluster at `address` (else RAY_ADDRESS), or start a local instance; a no-op
    when this process is connected already."""
    import ray

    if ray.is_initialized():
        return
    env = dict(env_vars or {})
    address = address or os.environ.get("RAY_ADDRESS")
    if not address:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (REPO_ROOT, os.environ.get("PYTHONPATH")) if p
        )
    # Worker output stays in the Ray session's logs (/tmp/ray/session_latest/logs): every
    # trial that ASHA stops would otherwise print its workers' dying tracebacks here, burying
    # the progress table. Errors still reach the driver through results and exceptions.
    if address:
        ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False)
    else:
        ray.init(num_cpus=os.cpu_count(), runtime_env={"env_vars": env}, log_to_driver=False)
