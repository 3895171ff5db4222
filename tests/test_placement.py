"""Placement and storage settings, as far as they go without a Ray instance: the resources,
label selectors and Ray objects built from the configs, the checks on the new keys, and
storage locations that would leak credentials."""

from __future__ import annotations

import pytest

from mmse_model.core.config import Config
from mmse_model.core.errors import ConfigError
from mmse_model.core.storage import check_location
from mmse_model.sweeps.config import SweepConfig, load_sweep_config

SECRET = "wJalrXUtnFEMI-not-a-real-key"


def ray_config(**values):
    return Config().with_values({f"ray.{k}": v for k, v in values.items()}).ray


def test_worker_resources_and_labels_from_the_config():
    from ray_jobs.train import scaling_config, worker_label_selector, worker_resources

    assert worker_resources(ray_config()) == {"CPU": 1.0}
    assert worker_label_selector(ray_config()) is None
    cfg = ray_config(
        use_gpu=True,
        cpus_per_worker=4,
        gpus_per_worker=0.5,
        num_workers=2,
        worker_resources={"mmse_train_worker": 1},
        worker_label_selector={"mmse-role": "train"},
    )
    assert worker_resources(cfg) == {"CPU": 4.0, "GPU": 0.5, "mmse_train_worker": 1.0}
    assert worker_label_selector(cfg) == {"mmse-role": "train"}
    scaling = scaling_config(cfg)  # Ray's own ScalingConfig accepts them
    assert scaling.num_workers == 2 and scaling.use_gpu
    assert scaling.resources_per_worker == {"CPU": 4.0, "GPU": 0.5, "mmse_train_worker": 1.0}
    assert scaling.label_selector == {"mmse-role": "train"}
    assert scaling._label_selector_per_worker(2) == [{"mmse-role": "train"}] * 2
    # Without use_gpu no GPU is asked for, whatever gpus_per_worker says.
    assert "GPU" not in worker_resources(ray_config(gpus_per_worker=2))


def test_an_outer_repeat_reserves_what_a_train_worker_does():
    import ray

    from ray_jobs.repeats import repeat_on_this_node, task_options

    assert task_options(ray_config()) == {
        "num_cpus": 1.0,
        "num_gpus": 0,
        "resources": {},
        "name": "mmse_outer_repeat",
    }
    cfg = ray_config(
        use_gpu=True,
        cpus_per_worker=4,
        gpus_per_worker=0.5,
        num_workers=2,
        worker_resources={"mmse_train_worker": 1},
        worker_label_selector={"mmse-role": "train"},
    )
    options = task_options(cfg)
    assert options == {
        "num_cpus": 4.0,
        "num_gpus": 0.5,
        "resources": {"mmse_train_worker": 1.0},
        "label_selector": {"mmse-role": "train"},
        "name": "mmse_outer_repeat",
    }
    ray.remote(repeat_on_this_node).options(**options)  # Ray's own option checks accept them


def test_the_worker_group_start_timeout_reaches_the_train_controllers_env(tmp_path, monkeypatch):
    """`ray.worker_group_start_timeout_s` is set where Train reads it: the process that builds
    the trainer (a sweep's trial actor) puts it in os.environ, and Train's own list of what
    that process hands to the controller's runtime env carries it."""
    from ray.train.v2._internal.constants import get_env_vars_to_propagate

    from mmse_model.training.loop import RunSpec
    from ray_jobs.train import build_trainer, train_env

    name = "RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S"
    assert train_env(ray_config())[name] == "600.0"  # the default: generous, not Ray's 60 s
    for variable in train_env(ray_config()):  # restored after the test: build_trainer sets them
        monkeypatch.delenv(variable, raising=False)
    config = Config().with_values({"ray.worker_group_start_timeout_s": 45})
    build_trainer(
        RunSpec(str(tmp_path), ("m2_tau1_eps0.055_lmin2",), "Q1", config),
        str(tmp_path / "runs"),
        "probe",
    )
    assert get_env_vars_to_propagate()[name] == "45.0"


