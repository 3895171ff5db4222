"""The results contract changes no number: a sweep's recorded rows and checkpoints, scored
again by today's code, give the winners, metrics, baselines, comparisons, intervals and
subtotal that the code before the contract wrote (commit 3b96bae).

`tests/fixtures/results_3b96bae/` holds what `tests/fixtures/trained_sweep.py` left at that
commit (five tasks, 60 planted-signal subjects, two signatures, one sample): its trials.csv,
summary.json (format 0, before the contract), test_predictions.csv and the checkpoints the
rows name. Here the rows are read back from trials.csv, scored by `summarise_sweep` against
the same data root (regenerated from its seed), and compared with the old summary read
through `read_summary`, which upgrades it. The nested estimate trains new networks, so it is
left out of the replay. The checkpoints hold format-2 payloads: a checkpoint format change
means regenerating this fixture at the commit before it.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from mmse_model.core.domain import TASKS
from mmse_model.sweeps.rules import TrialRow, read_trials_csv
from mmse_model.sweeps.summary import SUBTOTAL, summarise_sweep
from mmse_model.sweeps.summary_schema import Coverage, Scores, Summary, read_summary
from mmse_model.training.checkpoint import load_checkpoint
from tests.fixtures.toy_data import write_planted_root
from tests.fixtures.trained_sweep import STRONG, WEAK

RECORDED = Path(__file__).parent / "fixtures" / "results_3b96bae"
TOLERANCE = {"rel": 1e-9, "abs": 1e-12}


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> tuple[Summary, Summary, list[dict], list[dict]]:
    """(recorded summary, replayed summary, recorded predictions, replayed predictions)."""
    tmp = tmp_path_factory.mktemp("replay")
    root = write_planted_root(tmp / "data", {STRONG: 1.0, WEAK: 0.0}, tasks=TASKS, n_subjects=60)
    experiment = tmp / "runs" / "trained"
    shutil.copytree(RECORDED / "train_runs", experiment / "train_runs")

    def placed(text: str) -> str:
        return text.replace("@EXPERIMENT@", str(experiment)).replace("@DATA@", str(root))

    recorded = read_summary("summary.json", placed((RECORDED / "summary.json").read_text()))
    rows = [
        TrialRow(
            trial_id=r["trial_id"],
            signature=r["signature"],
            task=r["task"],
            group=r["group"],
            sample=r["sample"],
            hyperparameters={k[3:]: v for k, v in r.items() if k.startswith("hp/")},
            epochs_run=r["epochs_run"],
            best_epoch=r["best_epoch"],
            status=r["status"],
            validation={k[4:]: v for k, v in r.items() if k.startswith("val/") and v is not None},
            checkpoint_uri=r["checkpoint_uri"],
        )
        for r in read_trials_csv(placed((RECORDED / "trials.csv").read_text()))
    ]
    summary, predictions = summarise_sweep("trained", rows, root, load_checkpoint)
    with open(RECORDED / "test_predictions.csv", newline="") as handle:
        old_predictions = list(csv.DictReader(handle))
    return recorded, summary, old_predictions, predictions


def same_scores(old: Scores | None, new: Scores | None, added: tuple[str, ...] = ()) -> None:
    """Equal scores; `added`: metrics the old summary did not record there."""
    assert (old is None) == (new is None)
    if old is None or new is None:
        return
    for field in Scores.model_fields:
        a, b = getattr(old, field), getattr(new, field)
        if field in added:
            assert a is None and b is not None, field
        elif a is None or b is None:
            assert a == b, field
        elif isinstance(a, tuple):
            assert b == pytest.approx(a, **TOLERANCE), field
        else:
            assert b == pytest.approx(a, **TOLERANCE), field


def same_coverage(old: Coverage | None, new: Coverage | None) -> None:
    assert old is not None and new is not None
    assert (new.level, new.n, new.covered) == (old.level, old.n, old.covered)
    assert new.coverage_ci == pytest.approx(old.coverage_ci, **TOLERANCE)
    assert new.mean_width == pytest.approx(old.mean_width, **TOLERANCE)


def test_winners_metrics_baselines_and_verdicts_are_the_recorded_ones(replayed):
    recorded, summary, _, _ = replayed
    # Written after every field it had existed, it lacks only what came with the contract.
    assert set(recorded.not_recorded) == {
        "looks",
        "subtotal.estimate",
        "subtotal.prediction_intervals",
        *(f"tasks.{t}.{key}" for t in TASKS for key in ("estimate", "prediction_intervals")),
    }
    assert list(summary.tasks) == list(recorded.tasks) == list(TASKS)
    for task, old in recorded.tasks.items():
        new = summary.tasks[task]
        assert new.winner == old.winner
        same_scores(old.test, new.test)
        assert [b.key for b in new.baselines] == [b.key for b in old.baselines]
        for a, b in zip(old.baselines, new.baselines):
            assert (b.signature, b.settings, b.primary) == (a.signature, a.settings, a.primary)
            assert b.cv_rmse == pytest.approx(a.cv_rmse, **TOLERANCE)
            same_scores(a.test, b.test)
        assert [(c.baseline, c.result, c.words) for c in new.comparisons] == [
            (c.baseline, c.result, c.words) for c in old.comparisons
        ]
        for a, b in zip(old.comparisons, new.comparisons):
            assert b.rmse_diff_ci == pytest.approx(a.rmse_diff_ci, **TOLERANCE)
        assert (new.verdict.result, new.verdict.words) == (old.verdict.result, old.verdict.words)
        assert new.training == old.training
        same_coverage(old.intervals, new.intervals)
    assert [(r.task, r.signature, r.trial_id) for r in summary.best_per_signature_task] == [
        (r.task, r.signature, r.trial_id) for r in recorded.best_per_signature_task
    ]
    assert summary.row_status == recorded.row_status


def test_the_subtotal_is_the_recorded_one(replayed):
    recorded, summary, _, _ = replayed
    old, new = recorded.subtotal, summary.subtotal
    assert (new.tasks, new.n, new.range, new.all_five_tasks) == (
        old.tasks,
        old.n,
        old.range,
        old.all_five_tasks,
    )
    # The subtotal now keeps every metric a task does; before, a subset.
    same_scores(old.test, new.test, added=("mse", "explained_variance", "mape"))
    same_coverage(old.intervals, new.intervals)


def test_each_test_subjects_prediction_is_the_recorded_one(replayed):
    """The winners' rows are those written before; the subtotal's rows are new, one per test
    subject, summing its tasks' predictions."""
    _, summary, old_rows, new_rows = replayed
    tasks = [r for r in new_rows if r["task"] != SUBTOTAL]
    assert [(r["task"], r["signature"], r["subject_id"]) for r in tasks] == [
        (r["task"], r["signature"], r["subject_id"]) for r in old_rows
    ]
    for old, new in zip(old_rows, tasks):
        for key in ("true", "predicted", "fold_sd", "lo", "hi"):
            assert new[key] == pytest.approx(float(old[key]), **TOLERANCE), key
    sums = [r for r in new_rows if r["task"] == SUBTOTAL]
    assert len(sums) == summary.subtotal.n
    first = sums[0]
    parts = [r for r in tasks if r["subject_id"] == first["subject_id"]]
    assert first["predicted"] == pytest.approx(sum(r["predicted"] for r in parts))
    assert first["true"] == pytest.approx(sum(r["true"] for r in parts))


def test_a_bundle_written_before_the_contract_predicts_what_it_did(replayed, tmp_path):
    """A version-1 bundle (its manifest read through the upgrade) gives, byte for byte, the
    predictions CSV the code of its time wrote for the same features."""
    from mmse_app.cli import main

    recorded, _, _, _ = replayed
    root = Path(recorded.provenance.data_root)
    predictions = tmp_path / "predictions.csv"
    argv = ["predict", "--bundle", str(RECORDED / "bundle"), "--features", str(root)]
    assert main([*argv, "--out", str(predictions)]) == 0
    assert predictions.read_text() == (RECORDED / "bundle_predictions.csv").read_text()
