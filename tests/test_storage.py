"""The storage module (no Ray, no server): locations, whole writes, reads, listing, copies.

Local paths throughout; `mock://` is Arrow's own in-memory file system, opened by
`FileSystem.from_uri` like any remote store, so the remote code paths (uploads, copies to a
temporary folder, deletes) run for real here. S3 itself: tests/ray/test_s3_*.py and
tests/ray/test_dashboard_s3.py against a SeaweedFS server.
"""

from __future__ import annotations

import os
import uuid

import pytest

from mmse_model.core import storage
from mmse_model.core.errors import InputError, RunFailure, exit_status

S3 = "s3://bucket/sweeps/exp?endpoint_override=http://127.0.0.1:1&scheme=http"


@pytest.mark.parametrize(
    "location, remote, uri",
    [
        ("runs", False, False),
        ("/shared/runs", False, False),
        ("file:///shared/runs", False, True),
        ("s3://bucket/prefix", True, True),
        (S3, True, True),
        ("gs://bucket/p", True, True),
        ("runs:2/x", False, False),  # a colon in a path is no scheme
    ],
)
def test_what_is_remote(location, remote, uri):
    assert storage.is_remote(location) is remote and storage.is_uri(location) is uri


def test_locations_join_and_resolve(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert storage.join(S3, "train_runs", "t1") == (
        "s3://bucket/sweeps/exp/train_runs/t1?endpoint_override=http://127.0.0.1:1&scheme=http"
    )
    assert storage.join("runs/", "exp") == "runs/exp"
    assert storage.absolute("runs") == str(tmp_path / "runs") and storage.absolute(S3) == S3
    assert storage.local_path("file://" + str(tmp_path / "a b")) == tmp_path / "a b"
    assert storage.name(S3) == "exp" and storage.name("runs/exp/") == "exp"
    # A path Ray reports under the storage, back as a location with the endpoint kept.
    assert storage.uri_of(S3, "bucket/sweeps/exp/t/checkpoint_000001") == (
        "s3://bucket/sweeps/exp/t/checkpoint_000001?endpoint_override=http://127.0.0.1:1&scheme=http"
    )
    assert storage.uri_of(str(tmp_path), "/x/checkpoint_000001") == "/x/checkpoint_000001"
    assert storage.display("runs") == str(tmp_path / "runs")
    assert storage.display("s3://AK:SK@b/p?secret_key=SK&region=eu") == "s3://b/p?region=eu"
    with pytest.raises(ValueError):
        storage.local_path(S3)


def test_local_files_written_whole_read_listed_deleted(tmp_path):
    exp = str(tmp_path / "exp")
    target = storage.join(exp, "trial_1", "result.json")
    storage.write_text(target, "first\n")
    storage.write_bytes(target, b"second\n")  # replaced whole
    storage.write_text(storage.join(exp, "summary.json"), "{}\n")
    assert storage.read_text(target) == "second\n" and storage.read_bytes(target) == b"second\n"
    assert sorted(os.listdir(tmp_path / "exp" / "trial_1")) == ["result.json"]  # no temporary left
    assert oct((tmp_path / "exp" / "summary.json").stat().st_mode & 0o777) == "0o644"
    assert storage.list_dir(exp) == [
        storage.Entry("summary.json", False),
        storage.Entry("trial_1", True),
    ]
    assert storage.list_dir(storage.join(exp, "absent")) == []
    assert storage.files_present(exp, ["trial_1/result.json", "trial_1/error.txt", "trial_1"]) == {
        "trial_1/result.json"
    }
    assert storage.exists(target) and storage.is_dir(exp) and not storage.is_dir(target)
    assert not storage.exists(storage.join(exp, "nothing"))
    with pytest.raises(FileNotFoundError):
        storage.read_text(storage.join(exp, "nothing"))
    with pytest.raises(FileNotFoundError):
        storage.read_text(exp)  # a folder is not a file
    with storage.local_copy(exp) as local:  # a local location is used where it is, not copied
        assert local == tmp_path / "exp"
    storage.delete(target)
    storage.delete(target)  # nothing there: no error
    assert storage.list_dir(storage.join(exp, "trial_1")) == []
    storage.delete(exp)
    assert not (tmp_path / "exp").exists()


def test_a_failed_local_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")
    (tmp_path / "blocker").write_text("a file where a folder should be")
    with pytest.raises(OSError):
        storage.write_text(str(tmp_path / "blocker" / "x.txt"), "new")
    with pytest.raises(OSError):
        storage.write_text(str(tmp_path), "a folder cannot be overwritten by a file")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "summary.json"]


def test_a_remote_store_through_the_same_calls():
    exp = f"mock:///{uuid.uuid4().hex}/exp"
    storage.write_text(storage.join(exp, "trial_1", "result.json"), "{}\n")
    storage.write_text(storage.join(exp, "trials.csv"), "trial_id\n")
    assert storage.read_text(storage.join(exp, "trials.csv")) == "trial_id\n"
    assert [e.name for e in storage.list_dir(exp)] == ["trial_1", "trials.csv"]
    assert storage.files_present(exp, ["trial_1/result.json", "trial_1/error.txt"]) == {
        "trial_1/result.json"
    }
    with storage.local_copy(exp) as local:  # a folder, copied to local disk for the context
        assert local.is_dir() and (local / "trial_1" / "result.json").read_text() == "{}\n"
    assert not local.exists()
    with storage.local_copy(storage.join(exp, "trials.csv")) as local:
        assert local.read_text() == "trial_id\n"
    with pytest.raises(FileNotFoundError), storage.local_copy(storage.join(exp, "absent")):
        pass
    storage.delete(storage.join(exp, "trial_1"))
    assert not storage.exists(storage.join(exp, "trial_1", "result.json"))
    assert [e.name for e in storage.list_dir(exp)] == ["trials.csv"]


def test_a_failing_store_is_one_line_exit_1_naming_the_location():
    assert issubclass(storage.StorageUnavailable, RunFailure)
    with (
        pytest.raises(storage.StorageUnavailable) as info,
        storage.errors(S3, "reading trials.csv"),
    ):
        raise OSError("AWS Error NETWORK_CONNECTION during GetObject operation\nmore detail")
    message = str(info.value)
    assert message == (
        "storage s3://bucket/sweeps/exp: reading trials.csv failed "
        "(AWS Error NETWORK_CONNECTION during GetObject operation)"
    )
    assert exit_status(info.value) == 1
    # A missing object is not a failing store, and local errors keep their kind.
    with pytest.raises(FileNotFoundError), storage.errors(S3, "reading"):
        raise FileNotFoundError("no such key")
    with pytest.raises(PermissionError), storage.errors("/runs/exp", "reading"):
        raise PermissionError("denied")


def test_a_uri_pyarrow_cannot_open_is_bad_input():
    with pytest.raises(InputError, match=r"^nosuch://bucket/x: cannot open: "):
        storage.read_text("nosuch://bucket/x")
