"""The cluster-launcher files: valid for Ray's own schema, and able to hold the GPU sweep.

`cluster.yaml` (AWS, autoscaling) and `cluster-onprem.yaml` (local provider) go through
what `ray up` does before it contacts a provider (`prepare_config`, then `validate_config`
against ray/autoscaler/ray-schema.json), and every `ray start` line is parsed by Ray's own
command-line parser. Then the resources and labels that configs/cluster_sweep.yaml asks for
(built by the same functions the sweep uses) are matched against the node types: trials that
train themselves (ray.num_workers 0, the file's choice) fit the GPU workers and not the head;
otherwise trials fit the head and nothing else and Train workers the GPU workers; either way
the cluster at full size holds `max_concurrent_trials` of them at once. No Ray instance starts.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from mmse_model.sweeps.config import load_sweep_config

REPO = Path(__file__).resolve().parents[1]
CLUSTER_FILES = ("cluster.yaml", "cluster-onprem.yaml")
UNKNOWN = 1e9  # CPUs and GPUs that Ray detects itself on a machine this file does not describe


def load(name: str) -> dict:
    return yaml.safe_load((REPO / name).read_text())


@pytest.mark.parametrize("name", CLUSTER_FILES)
def test_valid_for_rays_own_schema(name):
    import jsonschema
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = load(name)
    schema_path = Path(__import__("ray.autoscaler", fromlist=["x"]).__file__).with_name(
        "ray-schema.json"
    )
    jsonschema.validate(raw, json.loads(schema_path.read_text()))
    validate_config(prepare_config(raw))  # what `ray up` runs before it contacts the provider


def ray_starts(commands: list[str]) -> list[tuple[dict[str, str], dict]]:
    """(environment assignments, parsed options) of every `ray start` in shell commands,
    parsed by Ray's own `ray start` command (an unknown or misspelt option fails here)."""
    from ray.scripts.scripts import start

    found = []
    for command in commands:
        for part in re.split(r"&&|;", command):
            words = shlex.split(part)
            env = {}
            while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
                key, _, value = words.pop(0).partition("=")
                env[key] = value
            if len(words) >= 2 and words[0].endswith("ray") and words[1] == "start":
                found.append((env, start.make_context("ray start", words[2:]).params))
    return found


@dataclass
class NodeType:
    name: str
    head: bool
    resources: dict[str, float]
    labels: dict[str, str]
    max_count: int
    setup: list[str] = field(default_factory=list)


def node_types(name: str) -> list[NodeType]:
    """The node types of a cluster file with what each declares to Ray."""
    from ray._private.label_utils import parse_node_labels_string

    config = load(name)
    if config["provider"]["type"] != "local":
        return [
            NodeType(
                type_name,
                type_name == config["head_node_type"],
                dict(spec["resources"]),
                dict(spec.get("labels", {})),
                1 if type_name == config["head_node_type"] else spec["max_workers"],
            )
            for type_name, spec in config["available_node_types"].items()
        ]
    types = []
    for kind, commands, count in (
        ("head", config["head_start_ray_commands"], 1),
        ("worker", config["worker_start_ray_commands"], len(config["provider"]["worker_ips"])),
    ):
        [(_, options)] = ray_starts(commands)
        resources = {
            "CPU": UNKNOWN if options["num_cpus"] is None else options["num_cpus"],
            "GPU": UNKNOWN if options["num_gpus"] is None else options["num_gpus"],
            **json.loads(options["resources"] or "{}"),
        }
        types.append(
            NodeType(
                kind, kind == "head", resources, parse_node_labels_string(options["labels"]), count
            )
        )
    return types


def label_matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Ray's label selector: "v", "!v", "in(a,b)", "!in(a,b)"."""
    for key, want in selector.items():
        negate = want.startswith("!")
        want = want[1:] if negate else want
        values = {v.strip() for v in want[3:-1].split(",")} if want.startswith("in(") else {want}
        if (labels.get(key) in values) == negate:
            return False
    return True


def fits(bundle: dict[str, float], selector: dict[str, str] | None, node: NodeType) -> bool:
    return all(node.resources.get(k, 0.0) >= v for k, v in bundle.items()) and label_matches(
        selector or {}, node.labels
    )


@pytest.fixture(scope="module")
def gpu_sweep():
    return load_sweep_config(REPO / "configs" / "cluster_sweep.yaml")


@pytest.mark.parametrize("name", CLUSTER_FILES)
def test_trials_train_on_the_gpu_workers_and_never_on_the_head(name, gpu_sweep):
    """The file's layout: trial actors that train themselves, one per GPU worker."""
    check_placement(name, gpu_sweep)


@pytest.mark.parametrize("name", CLUSTER_FILES)
def test_the_file_trains_in_the_trial_on_a_gpu_worker(name, gpu_sweep):
    """configs/cluster_sweep.yaml's layout: the trial actor trains (ray.num_workers 0) and
    reserves only its worker's share (no trial slot on the head, no CPU of its own)."""
    from ray_jobs.sweep import trial_bundle
    from ray_jobs.train import in_trial, worker_resources

    ray_cfg = gpu_sweep.base_config().ray
    assert in_trial(ray_cfg) and gpu_sweep.resources.trial_resources == {}
    assert gpu_sweep.resources.trial_cpus == 0
    assert trial_bundle(gpu_sweep) == worker_resources(ray_cfg) == {"CPU": 4.0, "GPU": 1.0}