def test_trial_resources_from_the_sweep_config():
    from ray_jobs.sweep import trainable, trial_resources

    assert trial_resources(SweepConfig()) == {"CPU": 0.05}
    pinned = SweepConfig.parse(
        {"resources": {"trial_cpus": 0, "trial_resources": {"mmse_trial_host": 1}}}
    )
    assert trial_resources(pinned) == {"mmse_trial_host": 1.0}
    both = SweepConfig.parse(
        {"resources": {"trial_cpus": 0.1, "trial_resources": {"mmse_trial_host": 2}}}
    )
    assert trial_resources(both) == {"CPU": 0.1, "mmse_trial_host": 2.0}
    # The trial function carries exactly that one bundle to Tune.
    assert trainable(pinned, "/tmp/exp")._resources.bundles == [{"mmse_trial_host": 1.0}]
    assert trainable(SweepConfig(), "/tmp/exp")._resources.bundles == [{"CPU": 0.05}]


def in_trial_sweep(**ray) -> SweepConfig:
    """A sweep whose trials train themselves (ray.num_workers 0), with `ray` settings."""
    return SweepConfig.parse({"config": {"ray": {"num_workers": 0, **ray}}})


def test_a_trial_that_trains_itself_reserves_its_workers_resources_and_labels():
    from ray_jobs.sweep import trainable, trial_bundle, trial_label_selector

    # Train workers reserve their own: the trial only its own share.
    assert (
        trial_bundle(SweepConfig()) == {"CPU": 0.05} and trial_label_selector(SweepConfig()) is None
    )
    assert trial_bundle(in_trial_sweep()) == {"CPU": 1.05}
    assert trial_bundle(in_trial_sweep(cpus_per_worker=0.5, gpus_per_worker=2)) == {
        "CPU": 0.55
    }  # no use_gpu
    gpu = SweepConfig.parse(
        {
            "resources": {"trial_cpus": 0},
            "config": {
                "ray": {
                    "num_workers": 0,
                    "use_gpu": True,
                    "cpus_per_worker": 4,
                    "gpus_per_worker": 1,
                    "worker_resources": {"mmse_train_worker": 1},
                    "worker_label_selector": {"mmse-role": "train"},
                }
            },
        }
    )
    assert trial_bundle(gpu) == {"CPU": 4.0, "GPU": 1.0, "mmse_train_worker": 1.0}
    assert trial_label_selector(gpu) == {"mmse-role": "train"}
    # Tune's factory hands the label selector to placement_group() with the one bundle.
    request = trainable(gpu, "/tmp/exp")._resources
    assert request.bundles == [{"CPU": 4.0, "GPU": 1.0, "mmse_train_worker": 1.0}]
    request._bind()
    assert request._bound.arguments["bundle_label_selector"] == [{"mmse-role": "train"}]
    assert "bundle_label_selector" not in trainable(in_trial_sweep(), "/tmp/exp")._resources._kwargs
    # Custom trial resources add to the worker's.
    pinned = SweepConfig.parse(
        {
            "resources": {"trial_cpus": 0.05, "trial_resources": {"mmse_trial_host": 1}},
            "config": {"ray": {"num_workers": 0, "cpus_per_worker": 0.5}},
        }
    )
    assert trial_bundle(pinned) == {"CPU": 0.55, "mmse_trial_host": 1.0}


