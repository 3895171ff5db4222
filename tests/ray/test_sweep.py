"""The packed ASHA sweep over 2 signatures x 2 tasks: result files, ASHA per task, no leftovers,
with trials that train themselves (`ray.num_workers: 0`, Train's local mode). The full Train
path (a Train run per trial) is swept in tests/ray/test_release.py."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import yaml

from mmse_model.sweeps.config import load_sweep_config
from mmse_model.sweeps.plan import SignatureGroup, TrialPoint
from mmse_model.sweeps.rules import STOPPED_BY_ASHA, read_trials_csv
from mmse_model.training.checkpoint import load_checkpoint
from tests.ray.leftovers import wait_for_nothing_left

SIG, WEAK_SIG = "m2_tau1_eps0.055_lmin2", "m3_tau2_eps0.1_lmin2"

pytestmark = pytest.mark.ray

SWEEP_CONFIG = {
    "split": {"folds": 3},
    "training": {"epochs": 8, "checkpoint_every": 0},
    "early_stopping": {"patience": 20},
    "ray": {"num_workers": 0, "cpus_per_worker": 0.5},
}


def write_sweep_yaml(path: Path, **changes) -> Path:
    sweep = {
        "name": "test_sweep",
        "samples": 3,
        # With this seed the second sample draws the tiny learning rate after a good one:
        # at the first rung ASHA must stop each task's trial of it.
        "search_seed": 8,
        "search_space": {
            "training.lr": {"choice": [0.02, 0.0002]},
            "arch.h1": {"choice": [16, 32]},
        },
        "asha": {"grace_period": 2, "reduction_factor": 2},
        # One trial at a time: trials reach ASHA's rungs in trial order, so the test can
        # replay ASHA's decisions exactly.
        "resources": {"trial_cpus": 0.05, "max_concurrent_trials": 1},
        "config": SWEEP_CONFIG,
    }
    for key, value in changes.items():
        sweep[key] = {**sweep[key], **value} if isinstance(value, dict) and key in sweep else value
    path.write_text(yaml.safe_dump(sweep))
    return path


@pytest.fixture(scope="module")
def sweep_run(ray_session, toy_root, tmp_path_factory):
    """2 signatures x 2 tasks x 3 samples, every signature of a task packed in one trial;
    (experiment, stderr)."""
    from ray_jobs.sweep import run_sweep

    tmp = tmp_path_factory.mktemp("sweep")
    sweep = load_sweep_config(
        write_sweep_yaml(tmp / "sweep.yaml"), str(toy_root), str(tmp / "runs")
    )
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        run_sweep(sweep)
    return tmp / "runs" / "test_sweep", stderr.getvalue()


def trial_histories(experiment: Path) -> dict[str, list[dict]]:
    """Tune's per-epoch records of every trial, by trial id."""
    out = {}
    for folder in experiment.glob("*/result.json"):
        records = [json.loads(line) for line in folder.read_text().splitlines()]
        out[records[0]["trial_id"]] = records
    return out


