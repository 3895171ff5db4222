"""Several Ray nodes on this machine (tests/ray/local_cluster.py), one cluster for the module:
a head that offers no CPU (and trial slots, `mmse_trial_host`, as cluster.yaml's head does)
and worker nodes, labelled `mmse-role=train`. Storage is the test S3 bucket, which every
node reaches with the endpoint and key in its environment.

In file order: every trial (training in its trial actor, ray.num_workers 0, placed by its
worker's labels as configs/cluster_sweep.yaml places it) and every outer repeat of the
nested estimate on the worker node, never on the head (which runs the sweep's driver);
Train workers with use_gpu only on the node that declares a GPU (logical GPUs); trial actors
on labelled nodes while a worker node is removed mid-sweep, the lost trial retried elsewhere
from its checkpoint in the bucket (the last test: it kills a node). Where each actor ran is
read from Ray's state API after the fact.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from pyarrow import fs as pafs

from tests.ray.conftest import S3_ENV, SIG, free_port
from tests.ray.local_cluster import LocalCluster, cluster_env

pytestmark = pytest.mark.ray

TRIAL_CLASSES = ("ImplicitFunc", "run_trial")


@pytest.fixture(scope="module")
def cluster(s3_server):
    root = (
        Path("/tmp") / f"mmse_mn_{uuid.uuid4().hex[:6]}"
    )  # short: Ray's socket paths are length-limited
    root.mkdir()
    cluster = LocalCluster(root, cluster_env(S3_ENV))
    try:
        cluster.start_head(
            num_cpus=0,
            resources={"mmse_trial_host": 8},
            labels="mmse-role=head",
            port=free_port(),
            dashboard_port=free_port(),
            extra_ports=[free_port(), free_port()],
        )
        cluster.add_node("worker", "127.0.0.2", num_cpus=2, labels="mmse-role=train")
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def sweep_yaml(
    path: Path,
    name: str,
    *,
    epochs: int,
    samples: int = 2,
    resources: dict | None = None,
    ray: dict | None = None,
    outer_repeats: int = 0,
) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "signatures": [SIG],
                "tasks": ["Q1"],
                "samples": samples,
                "search_space": {"training.lr": {"loguniform": [0.002, 0.01]}},
                "asha": {"grace_period": epochs},  # = epochs: ASHA stops nothing
                "resources": {"trial_cpus": 0.05, **(resources or {})},
                "watchdog": {"stall_timeout_s": 300},
                "evaluation": {"outer_repeats": outer_repeats, "nested_samples": 2},
                "config": {
                    "split": {"folds": 3},
                    "training": {"epochs": epochs, "checkpoint_every": 1},
                    "early_stopping": {"patience": epochs},  # every trial runs out
                    # Trials train themselves, placed by their worker's labels (cluster_sweep.yaml).
                    "ray": {
                        "num_workers": 0,
                        "cpus_per_worker": 0.5,
                        "worker_label_selector": {"mmse-role": "train"},
                        **(ray or {}),
                    },
                },
            }
        )
    )
    return path


def start_sweep(
    cluster: LocalCluster, config: Path, data: Path, storage: str, log: Path
) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "mmse_app",
        "sweep",
        "--config",
        str(config),
        "--data",
        str(data),
        "--storage",
        storage,
    ]
    return subprocess.Popen(
        command,
        env=cluster.client_env,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        cwd=log.parent,
    )


def job_ids(cluster: LocalCluster) -> set[str]:
    from ray.util.state import list_jobs

    return {j.job_id for j in list_jobs(address=cluster.dashboard) if j.job_id}


def actors_of(cluster: LocalCluster, jobs: set[str], state: str | None = None) -> list:
    from ray.util.state import list_actors

    filters = [("state", "=", state)] if state else None
    return [
        a
        for a in list_actors(address=cluster.dashboard, filters=filters, limit=10000, detail=True)
        if a.job_id in jobs
    ]


def kind(actor) -> str:
    if "RayTrainWorker" in actor.class_name:
        return "worker"
    if "TrainController" in actor.class_name:
        return "controller"
    if any(name in actor.class_name for name in TRIAL_CLASSES):
        return "trial"
    return "other"


def newest_checkpoints(fs, folder: str) -> dict[str, int]:
    """Trial id -> the epoch of its newest checkpoint in `folder`, `<trial id>/checkpoint_<epoch>`
    folders."""
    try:
        infos = fs.get_file_info(pafs.FileSelector(folder, recursive=True))
    except FileNotFoundError:
        return {}
    newest: dict[str, int] = {}
    for info in infos:
        if info.path.endswith("/model.pt") and "/checkpoint_" in info.path:
            trial, name = info.path[len(folder) + 1 :].split("/")[:2]
            newest[trial] = max(newest.get(trial, 0), int(name.removeprefix("checkpoint_")))
    return newest


def latest_reports(temp_dir: Path, name: str) -> list[dict]:
    """Each trial's newest report, read from the driver's staging folder on its node (the
    driver writes a report there at once; storage gets a copy every few seconds)."""
    latest = []
    for path in temp_dir.glob(f"session_2*/artifacts/*/{name}/driver_artifacts/*/result.json"):
        lines = path.read_text().split("\n")[:-1]  # a report being written is left out
        if lines:
            latest.append(json.loads(lines[-1]))
    return latest


def trials_csv(s3_server, experiment_key: str) -> list[dict]:
    with s3_server.filesystem().open_input_stream(f"{experiment_key}/trials.csv") as stream:
        return list(csv.DictReader(io.StringIO(stream.read().decode())))


def summary_json(s3_server, experiment_key: str) -> dict:
    with s3_server.filesystem().open_input_stream(f"{experiment_key}/summary.json") as stream:
        return json.loads(stream.read().decode())


def repeat_tasks(cluster: LocalCluster, jobs: set[str], expected: int) -> list:
    """The outer repeats' Ray tasks of `jobs` as the state API lists them, once `expected`
    have finished (task events reach the state API a little after the tasks end)."""
    from ray.util.state import list_tasks

    deadline = time.monotonic() + 120  # a hang guard
    while True:
        tasks = [
            t
            for t in list_tasks(
                address=cluster.dashboard,
                filters=[("name", "=", "mmse_outer_repeat")],
                limit=1000,
                detail=True,
            )
            if t.job_id in jobs
        ]
        if sum(t.state == "FINISHED" for t in tasks) >= expected or time.monotonic() > deadline:
            return tasks
        time.sleep(0.5)


def test_every_trial_runs_on_the_worker_node(cluster, s3_server, toy_root, tmp_path):
    """Head without CPUs, one worker node: every trial actor (training itself) runs on the
    worker node, and the results and checkpoints land in the shared bucket. So does
    every outer repeat of the nested estimate, a Ray task placed like a Train worker:
    never on the head, where the sweep's driver runs."""
    from mmse_model.sweeps.config import load_sweep_config
    from mmse_model.sweeps.nested import NETWORK, NestedSearch, run_repeats_in_process

    prefix = f"mn-{uuid.uuid4().hex[:8]}"
    before = job_ids(cluster)
    config = sweep_yaml(tmp_path / "sweep.yaml", "on_worker", epochs=3, outer_repeats=1)
    driver = start_sweep(
        cluster, config, toy_root, f"s3://{s3_server.bucket}/{prefix}", tmp_path / "driver.log"
    )
    assert driver.wait(timeout=900) == 0, (tmp_path / "driver.log").read_text()[-4000:]
    jobs = job_ids(cluster) - before
    actors = [a for a in actors_of(cluster, jobs) if kind(a) != "other"]
    assert {kind(a) for a in actors} == {"trial"}, [a.class_name for a in actors]  # no Train run
    places = {cluster.name_of(a.node_id) for a in actors}
    assert places == {"worker"}, [(a.class_name, cluster.name_of(a.node_id)) for a in actors]
    rows = trials_csv(s3_server, f"{s3_server.bucket}/{prefix}/on_worker")
    assert len(rows) == 2 and len({r["trial_id"] for r in rows}) == 2
    # Each row's checkpoint is in its trial's folder in the bucket, where the trial wrote it.
    folder = f"s3://{s3_server.bucket}/{prefix}/on_worker/train_runs/"
    assert all(
        r["checkpoint_uri"].startswith(f"{folder}{r['trial_id']}/checkpoint_") for r in rows
    ), rows
    # Each outer fold says which node it ran on: the worker node, all five of them.
    summary = summary_json(s3_server, f"{s3_server.bucket}/{prefix}/on_worker")
    estimate = summary["tasks"]["Q1"]["estimate"]
    assert [cluster.name_of(node) for node in estimate["ran_on"]] == ["worker"], estimate
    # Ray's own record agrees: five outer-fold tasks of the sweep's job, on the worker node.
    tasks = repeat_tasks(cluster, jobs, 5)
    assert (
        sorted((t.state, cluster.name_of(t.node_id)) for t in tasks) == [("FINISHED", "worker")] * 5
    ), tasks
    # And they give the numbers the in-process runner gives for the sweep's nested search.
    search = NestedSearch.of_sweep(load_sweep_config(config))
    here = run_repeats_in_process(search.repeats_of(toy_root.resolve(), "Q1", [SIG]))
    network = estimate["network"]
    assert network["fold_rmse"] == [r.models[NETWORK].rmse for r in here]
    assert network["signatures_chosen"] == {SIG: 5}


