"""`mmse dashboard` on an experiment in S3 (the SeaweedFS server of tests/ray/s3_server.py).

Finished synthetic experiments (the estimate alone, today's default; the estimate and a
held-out split) and a half-finished one are uploaded to the bucket; the page's data read
through `s3://...` must equal the data read from the local copy.
"""

from __future__ import annotations

import uuid

import pytest
from pyarrow import fs as pafs

from mmse_app.dashboard_data import load_experiment, page_data
from tests.fixtures.cli import run_cli
from tests.fixtures.synthetic_sweep import write_synthetic_sweep
from tests.ray.s3_server import CREDENTIAL_ENV

pytestmark = pytest.mark.ray


def test_dashboard_reads_experiments_in_s3(s3_server, tmp_path, monkeypatch):
    for key, value in CREDENTIAL_ENV.items():
        monkeypatch.setenv(key, value)
    prefix = f"dash-{uuid.uuid4().hex[:12]}"
    fs = s3_server.filesystem()
    for name, finished, held_out in (
        ("done", True, False),
        ("split", True, True),
        ("half", False, False),
    ):
        sweep = write_synthetic_sweep(
            tmp_path / name,
            finished=finished,
            running=0 if finished else 2,
            errored=1,
            held_out=held_out,
        )
        pafs.copy_files(
            str(sweep.path), f"{s3_server.bucket}/{prefix}/{name}", destination_filesystem=fs
        )
        uri = s3_server.storage_uri(f"{prefix}/{name}")
        remote, local = page_data(load_experiment(uri)), page_data(load_experiment(str(sweep.path)))
        assert remote.meta.uri == uri and local.meta.uri == str(sweep.path)
        # The same page data, but for where the experiment is.
        assert remote.model_copy(update={"meta": local.meta}) == local
        assert remote.meta.finished is finished and len(remote.trials) == len(sweep.trials)
        if finished:
            # The estimate leads; the held-out split's numbers are there only where one was kept.
            assert remote.estimate.recorded and remote.banner is not None
            assert list(remote.estimate.tasks) == list(sweep.summary.tasks)
            assert remote.estimate.subtotal is not None
            # The prediction intervals' coverage over the outer folds, the summary's.
            assert remote.intervals.recorded and remote.intervals.subtotal is not None
            assert list(remote.intervals.tasks) == list(sweep.summary.tasks)
            assert remote.comparison.held_out is held_out
            assert bool(remote.comparison.tasks) is held_out
            assert all(bool(c.predicted) is held_out for c in remote.calibration.values())
            assert (remote.subtotal.points is not None) is held_out
        else:
            # While it runs: its sweep record (rungs, epoch limit), no results yet.
            assert remote.comparison.tasks == {} and remote.asha.rungs == sweep.rungs
            assert not remote.estimate.recorded and not remote.intervals.recorded
            assert [t.status for t in remote.trials][-2:] == ["running"] * 2

    # The CLI: a URI's page lands in ./dashboard-<name>; nothing is written to the bucket.
    monkeypatch.chdir(tmp_path)
    before = {
        i.path
        for i in fs.get_file_info(pafs.FileSelector(f"{s3_server.bucket}/{prefix}", recursive=True))
    }
    code, out, err = run_cli("dashboard", uri)
    assert (code, err) == (
        0,
        "",
    ) and out == f"dashboard: {tmp_path / 'dashboard-half' / 'index.html'}\n"
    assert (tmp_path / "dashboard-half" / "index.html").stat().st_size > 1_000_000
    after = {
        i.path
        for i in fs.get_file_info(pafs.FileSelector(f"{s3_server.bucket}/{prefix}", recursive=True))
    }
    assert after == before

    missing = s3_server.storage_uri(f"{prefix}/nothing-here")
    code, out, err = run_cli("dashboard", missing, "--out", str(tmp_path / "none"))
    assert (code, out, err) == (2, "", f"mmse: error: {missing}: no such folder\n")
    assert not (tmp_path / "none").exists()