def test_sweep_writes_every_result_file(sweep_run):
    experiment, _ = sweep_run
    rows = read_trials_csv((experiment / "trials.csv").read_text())
    assert len(rows) == 2 * 2 * 3  # signatures x tasks x samples
    assert len({r["trial_id"] for r in rows}) == 2 * 3  # one trial per task and sample: packed
    for trial in {r["trial_id"] for r in rows}:
        assert {r["signature"] for r in rows if r["trial_id"] == trial} == {SIG, WEAK_SIG}
    for row in rows:
        assert row["task"] in ("Q1", "Q3") and row["group"] == "all" and row["sample"] in (0, 1, 2)
        assert {k for k in row if k.startswith("hp/")} == {"hp/training.lr", "hp/arch.h1"}
        # The named checkpoint exists, loads, and is where the row's numbers come from: the
        # trial keeps it where its Train run would.
        checkpoint = Path(row["checkpoint_uri"])
        assert checkpoint.parent == experiment / "train_runs" / row["trial_id"], checkpoint
        payload = load_checkpoint(row["checkpoint_uri"])
        state = payload.state(row["signature"])
        assert row["best_epoch"] == state.best_epoch <= row["epochs_run"] <= payload.epoch
        assert (
            row["val/loss"] == state.best_val_loss
            and row["val/rmse"] == state.best_metrics["rmse"] > 0
        )
    # Every trial's checkpoints, the newest few (ray.checkpoints_to_keep) kept; none in
    # Tune's trial folders.
    per_trial = {}
    for folder in experiment.glob("train_runs/*/checkpoint_*"):
        per_trial[folder.parent] = per_trial.get(folder.parent, 0) + 1
    assert len(per_trial) == 6 and max(per_trial.values()) <= 3, per_trial
    assert not list(experiment.glob("Q*/checkpoint_*"))
    on_disk = json.loads((experiment / "summary.json").read_text())
    assert (
        on_disk["n_rows"] == 12
        and on_disk["n_trials"] == 6
        and set(on_disk["tasks"]) == {"Q1", "Q3"}
    )
    for task, entry in on_disk["tasks"].items():
        assert entry["winner"]["signature"]
        assert {
            "rmse",
            "mae",
            "r2",
            "pearson_r",
            "calibration_slope",
            "calibration_intercept",
        } <= set(entry["test"])
        assert [b["key"] for b in entry["baselines"]] == [
            "train_mean",
            "ridge",
            "hist_gradient_boosting",
        ]
    assert on_disk["format"] == "mmse-sweep-summary" and on_disk["not_recorded"] == []
    # Where the driver's time went until the results were written (sweeps/phases.py).
    phases = on_disk["provenance"]["phases"]
    assert {"trials", "scoring"} <= set(phases) and phases["trials"] > 0
    assert len(on_disk["best_per_signature_task"]) == 4
    # The trials are the record's plan: its samples, each row's hyper-parameters its sample's,
    # and each trial's folder named from its config (task, group, sample).
    record = json.loads((experiment / "sweep_record.json").read_text())
    assert record["format"] == "mmse-sweep-record" and len(record["samples"]) == 3
    for row in rows:
        sample = record["samples"][row["sample"]]
        assert {k[3:]: v for k, v in row.items() if k.startswith("hp/")} == sample
    histories = trial_histories(experiment)
    for trial_id, records in histories.items():
        point = records[0]["config"]["trial"]
        folder = next(
            p.parent for p in experiment.glob("*/result.json") if trial_id in p.read_text()
        )
        assert folder.name == f"{point['task']}-all-{point['sample']}"
        # The shared constants reach trials through with_parameters, not every result line.
        assert set(records[0]["config"]) == {"trial"}
    assert "network (winner)" in (experiment / "summary.txt").read_text()
    # Per-subject CV+ intervals and their coverage on the test subjects, and the bundle.
    for task, entry in on_disk["tasks"].items():
        assert entry["intervals"]["level"] == 0.9 and entry["intervals"]["n"] == entry["test"]["n"]
    assert "CV+ intervals cover" in (experiment / "summary.txt").read_text()
    manifest = json.loads((experiment / "bundle" / "manifest.json").read_text())
    assert set(manifest["tasks"]) == {"Q1", "Q3"} and manifest["subtotal"] is None
    for task, model in manifest["tasks"].items():
        assert model["signature"] == on_disk["tasks"][task]["winner"]["signature"]
        assert model["intervals"] == on_disk["tasks"][task]["intervals"]
    assert sorted(manifest["files"]) == ["Q1.safetensors", "Q3.safetensors"]
    # TensorBoard events from Tune's logger callback, one set per trial.
    assert len(list(experiment.glob("*/events.out.tfevents*"))) == 6


def test_asha_decisions_are_exactly_its_rule_within_each_task(sweep_run):
    """Replaying ASHA (one per task) over the recorded histories, in the order the trials
    ran, stops exactly the trials the results say ASHA stopped, at the same epoch."""
    from ray.tune.schedulers import TrialScheduler

    from ray_jobs.scheduler import PerTaskASHA

    experiment, _ = sweep_run
    rows = read_trials_csv((experiment / "trials.csv").read_text())
    histories = trial_histories(experiment)
    replay = PerTaskASHA(max_t=8, grace_period=2, reduction_factor=2)
    assert replay.set_search_properties("val/loss", "min")
    stopped_at = {}
    for trial_id in sorted(histories):
        trial = FakeTrial(trial_id, histories[trial_id][0]["config"]["trial"]["task"])
        replay.on_trial_add(None, trial)
        for record in histories[trial_id]:
            if (
                replay.on_trial_result(None, trial, record) == TrialScheduler.STOP
                and record["epoch"] < 8
            ):
                stopped_at[trial_id] = int(record["epoch"])
                break
    assert stopped_at, "the sweep was built so that ASHA stops some trial"
    for row in rows:
        if row["status"] == STOPPED_BY_ASHA:
            assert stopped_at[row["trial_id"]] == row["epochs_run"], row
        elif (
            row["trial_id"] in stopped_at
        ):  # a signature stopped early before ASHA stopped its trial
            assert (
                row["status"] == "early_stopping"
                and row["epochs_run"] < stopped_at[row["trial_id"]]
            ), row
    # Rows stopped at a rung are each compared only with trials of their own task.
    assert {r["task"] for r in rows if r["status"] == STOPPED_BY_ASHA} <= {"Q1", "Q3"}
    # The winner of each task is on the strong signature (the other carries no signal).
    summary = json.loads((experiment / "summary.json").read_text())
    assert {e["winner"]["signature"] for e in summary["tasks"].values()} == {SIG}


class FakeTrial:
    def __init__(self, trial_id: str, task: str):
        group = SignatureGroup("all", (SIG, WEAK_SIG))
        self.trial_id, self.config = trial_id, {"trial": TrialPoint(task, group, 0, {}).to_config()}


def test_nothing_left_behind_after_asha_stops(sweep_run, ray_session):
    """Nothing of the sweep's job is left reserved or running, and the watchdog, the second
    line, found nothing to release."""
    import ray

    _, stderr = sweep_run
    assert "watchdog: released" not in stderr
    # The sweep ran in this process's job: look at what that job left, not at other tests'
    # jobs sharing the head node.
    groups, actors, processes = wait_for_nothing_left(
        ray_session, ray.get_runtime_context().get_job_id()
    )
    assert not groups, groups
    assert not actors, actors
    assert not processes, processes
