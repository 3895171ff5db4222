"""Scoring a finished sweep: each task's winner and the baselines on the held-out subjects."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from mmse_model.baselines import score_baselines
from mmse_model.checkpoint import CheckpointPayload
from mmse_model.data import Split, load_group
from mmse_model.evaluate import evaluate_on_test
from mmse_model.results import TrialRow, build_summary, winners_per_task


def summarise_sweep(
    name: str, rows: list[TrialRow], data_root: str | Path, load: Callable[[str], CheckpointPayload]
) -> dict[str, Any]:
    """The summary document: every task's winner scored on the test subjects its checkpoint
    records, next to baselines fitted on the same training subjects and folds."""
    test, baselines = {}, {}
    for task, row in winners_per_task(rows).items():
        payload = load(row.checkpoint_uri)
        config = payload.training_config()
        score_range = config.score_range(task)
        data = load_group(data_root, [row.signature], task, score_range).task_data(row.signature)
        split = Split.from_dict(payload.split)
        test[task] = evaluate_on_test(payload, data, split, row.signature)
        baselines[task] = score_baselines(data, split, score_range, config.seed)
    return build_summary(rows, test, baselines, experiment=name)