def test_concurrent_trials_count_a_trial_that_trains_itself_once():
    from ray_jobs.sweep import fitting_trials, trial_bundle
    from ray_jobs.train import worker_resources

    def fitting(total, sweep):
        ray_cfg = sweep.base_config().ray
        return fitting_trials(
            total, trial_bundle(sweep), worker_resources(ray_cfg), ray_cfg.num_workers
        )

    small = in_trial_sweep(cpus_per_worker=0.5)
    assert fitting({"CPU": 2.0}, small) == 3  # 0.55 a trial
    assert (
        fitting({"CPU": 2.0}, SweepConfig.parse({"config": {"ray": {"cpus_per_worker": 0.5}}})) == 3
    )  # 0.05 + 0.5
    gpu = in_trial_sweep(use_gpu=True, cpus_per_worker=4, gpus_per_worker=1)
    assert fitting({"CPU": 16.0, "GPU": 4.0}, gpu) == 3  # 4.05 CPUs a trial
    assert fitting({"CPU": 32.0, "GPU": 4.0}, gpu) == 4  # then the GPUs
    ddp = SweepConfig.parse({"config": {"ray": {"num_workers": 2, "cpus_per_worker": 1}}})
    assert fitting({"CPU": 16.0}, ddp) == 7  # 0.05 + 2 x 1


def test_num_workers_zero_trains_in_the_trial_and_negative_is_refused():
    from ray_jobs.train import in_trial

    assert (
        in_trial(ray_config(num_workers=0))
        and not in_trial(ray_config())
        and not in_trial(ray_config(num_workers=2))
    )
    with pytest.raises(ConfigError, match=r"^ray\.num_workers:"):
        Config().with_values({"ray.num_workers": -1})
    # A trial that trains itself reserves its worker's CPUs: trial_cpus 0 needs nothing else.
    assert SweepConfig.parse(
        {"resources": {"trial_cpus": 0}, "config": {"ray": {"num_workers": 0}}}
    )
    with pytest.raises(ConfigError, match=r"^search_space\.ray\.num_workers: placement is fixed"):
        SweepConfig.parse({"search_space": {"ray.num_workers": {"choice": [0, 1]}}})


def test_a_trial_resumes_from_the_newest_checkpoint_in_its_folder_that_loads(tmp_path):
    """A self-training trial's folder (`train_runs/<trial_id>`): `checkpoint_<epoch>` folders
    in epoch order, other entries ignored; a restarted trial takes the newest that loads."""
    from mmse_model.training.callbacks import NullReporter
    from mmse_model.training.checkpoint import save_checkpoint
    from mmse_model.training.loop import RunSpec, train_run
    from ray_jobs.sweep import stored_checkpoints
    from ray_jobs.train import checkpoint_names, newest_checkpoint
    from tests.fixtures.toy_data import write_planted_root

    root = write_planted_root(
        tmp_path / "data", {"m2_tau1_eps0.055_lmin2": 1.0}, tasks=("Q1",), n_subjects=40
    )
    config = Config().with_overrides(["split.folds=2", "training.epochs=2"])
    payload = train_run(
        RunSpec(str(root), ("m2_tau1_eps0.055_lmin2",), "Q1", config), NullReporter()
    ).checkpoint
    folder = tmp_path / "train_runs" / "abc_00001"
    assert (
        checkpoint_names(str(folder)) == [] and newest_checkpoint(str(folder)) is None
    )  # a first attempt
    save_checkpoint(folder / "checkpoint_000002", payload)
    (folder / "checkpoint_000010").mkdir()
    (folder / "checkpoint_000010" / "model.pt").write_bytes(b"cut short by a kill")
    (
        folder / "checkpoint_2026-12-04_17-22-35.927263"
    ).mkdir()  # a Train run's name: not this trial's
    (folder / "checkpoint_000011").write_text("a file, not a checkpoint")
    (folder / "checkpoint_000012").mkdir()  # killed before its model.pt was renamed into place
    assert checkpoint_names(str(folder)) == [
        "checkpoint_000002",
        "checkpoint_000010",
        "checkpoint_000012",
    ]
    resumed = newest_checkpoint(str(folder))
    assert resumed is not None and resumed.epoch == payload.epoch == 2
    # The same folders as history records, for a trial whose result.json was cut short.
    assert stored_checkpoints(str(folder)) == [
        {"epoch": 2, "checkpoint_path": str(folder / "checkpoint_000002")},
        {"epoch": 10, "checkpoint_path": str(folder / "checkpoint_000010")},
        {"epoch": 12, "checkpoint_path": str(folder / "checkpoint_000012")},
    ]