@pytest.mark.parametrize("name", CLUSTER_FILES)
@pytest.mark.parametrize("num_workers", [1, 2])
def test_train_runs_with_trials_on_the_head_fit_too(name, num_workers, gpu_sweep):
    """The other layout, a Train run per trial (ray.num_workers >= 1; 2 or more is DDP, which
    only this layout gives): trial actors on the head's slots, Train workers on GPU workers."""
    data = gpu_sweep.to_dict()
    data["resources"]["trial_resources"] = {"mmse_trial_host": 1}
    data["resources"]["max_concurrent_trials"] = 4 // num_workers  # the GPUs at max_workers
    data["config"]["ray"]["num_workers"] = num_workers
    check_placement(name, type(gpu_sweep).parse(data))


def check_placement(name: str, sweep) -> None:
    from ray_jobs.sweep import trial_bundle, trial_label_selector, trial_resources
    from ray_jobs.train import in_trial, worker_label_selector, worker_resources

    ray_cfg = sweep.base_config().ray
    assert ray_cfg.use_gpu
    types = node_types(name)
    head = [t for t in types if t.head]
    workers = [t for t in types if not t.head]
    assert len(head) == 1 and workers
    concurrent = sweep.resources.max_concurrent_trials
    assert concurrent >= 1
    if in_trial(ray_cfg):
        # The trial actor trains: its one bundle (its own share and its worker's, a GPU
        # among them) and its worker's labels fit every GPU worker type and never the head.
        trial, selector = trial_bundle(sweep), trial_label_selector(sweep)
        assert trial["GPU"] == ray_cfg.gpus_per_worker and selector == worker_label_selector(
            ray_cfg
        )
        assert not fits(trial, selector, head[0]), (trial, selector, head[0])
        assert [t for t in workers if fits(trial, selector, t)] == workers, (
            trial,
            selector,
            workers,
        )
        per_node = [
            min(t.resources.get(k, 0.0) // v for k, v in trial.items() if v) for t in workers
        ]
        assert sum(n * t.max_count for n, t in zip(per_node, workers)) >= concurrent
        return
    trial = trial_resources(sweep)
    worker, selector = worker_resources(ray_cfg), worker_label_selector(ray_cfg)

    # Trials: on the head, and on no other node type (by resources, not by luck).
    assert fits(trial, None, head[0]), (trial, head[0])
    assert not any(fits(trial, None, t) for t in workers), trial
    # Train workers: on the worker types, never on the head.
    assert not fits(worker, selector, head[0]), (worker, selector, head[0])
    train_types = [t for t in workers if fits(worker, selector, t)]
    assert train_types == workers, (worker, selector, workers)

    # At full size the cluster holds max_concurrent_trials trials with all their workers.
    assert concurrent * trial["mmse_trial_host"] <= head[0].resources["mmse_trial_host"]
    per_trial_gpus = ray_cfg.num_workers * worker["GPU"]
    cluster_gpus = sum(t.max_count * t.resources.get("GPU", 0.0) for t in train_types)
    assert concurrent * per_trial_gpus <= cluster_gpus
    per_node = [min(t.resources.get(k, 0.0) // v for k, v in worker.items()) for t in train_types]
    assert (
        sum(n * t.max_count for n, t in zip(per_node, train_types))
        >= concurrent * ray_cfg.num_workers
    )


def test_the_autoscaler_can_grow_and_shrink_the_gpu_workers():
    config = load("cluster.yaml")
    gpu = config["available_node_types"]["gpu_worker"]
    assert (
        gpu["resources"]["GPU"] == 1
        and gpu["min_workers"] == 0 < gpu["max_workers"] <= config["max_workers"]
    )
    assert config["available_node_types"][config["head_node_type"]]["resources"].get("GPU", 0) == 0


@pytest.mark.parametrize("name", CLUSTER_FILES)
def test_dashboard_private_token_auth_on_and_no_keys(name):
    config = load(name)
    text = (REPO / name).read_text()
    heads = ray_starts(config["head_start_ray_commands"])
    workers = ray_starts(config["worker_start_ray_commands"])
    assert len(heads) == 1 and len(workers) == 1
    env, options = heads[0]
    assert options["head"] and options["dashboard_host"] in (None, "127.0.0.1", "localhost"), (
        options["dashboard_host"]
    )
    for env, _ in heads + workers:
        assert env.get("RAY_AUTH_MODE") == "token", env
    assert "RAY_AUTH_MODE=disabled" not in text
    token_targets = [
        remote
        for remote, local in config["file_mounts"].items()
        if local.endswith(".ray/auth_token")
    ]
    assert token_targets and all(t.endswith(".ray/auth_token") for t in token_targets)
    # The package is installed on every node.
    commands = (
        config.get("setup_commands", [])
        + config.get("head_setup_commands", [])
        + config.get("worker_setup_commands", [])
    )
    assert any("pip install" in c and "-e ~/mmse-model" in c for c in commands)
    # No key in the settings: S3 access comes from an instance role or a credentials file.
    settings = yaml.safe_dump(config)  # without the comments
    for word in (
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SESSION_TOKEN",
        "aws_secret_access_key",
    ):
        assert word.lower() not in settings.lower(), word


def test_the_gpu_sweep_writes_to_the_bucket_the_cluster_may_write(gpu_sweep):
    assert gpu_sweep.storage.startswith("s3://")
    bucket = gpu_sweep.storage.removeprefix("s3://").split("/")[0]
    assert f"arn:aws:s3:::{bucket}" in (REPO / "cluster.yaml").read_text()
