"""What a sweep's trials are, decided before Tune sees them.

A trial is (task, signature group, hyper-parameter sample). The samples are drawn once from
the sweep's search space with its `search_seed` (`sampling.draw_samples`, Tune's meaning of
each distribution), the same for every task and group: sample i is one set of
hyper-parameters, tried on every signature of every task. The trials are listed sample by
sample (every task and group of sample 0, then of sample 1, ...), so a sweep's early trials
cover every task, and Tune receives them as one grid axis of these points
(`ray_jobs/sweep.py`): names, rows and the dashboard read the task, group, sample and
hyper-parameters from a trial's config, never from Tune's tags or counters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mmse_model.sweeps.sampling import SearchSpace, draw_samples


@dataclass(frozen=True)
class SignatureGroup:
    """Signatures a trial trains as one batched model, and the short label its names use:
    the signature itself, "all", or "g<i>"."""

    label: str
    signatures: tuple[str, ...]


@dataclass(frozen=True)
class TrialPoint:
    task: str
    group: SignatureGroup
    sample: int
    hyperparameters: dict[str, Any]

    @property
    def name(self) -> str:
        """`<task>-<signature or group label>-<sample>`: the trial's name and folder."""
        return f"{self.task}-{self.group.label}-{self.sample}"

    def to_config(self) -> dict[str, Any]:
        """The point as a Tune config value (plain types)."""
        return {
            "task": self.task,
            "group": {"label": self.group.label, "signatures": list(self.group.signatures)},
            "sample": self.sample,
            "hp": dict(self.hyperparameters),
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TrialPoint:
        """The point a trial's config holds (`{"trial": to_config()}`)."""
        point = config["trial"]
        group = point["group"]
        return cls(
            str(point["task"]),
            SignatureGroup(str(group["label"]), tuple(str(s) for s in group["signatures"])),
            int(point["sample"]),
            dict(point.get("hp") or {}),
        )


def signature_groups(signatures: Sequence[str], per_trial: int) -> list[SignatureGroup]:
    """The signature groups trials train: all of them (per_trial 0), or groups of per_trial."""
    size = per_trial or len(signatures)
    chunks = [tuple(signatures[i : i + size]) for i in range(0, len(signatures), size)]

    def label(i: int, chunk: tuple[str, ...]) -> str:
        return chunk[0] if len(chunk) == 1 else ("all" if len(chunks) == 1 else f"g{i}")

    return [SignatureGroup(label(i, chunk), chunk) for i, chunk in enumerate(chunks)]


def hyperparameter_samples(search_space: SearchSpace, samples: int, seed: int) -> list[dict]:
    """The sweep's samples: drawn once, shared by every task and signature group."""
    return draw_samples(search_space, samples, seed)


def plan_trials(
    tasks: Sequence[str],
    groups: Sequence[SignatureGroup],
    samples: Sequence[dict[str, Any]],
) -> list[TrialPoint]:
    """Every trial of a sweep, sample by sample, then task by task, then group by group."""
    return [
        TrialPoint(task, group, index, dict(sample))
        for index, sample in enumerate(samples)
        for task in tasks
        for group in groups
    ]