def test_a_history_cut_short_on_storage_is_completed_from_tunes_state():
    """A driver killed while Tune copies result.json to storage leaves it short; the trial's
    last report (Tune's experiment state) and its checkpoints in storage fill it in."""
    from types import SimpleNamespace

    import pandas as pd

    from ray_jobs.sweep import trial_history

    def report(epoch, **more):
        return {"epoch": epoch, "val/loss": 1.0 / epoch, **more}

    def stored():
        return [{"epoch": e, "checkpoint_path": f"runs/t/checkpoint_{e:06d}"} for e in (2, 4, 6, 7)]

    short = SimpleNamespace(
        metrics_dataframe=pd.DataFrame([report(1), report(2, checkpoint_path="c2")]),
        metrics=report(6),
    )
    history = trial_history(short, stored)
    # Epochs past the cut come from storage, up to the last report (7: written after it).
    assert [r["epoch"] for r in history] == [1, 2, 4, 6]
    assert (
        history[1]["checkpoint_path"] == "c2"
        and history[2]["checkpoint_path"] == "runs/t/checkpoint_000004"
    )
    assert history[3] == report(6, checkpoint_path="runs/t/checkpoint_000006")
    # An empty result.json (Tune reads no frame).
    empty = SimpleNamespace(metrics_dataframe=pd.DataFrame(), metrics=report(6))
    assert [r["epoch"] for r in trial_history(empty, stored)] == [2, 4, 6]

    def untouched():
        raise AssertionError("a whole history needs no listing of storage")

    # A whole history is taken as it is, storage not listed; so is a trial that never reported.
    whole = SimpleNamespace(
        metrics_dataframe=pd.DataFrame([report(e) for e in range(1, 7)]), metrics=report(6)
    )
    assert trial_history(whole, untouched) == [report(e) for e in range(1, 7)]
    assert trial_history(SimpleNamespace(metrics_dataframe=None, metrics={}), untouched) == []


def test_concurrent_trials_count_every_resource():
    from ray_jobs.sweep import fitting_trials

    cluster = {"CPU": 16.0, "GPU": 4.0, "mmse_trial_host": 64.0}
    assert fitting_trials(cluster, {"CPU": 0.05}, {"CPU": 1.0}, 1) == 15
    assert fitting_trials(cluster, {"mmse_trial_host": 1}, {"CPU": 4.0, "GPU": 1.0}, 1) == 4
    assert fitting_trials(cluster, {"mmse_trial_host": 1}, {"CPU": 1.0, "GPU": 1.0}, 2) == 2
    assert (
        fitting_trials(cluster, {"mmse_trial_host": 1}, {"CPU": 1.0, "mmse_train_worker": 1.0}, 1)
        == 1
    )  # none: 1
    assert fitting_trials({"CPU": 2.0}, {"CPU": 0.05}, {"CPU": 0.5}, 1) == 3


@pytest.mark.parametrize(
    "values, key",
    [
        ({"ray.worker_resources": {"CPU": 2}}, "ray.worker_resources"),
        ({"ray.worker_resources": {"GPU": 1}}, "ray.worker_resources"),
        (
            {"ray.worker_resources": {"mmse_train_worker": 0}},
            "ray.worker_resources.mmse_train_worker",
        ),
        (
            {"ray.worker_resources": {"mmse_train_worker": "one"}},
            "ray.worker_resources.mmse_train_worker",
        ),
        ({"ray.worker_label_selector": {"mmse-role": ""}}, "ray.worker_label_selector"),
        ({"ray.worker_label_selector": {"mmse-role": 1}}, "ray.worker_label_selector.mmse-role"),
        ({"ray.worker_label_selector": ["mmse-role"]}, "ray.worker_label_selector"),
    ],
)
def test_bad_placement_keys_name_the_key(values, key):
    with pytest.raises(ConfigError) as info:
        Config().with_values(values)
    assert str(info.value).startswith(f"{key}:"), str(info.value)


