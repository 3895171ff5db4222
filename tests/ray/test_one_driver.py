"""One driver per experiment, and `--resume` only onto the same sweep, with real drivers.

The first driver's trials cannot start (the test's own job reserves every CPU), so it holds
the experiment for as long as the test needs, whatever the machine's speed."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from tests.fixtures.toy_data import write_planted_root
from tests.ray.conftest import SIG, WEAK_SIG

pytestmark = pytest.mark.ray

HANG_GUARD_S = 300  # only against a hang; nothing here waits on a clock otherwise


def sweep_yaml(path: Path, samples: int = 1) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "name": "one_driver",
                "signatures": [SIG],
                "tasks": ["Q1"],
                "samples": samples,
                "search_space": {"training.lr": {"loguniform": [0.002, 0.02]}},
                "asha": {"grace_period": 2, "reduction_factor": 2},
                "resources": {"trial_cpus": 0.05},
                "watchdog": {"interval_s": 1.0, "stall_timeout_s": 3600},
                "config": {
                    "split": {"folds": 3},
                    "training": {"epochs": 4},
                    "ray": {"num_workers": 0, "cpus_per_worker": 0.5},
                },
            }
        )
    )
    return path


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"hang guard: {what}")
        time.sleep(0.2)


def test_a_second_driver_is_refused_and_a_changed_resume_too(ray_session, toy_root, tmp_path):
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group

    data = tmp_path / "data"
    shutil.copytree(toy_root, data)
    config = sweep_yaml(tmp_path / "sweep.yaml")
    command = [
        sys.executable,
        "-m",
        "mmse_app.cli",
        "sweep",
        "--config",
        str(config),
        "--data",
        str(data),
        "--storage",
        str(tmp_path / "runs"),
    ]
    experiment = tmp_path / "runs" / "one_driver"
    hog = placement_group([{"CPU": 2.0}])  # no trial of the first driver can start
    ray.get(hog.ready())
    first = subprocess.Popen(
        command, env=ray_session.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # It holds the lock, and Tune has saved the sweep's state (so --resume has one to find).
        wait_for(
            lambda: first.poll() is not None or list(experiment.glob("experiment_state-*.json")),
            "the first driver's Tune state",
        )
        assert first.poll() is None, first.communicate()[1][-3000:]
        lock_text = (experiment / "driver.lock").read_text()
        assert f'"pid": {first.pid}' in lock_text

        second = subprocess.run(
            command + ["--resume"],
            env=ray_session.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=HANG_GUARD_S,
        )
        assert second.returncode == 2, second.stderr[-3000:]
        assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr
        assert second.stderr.startswith(
            f"mmse: error: {experiment / 'driver.lock'}: another driver runs this sweep "
            f"(pid {first.pid} on {socket.gethostname()}, started "
        )
        assert (experiment / "driver.lock").read_text() == lock_text  # untouched

        first.send_signal(signal.SIGINT)  # Tune saves its state and returns: an interrupted sweep
        _, err = first.communicate(timeout=HANG_GUARD_S)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        remove_placement_group(hog)
    assert first.returncode == 1, err[-3000:]
    assert not (experiment / "driver.lock").exists()  # released at exit
    assert (experiment / "sweep_record.json").exists()

    # --resume onto another sweep: refused before Ray is touched, what changed named.
    changed = subprocess.run(
        command[:5]
        + [str(sweep_yaml(tmp_path / "more.yaml", samples=3))]
        + command[6:]
        + ["--resume"],
        env=ray_session.env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        check=False,
    )
    assert changed.returncode == 2, changed.stderr[-3000:]
    assert changed.stderr.startswith(
        f"mmse: error: {experiment / 'sweep_record.json'}: --resume continues only the "
        "sweep that was started; changed since: samples 1 -> 3. "
    )
    # The data rebuilt (other features, its manifest with them), as `mmse data build` would.
    write_planted_root(data, {SIG: 1.0, WEAK_SIG: 0.0}, tasks=("Q1", "Q3"), n_subjects=120, seed=7)
    rebuilt = subprocess.run(
        command + ["--resume"],
        env=ray_session.env,
        capture_output=True,
        text=True,
        check=False,
        timeout=HANG_GUARD_S,
    )
    assert rebuilt.returncode == 2, rebuilt.stderr[-3000:]
    assert "changed since: the data (its dataset files' fingerprint" in rebuilt.stderr
    assert rebuilt.stderr.count("\n") == 1
    assert not (experiment / "driver.lock").exists()  # a refused driver leaves no lock behind


def test_a_driver_that_lost_its_lock_stops_and_writes_nothing(ray_session, toy_root, tmp_path):
    """Its lock taken by another (here: written over by the test, as a driver on another
    machine would take over a lease it saw expire): the driver's heartbeat finds another
    token, Tune's loop stops at its next step, exit status 1, one line; nothing more is
    written, the other's lock stays."""
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group

    from mmse_model.sweeps.lock import LEASE_ENVIRONMENT, Holder

    config = sweep_yaml(tmp_path / "sweep.yaml")
    command = [
        sys.executable,
        "-m",
        "mmse_app.cli",
        "sweep",
        "--config",
        str(config),
        "--data",
        str(toy_root),
        "--storage",
        str(tmp_path / "runs"),
    ]
    experiment = tmp_path / "runs" / "one_driver"
    lock_path = experiment / "driver.lock"
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    taker = Holder("gpu-node-7", 4242, "f" * 32, "boot", "pid:[1]", "", now, now, 3600.0)
    hog = placement_group([{"CPU": 2.0}])  # no trial can start: the driver waits in Tune's loop
    ray.get(hog.ready())
    # A short lease: the heartbeat runs every second.
    env = {**ray_session.env, LEASE_ENVIRONMENT: "4"}
    driver = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(
            lambda: driver.poll() is not None or list(experiment.glob("experiment_state-*.json")),
            "the driver's Tune state",
        )
        assert driver.poll() is None, driver.communicate()[1][-3000:]

        def taken() -> bool:
            # Written again should a renewal in flight have put the driver's own back.
            if lock_path.read_text() != taker.to_json():
                scratch = experiment / ".taker"
                scratch.write_text(taker.to_json())
                scratch.replace(lock_path)
            return driver.poll() is not None

        wait_for(taken, "the driver to stop")
        _, err = driver.communicate(timeout=HANG_GUARD_S)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        remove_placement_group(hog)
    assert driver.returncode == 1, err[-3000:]
    errors = [line for line in err.splitlines() if line.startswith("mmse: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err[-3000:]
    assert errors[0].startswith(
        f"mmse: error: {lock_path}: this driver lost the sweep's lock (the lock now names "
        f"another holder: pid 4242 on gpu-node-7, started {now}"
    ), errors[0]
    assert lock_path.read_text() == taker.to_json()  # the other's lock, left as it is
    assert not {"trials.csv", "summary.json"} & {p.name for p in experiment.iterdir()}
