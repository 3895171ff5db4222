"""A sweep end to end on real S3 storage (SeaweedFS on loopback), with the server stopped
for a few seconds mid-sweep; its resume, its dashboard, predict from its winner's
checkpoint, and no credential anywhere in what it wrote.

The storage is a plain `s3://bucket/prefix`: endpoint, region and key come from the
environment, as on a cluster (the Ray head has them, tests/ray/conftest.py; the drivers get
them from theirs). The sweep runs as `python -m mmse_app sweep` against the shared head; its
trials train themselves (`ray.num_workers: 0`, as on a laptop and in configs/cluster_sweep.yaml),
each writing its checkpoints into its Train-run folder in the bucket (`TrialReporter`).

Every object of the experiment is checked after the run the outage hit and again after the
resume; a failure carries the bucket's listing with each object's size, and each object is
kept in the test's temp dir (`after_first/`, `after_resume/`, with `listing.txt`), so a
recurrence in CI is diagnosable from the assertion message and the files.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pickletools
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from pyarrow import fs as pafs

from mmse_model.sweeps.rules import read_trials_csv
from mmse_model.training.checkpoint import FILENAME, FoldEnsemble, load_checkpoint
from tests.ray.conftest import S3_ENV, SIG
from tests.ray.s3_server import SECRET_KEY

pytestmark = pytest.mark.ray

NAME = "s3_sweep"
SAMPLES, EPOCHS = 2, 4


def sweep_yaml(path: Path) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "name": NAME,
                "signatures": [SIG],
                "tasks": ["Q1"],
                "samples": SAMPLES,
                "search_space": {"training.lr": {"loguniform": [0.002, 0.01]}},
                "asha": {"grace_period": EPOCHS},  # = epochs: ASHA stops nothing
                # The trial trains itself: its bundle is its worker's share (trial_cpus 0).
                "resources": {"trial_cpus": 0},
                "watchdog": {"stall_timeout_s": 300},
                "config": {
                    "split": {"folds": 3},
                    "training": {"epochs": EPOCHS, "checkpoint_every": 1},
                    "early_stopping": {"patience": 20},
                    "ray": {"num_workers": 0, "cpus_per_worker": 0.5},
                },
            }
        )
    )
    return path


def objects(fs, prefix: str) -> list[str]:
    return sorted(objects_with_sizes(fs, prefix))


def objects_with_sizes(fs, prefix: str) -> dict[str, int]:
    """{key: size in bytes} of every object under `prefix` ({} when there is none)."""
    try:
        infos = fs.get_file_info(pafs.FileSelector(prefix, recursive=True))
    except FileNotFoundError:
        return {}
    return {i.path: i.size for i in infos if i.type == pafs.FileType.File}


def read(fs, key: str) -> bytes:
    with fs.open_input_stream(key) as stream:
        return stream.read()


EDGE = 80  # bytes shown from each end of an object that fails its check


@dataclass
class Checked:
    """What `check_files` found: files checked by kind, one line per problem, and the
    listing (key, size) of every object under the experiment when it looked."""

    counts: dict[str, int]
    problems: list[str]
    listing: dict[str, int]

    def report(self, when: str) -> str:
        """The assertion message: the problems, then the whole listing with sizes."""
        lines = [f"{when}: {len(self.problems)} problem(s), files checked {self.counts}"]
        lines += [f"  PROBLEM {p}" for p in self.problems]
        lines.append(f"  listing ({len(self.listing)} objects, key size):")
        lines += [f"    {key} {size}" for key, size in sorted(self.listing.items())]
        return "\n".join(lines)


def check_files(fs, key: str, scratch: Path) -> Checked:
    """Every object under `key`: checkpoints must load; JSON, JSON lines, CSV and pickles
    must parse to their end. Each object is copied under `scratch` (with `listing.txt`,
    key and size per line) so that a failing one can be looked at after the test."""
    checked, problems = {"model.pt": 0, "other": 0}, []
    listing = objects_with_sizes(fs, key)
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "listing.txt").write_text(
        "".join(f"{name} {size}\n" for name, size in sorted(listing.items()))
    )
    for name, size in sorted(listing.items()):
        base = name.rsplit("/", 1)[-1]
        try:
            data = read(fs, name)
        except Exception as exc:  # noqa: BLE001 - an unreadable object is a problem too
            problems.append(f"{name} (listed {size} B): unreadable: {type(exc).__name__}: {exc}")
            continue
        local = scratch / name
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(data)
        try:
            if base == FILENAME:
                load_checkpoint(local)
                checked["model.pt"] += 1
                continue
            if base == "result.json":  # Tune's history: one JSON document per line
                lines = data.decode().splitlines()
                for number, line in enumerate(lines, 1):
                    try:
                        if line.strip():
                            json.loads(line)
                    except ValueError as exc:
                        raise ValueError(f"line {number} of {len(lines)}: {exc}") from None
            elif base.endswith(".json") and not base.startswith("basic-variant-state"):
                json.loads(data)  # experiment state, params, summary
            elif base.endswith(".pkl") or base.startswith(
                "basic-variant-state"
            ):  # Tune names one pickle .json
                list(pickletools.genops(data))  # walks every opcode: a cut pickle raises
            elif base.endswith(".csv"):
                list(csv.DictReader(io.StringIO(data.decode())))
            else:
                continue
            checked["other"] += 1
        except Exception as exc:  # noqa: BLE001 - every problem is reported with its file
            problems.append(
                f"{name}: listed {size} B, read {len(data)} B, "
                f"{type(exc).__name__}: {exc}; first {data[:EDGE]!r}, last {data[-EDGE:]!r}"
            )
    return Checked(checked, problems, listing)


def run_driver(
    command: list[str], env: dict, log: Path, cwd: Path, timeout: float = 420
) -> subprocess.CompletedProcess:
    with open(log, "w") as out:
        driver = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, text=True, cwd=cwd
        )
        try:
            driver.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            driver.kill()
            driver.wait()
    return subprocess.CompletedProcess(command, driver.returncode, log.read_text(), "")


@pytest.fixture(scope="module")
def s3_sweep(ray_head, s3_server, toy_root, tmp_path_factory):
    """The sweep with an outage of the S3 server after its first checkpoint, then --resume."""
    tmp = tmp_path_factory.mktemp("s3_sweep")
    prefix = f"sweeps-{uuid.uuid4().hex[:10]}"
    storage = f"s3://{s3_server.bucket}/{prefix}"
    experiment_key = f"{s3_server.bucket}/{prefix}/{NAME}"
    command = [
        sys.executable,
        "-m",
        "mmse_app",
        "sweep",
        "--config",
        str(sweep_yaml(tmp / "sweep.yaml")),
        "--data",
        str(toy_root),
        "--storage",
        storage,
    ]
    env = {**ray_head.env, **S3_ENV}
    fs = s3_server.filesystem()

    log = tmp / "first.log"
    with open(log, "w") as out:
        driver = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, text=True, cwd=tmp
        )
        try:
            deadline = time.monotonic() + 600
            while driver.poll() is None and time.monotonic() < deadline:
                if any(
                    k.endswith(f"/{FILENAME}") for k in objects(fs, f"{experiment_key}/train_runs")
                ):
                    break
                time.sleep(0.2)
            assert driver.poll() is None, log.read_text()[-3000:]
            # The server goes away for a few seconds while trials are checkpointing.
            stopped = time.time()
            s3_server.stop()
            time.sleep(4)
            s3_server.restart()
            # When, by this machine's clock: to set beside the objects' times and the logs.
            (tmp / "outage.txt").write_text(f"stopped {stopped:.3f}\nanswers {time.time():.3f}\n")
            driver.wait(timeout=900)
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.wait()
    first = subprocess.CompletedProcess(command, driver.returncode, log.read_text(), "")
    after_first = check_files(fs, experiment_key, tmp / "after_first")
    try:
        first_rows = list(
            csv.DictReader(io.StringIO(read(fs, f"{experiment_key}/trials.csv").decode()))
        )
    except FileNotFoundError:
        first_rows = None
    resumed = run_driver(command + ["--resume"], env, tmp / "resume.log", cwd=tmp)
    after_resume = check_files(fs, experiment_key, tmp / "after_resume")
    return {
        "tmp": tmp,
        "storage": storage,
        "experiment": f"{storage}/{NAME}",
        "experiment_key": experiment_key,
        "first": first,
        "first_rows": first_rows,
        "after_first": after_first,
        "resumed": resumed,
        "after_resume": after_resume,
        "fs": fs,
    }


def test_outage_ridden_out_or_stopped_with_a_clear_error(s3_sweep):
    first = s3_sweep["first"]
    if first.returncode == 0:  # rode it out: results written, one row per trial (a trial whose
        rows = s3_sweep["first_rows"]  # retry failed too has an error row, which --resume redoes)
        assert rows is not None and len(rows) == SAMPLES, first.stdout[-3000:]
    else:
        last = [line for line in first.stdout.splitlines() if line.strip()][-1]
        assert first.returncode == 1 and last.startswith("mmse: error: "), first.stdout[-3000:]
        # A storage that failed, or a trial whose retry failed too: its results are written,
        # marked INCOMPLETE, and --resume redoes it.
        assert ("storage" in last or "INCOMPLETE" in last) and "--resume" in last, last
        assert "Traceback" not in first.stdout.split("mmse: error:")[-1], first.stdout[-3000:]


def test_no_checkpoint_or_results_file_truncated(s3_sweep):
    """Right after the run the outage hit, and again after the resume: every checkpoint in
    the bucket loads, every JSON, CSV and pickle is whole. A failure names the objects and
    lists the bucket with sizes."""
    for when in ("after_first", "after_resume"):
        found: Checked = s3_sweep[when]
        assert not found.problems, "objects cut short or unreadable\n" + found.report(when)
        # The outage starts once a checkpoint is in the bucket. A trial that trains itself
        # is retried within seconds, so its retry can fail within the same outage (the
        # server takes 15-25 s to come back here); one that had written no checkpoint then
        # holds none until --resume runs it (2 of 20 runs). After the resume each trial has.
        least = SAMPLES if when == "after_resume" else 1
        assert found.counts["model.pt"] >= least and found.counts["other"] >= 6, (
            f"fewer files than expected (at least {least} model.pt and 6 others)\n"
            + found.report(when)
        )


def test_resume_completes_with_every_trial_exactly_once(s3_sweep):
    resumed = s3_sweep["resumed"]
    assert resumed.returncode == 0, resumed.stdout[-4000:]
    fs, key = s3_sweep["fs"], s3_sweep["experiment_key"]
    rows = read_trials_csv(read(fs, f"{key}/trials.csv").decode())
    assert len(rows) == SAMPLES and len({r["trial_id"] for r in rows}) == SAMPLES, rows
    assert {r["sample"] for r in rows} == set(range(SAMPLES))
    assert all(r["status"] != "error" and r["epochs_run"] == EPOCHS for r in rows), rows
    for row in rows:  # every row names a checkpoint in the bucket
        assert row["checkpoint_uri"].startswith(f"s3://{key}/train_runs/"), row["checkpoint_uri"]
    summary = json.loads(read(fs, f"{key}/summary.json"))
    assert set(summary["tasks"]) == {"Q1"} and "winner" in summary["tasks"]["Q1"]
    assert "network (winner)" in read(fs, f"{key}/summary.txt").decode()


def test_predict_from_the_winners_checkpoint_uri(s3_sweep, toy_root, tmp_path, monkeypatch):
    from mmse_app.cli import main

    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    summary = json.loads(read(s3_sweep["fs"], f"{s3_sweep['experiment_key']}/summary.json"))
    uri = summary["tasks"]["Q1"]["winner"]["checkpoint_uri"]
    assert uri.startswith("s3://") and "?" not in uri, (
        uri
    )  # a plain URI: the endpoint is in the environment
    out = tmp_path / "predictions.csv"
    assert (
        main(
            [
                "predict",
                "--model",
                uri,
                "--input",
                str(toy_root / SIG / "Q1.npz"),
                "--out",
                str(out),
                "--signature",
                SIG,
            ]
        )
        == 0
    )
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    data = np.load(toy_root / SIG / "Q1.npz", allow_pickle=False)
    expected = FoldEnsemble.from_checkpoint(load_checkpoint(uri), SIG).predict(data["X"])
    assert [r["subject_id"] for r in rows] == list(data["subject_id"])
    np.testing.assert_allclose([float(r["Q1_predicted"]) for r in rows], expected, atol=1e-4)
    # A checkpoint that is not there is a one-line error, exit status 2.
    assert (
        main(
            [
                "predict",
                "--model",
                uri.rsplit("/", 1)[0] + "/checkpoint_999999",
                "--input",
                str(toy_root / SIG / "Q1.npz"),
                "--out",
                str(tmp_path / "none.csv"),
            ]
        )
        == 2
    )


def test_dashboard_from_s3(s3_sweep, tmp_path, monkeypatch):
    from mmse_app.cli import main

    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "dashboard"
    assert main(["dashboard", s3_sweep["experiment"], "--out", str(out)]) == 0
    page = (out / "index.html").read_text()
    assert SIG in page and SECRET_KEY not in page


def test_no_credential_in_anything_the_sweep_wrote(s3_sweep, ray_head):
    """trials.csv, summary.json/txt, Tune's files, checkpoints: every object under the
    experiment; the drivers' logs; the Ray session's logs; the dashboard's job records."""
    fs, key = s3_sweep["fs"], s3_sweep["experiment_key"]
    secret = SECRET_KEY.encode()
    names = objects(fs, key)
    assert any(n.endswith("trials.csv") for n in names) and any(
        "experiment_state" in n for n in names
    ), names
    leaked = [n for n in names if secret in read(fs, n)]
    assert not leaked, leaked
    for run in ("first", "resumed"):
        assert SECRET_KEY not in s3_sweep[run].stdout
    session = Path("/tmp") / f"mmse_ray_{os.getpid()}"  # the head's temp dir (conftest)
    # runtime_resources holds unpacked copies of `ray job submit` working dirs: this
    # repository, whose tests/ray/s3_server.py defines the test key.
    files = [
        p
        for p in session.rglob("*")
        if p.is_file()
        and not p.is_symlink()
        and not {"sockets", "runtime_resources"} & set(p.parts)
    ]
    assert any(p.name == "raylet.out" for p in files), session
    leaked = [str(p) for p in files if secret in p.read_bytes()]
    assert not leaked, leaked
    # What the Ray dashboard shows of the drivers (entrypoints, runtime environments).
    from ray.util.state import list_jobs

    def plain(value):
        for method in ("model_dump", "dict"):
            if hasattr(value, method):
                return getattr(value, method)()
        return getattr(value, "__dict__", str(value))

    jobs = json.dumps(list_jobs(address=ray_head.dashboard, detail=True), default=plain)
    assert s3_sweep["storage"] in jobs  # the sweep drivers' records are among them
    assert SECRET_KEY not in jobs
    # ... and of every actor (the dashboard shows each one's runtime env).
    from ray.util.state import list_actors

    actors = list_actors(address=ray_head.dashboard, limit=10000, detail=True)
    # The trials' actors are among them: Tune's class for a trial function (`wrap_function`),
    # where the trials train (there is no Train controller in this layout).
    assert any(a.class_name.endswith("ImplicitFunc") for a in actors), sorted(
        {a.class_name for a in actors}
    )
    assert not [a.class_name for a in actors if SECRET_KEY in json.dumps(plain(a), default=plain)]