def test_unknown_placement_keys_are_refused():
    with pytest.raises(ConfigError, match=r"ray\.worker_label: unknown key"):
        Config.parse({"ray": {"worker_label": {"a": "b"}}})
    with pytest.raises(ConfigError, match=r"resources\.trial_resource: unknown key"):
        SweepConfig.parse({"resources": {"trial_resource": {"a": 1}}})


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"resources": {"trial_cpus": 0}}, "resources.trial_cpus"),
        ({"resources": {"trial_resources": {"CPU": 1}}}, "resources.trial_resources"),
        ({"resources": {"trial_resources": {"memory": 1}}}, "resources.trial_resources"),
        (
            {"resources": {"trial_resources": {"mmse_trial_host": -1}}},
            "resources.trial_resources.mmse_trial_host",
        ),
        ({"config": {"ray": {"worker_resources": {"CPU": 1}}}}, "ray.worker_resources"),
    ],
)
def test_bad_trial_resources_name_the_key(raw, key):
    with pytest.raises(ConfigError) as info:
        SweepConfig.parse(raw)
    assert key in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "location",
    [
        f"s3://AKIAEXAMPLE:{SECRET}@bucket/prefix",
        f"s3://bucket/prefix?endpoint_override=http://h:9000&secret_key={SECRET}&access_key=AKIAEXAMPLE",
        f"s3://bucket/prefix?session_token={SECRET}",
    ],
)
def test_credentials_in_a_location_are_refused_and_never_echoed(location, tmp_path):
    with pytest.raises(ConfigError) as info:
        check_location(location, "storage")
    message = str(info.value)
    assert message.startswith("storage: the URI holds credentials") and SECRET not in message
    with pytest.raises(ConfigError) as info:
        SweepConfig.parse({"storage": location})
    assert SECRET not in str(info.value)
    config = tmp_path / "sweep.yaml"
    config.write_text("name: s\n")
    with pytest.raises(ConfigError, match="--storage: the URI holds credentials") as info:
        load_sweep_config(config, storage=location)
    assert SECRET not in str(info.value)
    from ray_jobs.train import ray_runner

    with pytest.raises(ConfigError, match="--storage"):
        ray_runner(location)


@pytest.mark.parametrize(
    "location",
    [
        "runs",
        "/shared/runs",
        "s3://bucket/prefix",
        "s3://bucket/prefix?endpoint_override=http://127.0.0.1:8333&scheme=http",
        "gs://bucket/prefix",
        "file:///shared/runs",
    ],
)
def test_plain_locations_pass(location):
    assert check_location(location, "storage") == location
    assert SweepConfig.parse({"storage": location}).storage == location


def test_a_storage_that_does_not_answer_is_one_line_exit_1(tmp_path, monkeypatch, capsys):
    """`mmse predict --model s3://...` with nothing listening at the endpoint (no Ray needed)."""
    import socket

    from mmse_app.cli import main

    with socket.socket() as sock:  # a port with nothing behind it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    uri = "s3://bucket/sweeps/s/train_runs/t/checkpoint_000001"
    # pyarrow retries for ~6 s before it gives up: one real attempt is enough.
    features = tmp_path / "x.csv"
    features.write_text(
        "subject_id," + ",".join(f"f{i}" for i in range(10)) + "\nS1," + ",".join(["0"] * 10) + "\n"
    )
    assert (
        main(
            ["predict", "--model", uri, "--input", str(features), "--out", str(tmp_path / "p.csv")]
        )
        == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "mmse: error: storage s3://bucket/sweeps/s/train_runs/t/"
    ), err
    assert "reading checkpoint_000001 failed" in err[0] and SECRET not in err[0], err
    assert not (tmp_path / "p.csv").exists()