def test_gpu_train_workers_only_on_the_node_that_declares_gpus(cluster, tmp_path):
    """use_gpu: both Train workers (half a GPU each) go to the node with the (logical) GPU,
    although the CPU worker node has room for them; Ray hands them that GPU."""
    from mmse_model.core.config import Config

    gpu = cluster.nodes.get("gpu") or cluster.add_node(
        "gpu", "127.0.0.3", num_cpus=1, num_gpus=1, labels="mmse-role=train"
    )
    config = Config().with_values(
        {
            "ray.use_gpu": True,
            "ray.num_workers": 2,
            "ray.cpus_per_worker": 0.25,
            "ray.gpus_per_worker": 0.5,
            "ray.worker_label_selector": {"mmse-role": "train"},
        }
    )
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    (tmp_path / "seen").mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.ray.placement_probe",
            str(tmp_path / "config.json"),
            str(tmp_path / "storage"),
            str(tmp_path / "seen"),
        ],
        env=cluster.client_env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    probe = json.loads(
        next(line for line in done.stdout.splitlines() if line.startswith("PROBE "))[6:]
    )
    assert cluster.name_of(probe["driver_node"]) == "head"
    workers = [a for a in actors_of(cluster, {probe["job_id"]}) if kind(a) == "worker"]
    assert len(workers) == 2 and {a.node_id for a in workers} == {gpu.node_id}, [
        (a.class_name, cluster.name_of(a.node_id)) for a in workers
    ]
    seen = [json.loads((tmp_path / "seen" / f"rank{r}.json").read_text()) for r in range(2)]
    assert {s["node_id"] for s in seen} == {gpu.node_id}, seen
    assert all(s["gpu_ids"] == ["0"] and s["cuda_visible_devices"] == "0" for s in seen), (
        seen
    )  # the one GPU, shared