def test_check_files_names_a_cut_object_with_its_bytes_and_the_listing(tmp_path):
    """The checker itself (no server): a cut JSON line and a cut checkpoint are problems
    that carry their size, their first and last bytes and the parse error, and the report
    lists every object with its size."""
    root = tmp_path / "bucket"
    (root / "exp" / "trial").mkdir(parents=True)
    (root / "exp" / "trial" / "result.json").write_bytes(b'{"epoch": 1}\n{"epoch": 2, "val/lo')
    (root / "exp" / "trial" / "params.json").write_bytes(b'{"lr": 0.01}')
    (root / "exp" / "trial" / FILENAME).write_bytes(b"PK\x03\x04cut")
    fs = pafs.SubTreeFileSystem(str(root), pafs.LocalFileSystem())
    found = check_files(fs, "exp", tmp_path / "scratch")
    assert found.counts == {"model.pt": 0, "other": 1}
    assert found.listing == {
        "exp/trial/params.json": 12,
        "exp/trial/result.json": 33,
        f"exp/trial/{FILENAME}": 7,
    }
    report = found.report("after_first")
    assert len(found.problems) == 2, report
    assert "exp/trial/result.json: listed 33 B, read 33 B, ValueError: line 2 of 2" in report
    assert 'last b\'{"epoch": 1}\\n{"epoch": 2, "val/lo\'' in report
    assert f"exp/trial/{FILENAME}: listed 7 B" in report and "CheckpointError" in report
    assert "    exp/trial/params.json 12" in report  # a whole object is listed too
    assert (tmp_path / "scratch" / "listing.txt").read_text().count("\n") == 3
    assert (tmp_path / "scratch" / "exp" / "trial" / "result.json").read_bytes().endswith(b"lo")
