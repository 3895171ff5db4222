"""A bundle written to and read from a real S3 server (SeaweedFS, tests/ray/s3_server.py):
`mmse bundle s3://...` reads the sweep's summary from the bucket and writes the bundle
there; `mmse predict --bundle s3://...` loads it (checking every weights file's sha256)
and predicts as from a local copy, without Ray."""

from __future__ import annotations

import uuid

import pytest
from pyarrow import fs as pafs

from tests.fixtures.cli import run_cli
from tests.fixtures.trained_sweep import write_trained_sweep
from tests.ray.s3_server import CREDENTIAL_ENV

pytestmark = pytest.mark.ray


def test_a_bundle_in_s3_is_written_loaded_checked_and_applied(s3_server, tmp_path, monkeypatch):
    for key, value in CREDENTIAL_ENV.items():
        monkeypatch.setenv(key, value)
    experiment, root = write_trained_sweep(tmp_path / "sweep", tasks=("Q1", "Q3"), n_subjects=40)
    fs = s3_server.filesystem()
    prefix = f"bundle-{uuid.uuid4().hex[:12]}"
    pafs.copy_files(
        str(experiment), f"{s3_server.bucket}/{prefix}/trained", destination_filesystem=fs
    )
    uri = s3_server.storage_uri(f"{prefix}/trained")
    bundle_uri = s3_server.storage_uri(f"{prefix}/trained/bundle")

    code, out, err = run_cli("bundle", uri)
    assert (code, err) == (0, ""), err
    first = out.splitlines()[0]
    assert first.startswith(f"SYNTHETIC data: bundle {bundle_uri}: Q1 (m") and ", Q3 (m" in first
    names = {
        info.base_name
        for info in fs.get_file_info(
            pafs.FileSelector(f"{s3_server.bucket}/{prefix}/trained/bundle")
        )
    }
    assert names == {"manifest.json", "model_card.md", "Q1.safetensors", "Q3.safetensors"}

    # Applied from the bucket and from a local bundle of the same sweep: the same predictions.
    assert run_cli("bundle", str(experiment), "--out", str(tmp_path / "local"))[0] == 0
    remote, local = tmp_path / "remote.csv", tmp_path / "local.csv"
    code, out, err = run_cli(
        "predict", "--bundle", bundle_uri, "--features", str(root), "--out", str(remote)
    )
    assert (code, err) == (0, ""), err
    assert "wrote predictions for 40 subjects (Q1, Q3) with 90% intervals" in out
    assert (
        run_cli(
            "predict",
            "--bundle",
            str(tmp_path / "local"),
            "--features",
            str(root),
            "--out",
            str(local),
        )[0]
        == 0
    )
    assert remote.read_text() == local.read_text()
    assert (
        remote.read_text().splitlines()[0]
        == "subject_id,Q1,Q1_lo,Q1_hi,Q3,Q3_lo,Q3_hi,out_of_range"
    )

    # A weights object changed in the bucket is refused before it is read; nothing written.
    key = f"{s3_server.bucket}/{prefix}/trained/bundle/Q3.safetensors"
    with fs.open_input_stream(key) as stream:
        blob = bytearray(stream.read())
    blob[-1] ^= 1
    with fs.open_output_stream(key) as stream:
        stream.write(bytes(blob))
    refused = tmp_path / "refused.csv"
    code, out, err = run_cli(
        "predict", "--bundle", bundle_uri, "--features", str(root), "--out", str(refused)
    )
    assert code == 2 and out == "" and err.count("\n") == 1
    assert (
        "Q3.safetensors: sha256" in err and "the manifest expects" in err and not refused.exists()
    )

    missing = s3_server.storage_uri(f"{prefix}/nothing-here")
    code, out, err = run_cli(
        "predict", "--bundle", missing, "--features", str(root), "--out", str(refused)
    )
    assert (code, out) == (2, "") and err == f"mmse: error: {missing}: no such folder\n"