def test_worker_node_removed_mid_sweep(cluster, s3_server, toy_root, tmp_path):
    """Trial actors that train themselves on `mmse-role=train` nodes (their worker's label
    selector), checkpoints in the bucket. Once both trials have checkpointed, the worker node
    running one is killed: Tune retries that trial on the remaining nodes from its last
    checkpoint, and the sweep completes with every trial exactly once in trials.csv. Kills a
    node: the module's last test."""
    cluster.nodes.get("spare") or cluster.add_node(
        "spare", "127.0.0.4", num_cpus=2, labels="mmse-role=train"
    )
    # Each epoch waits for Tune to take its report and a checkpoint is uploaded every epoch,
    # so a trial trains for a few seconds however fast the machine. The victim is the node of
    # a trial the driver has just seen far from its end: a kill decided on the bucket and the
    # actor list alone (both slow to list on a busy machine) once hit a finished trial.
    epochs = 60
    prefix = f"mn-{uuid.uuid4().hex[:8]}"
    experiment_key = f"{s3_server.bucket}/{prefix}/node_lost"
    config = sweep_yaml(
        tmp_path / "sweep.yaml", "node_lost", epochs=epochs, resources={"trial_cpus": 0}
    )
    before = job_ids(cluster)
    log = tmp_path / "driver.log"
    driver = start_sweep(cluster, config, toy_root, f"s3://{s3_server.bucket}/{prefix}", log)
    fs = s3_server.filesystem()
    victim = None
    try:
        deadline = time.monotonic() + 600
        while victim is None and driver.poll() is None and time.monotonic() < deadline:
            checkpointed = newest_checkpoints(fs, f"{experiment_key}/train_runs")
            for last in latest_reports(cluster.nodes["head"].temp_dir, "node_lost"):
                # Its second checkpoint is in the bucket: the first is whole.
                if checkpointed.get(last["trial_id"], 0) >= 2 and last["epoch"] <= epochs // 2:
                    victim = {n.ip: n.name for n in cluster.nodes.values()}[last["node_ip"]]
                    cluster.kill(victim)
                    break
            time.sleep(0.1)
        assert victim not in (None, "head"), (victim, log.read_text()[-3000:])
        assert driver.wait(timeout=900) == 0, log.read_text()[-4000:]
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()

    rows = trials_csv(s3_server, experiment_key)
    assert len(rows) == 2 and len({r["trial_id"] for r in rows}) == 2, rows
    assert all(r["status"] == "completed" and int(r["epochs_run"]) == epochs for r in rows), rows

    actors = [a for a in actors_of(cluster, job_ids(cluster) - before) if kind(a) != "other"]
    where = [(kind(a), cluster.name_of(a.node_id), a.state) for a in actors]
    # Only trial actors (no Train run), never on the head: placed by their labels.
    assert {k for k, _, _ in where} == {"trial"} and "head" not in {p for _, p, _ in where}, where
    # The trial actors on the lost node died with it, and each lost trial was retried by Tune
    # on a node that remains, from its last checkpoint in the bucket (not from epoch 1).
    lost = [
        a
        for a in actors
        if cluster.name_of(a.node_id) == victim
        and "node" in json.dumps(a.death_cause or {}).lower()
    ]
    assert lost, [(cluster.name_of(a.node_id), a.death_cause) for a in actors]
    assert len(actors) >= len(rows) + len(lost), where
    elsewhere = [a for a in actors if cluster.name_of(a.node_id) != victim]
    assert len(elsewhere) >= len(lost) and all(
        cluster.nodes[cluster.name_of(a.node_id)].alive for a in elsewhere
    ), where
    histories = {}  # trial id -> epochs reported, from Tune's trial folders
    for info in fs.get_file_info(pafs.FileSelector(experiment_key, recursive=True)):
        if info.path.endswith("/result.json"):
            with fs.open_input_stream(info.path) as stream:
                lines = [json.loads(line) for line in stream.read().decode().splitlines()]
            histories[lines[0]["trial_id"]] = [r["epoch"] for r in lines]
    assert set(histories) == {r["trial_id"] for r in rows}, histories
    for row in rows:
        assert row["checkpoint_uri"].startswith(
            f"s3://{experiment_key}/train_runs/{row['trial_id']}/"
        ), row
        assert histories[row["trial_id"]].count(1) == 1, histories
