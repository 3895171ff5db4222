"""A data root knows what it is: dataset.json, the data fingerprint, identity against the path,
and data roots written before identity existed (no Ray)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mmse_app.cli import main
from mmse_model.core.errors import DataError
from mmse_model.core.hashing import combined_fingerprint, sha256_file
from mmse_model.core.identity import BUILDER_VERSION, BuildParams, DatasetIdentity
from mmse_model.data.dataset import load_group, load_task_data, read_features
from mmse_model.data.manifest import (
    MANIFEST_NAME,
    SYNTHETIC_MARKER,
    data_fingerprint,
    excluded_recordings,
    is_synthetic,
    read_manifest,
)
from mmse_model.synth import cohort as synth
from tests.fixtures.toy_data import write_planted_root
from tests.test_build import build_argv

SIGS = ["m2_tau1_eps0.055_lmin2", "m3_tau3_eps0.08_lmin3"]
TASKS = ("Q1", "Q2", "Q3", "Q4", "Q5")
Q1_RANGE = (0.0, 5.0)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A SYNTHETIC cohort (its Q4 of one subject unusable) and the data root built from it."""
    root = tmp_path_factory.mktemp("manifest")
    synth.synthesize(root / "cohort", n_subjects=6, seed=4, duration_s=(3.0, 4.0))
    (root / "cohort" / "recordings" / "synth0002" / "Q4.csv").write_text("t,x,y\n")
    assert main(build_argv(root / "cohort", root / "data")) == 0
    return root / "cohort", root / "data"


def test_the_manifest_lists_every_file_its_subjects_and_how_it_was_built(built):
    cohort, data = built
    raw = json.loads((data / MANIFEST_NAME).read_text())
    assert (
        (raw["format"], raw["format_version"]) == ("mmse-dataset", 4)
        and (raw["tool"], raw["kind"]) == ("mmse", "data-root")
        and raw["contents"]
        == sorted(p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file())
        and raw["builder_version"] == BUILDER_VERSION
        and raw["synthetic"] is True
    )
    assert raw["build_params"] == {
        "mode": "trajectory",
        "rate_hz": 90.0,
        "theiler_window": 23,
        "conversion": {
            "kind": "normalised",
            "time_unit": "s",
            "forward": None,
            "field_of_view_deg": 100.0,
        },
        "layout": {"format": "txy", "mapping": None, "mapping_sha256": None},
    }
    on_disk = sorted(f"{p.parent.name}/{p.name}" for p in data.glob("*/*.npz"))
    assert [f["path"] for f in raw["files"]] == on_disk and len(on_disk) == 10
    for entry in raw["files"]:
        path = data / entry["path"]
        assert entry["sha256"] == sha256_file(path)
        assert (entry["signature"], entry["task"]) == (path.parent.name, path.stem)
        with np.load(path, allow_pickle=False) as npz:
            assert entry["rows"] == len(npz["y"])
            assert list(npz["subject_id"]) == raw["subjects"][entry["task"]]
            # The identity the file records, as plain 0-d strings.
            assert str(npz["signature"]) == entry["signature"] and str(npz["task"]) == entry["task"]
            assert npz["signature"].dtype.kind == "U" and npz["signature"].shape == ()
            assert str(npz["builder_version"]) == BUILDER_VERSION
            assert json.loads(str(npz["build_params"])) == raw["build_params"]
    subjects = [f"synth{i:04d}" for i in range(6)]
    assert raw["subjects"]["Q1"] == subjects
    assert raw["subjects"]["Q4"] == [s for s in subjects if s != "synth0002"]
    # The source fingerprint: the labels and every recording used, by content.
    recordings = cohort / "recordings"
    used = [("labels", sha256_file(cohort / "labels.csv"))] + [
        (f"recordings/{s}/{q}.csv", sha256_file(recordings / s / f"{q}.csv"))
        for q in TASKS
        for s in subjects
        if (s, q) != ("synth0002", "Q4")
    ]
    assert raw["source_fingerprint"] == combined_fingerprint(used)
    manifest = read_manifest(data)
    assert manifest is not None and manifest.fingerprint == raw["fingerprint"] == data_fingerprint(
        data
    )
    assert raw["fingerprint"] == combined_fingerprint(
        (f["path"], f["sha256"]) for f in raw["files"]
    )


def test_the_fingerprint_follows_the_data(built, tmp_path):
    cohort, data = built
    first = data_fingerprint(data)
    # Rebuilt from the same recordings: the same bytes, the same fingerprint.
    assert main(build_argv(cohort, tmp_path / "again")) == 0
    assert data_fingerprint(tmp_path / "again") == first
    # One recording changed: other features, another fingerprint (and source fingerprint).
    changed = tmp_path / "cohort"
    shutil.copytree(cohort, changed)
    rows = (changed / "recordings" / "synth0001" / "Q2.csv").read_text().splitlines()
    (changed / "recordings" / "synth0001" / "Q2.csv").write_text("\n".join(rows[:-20]) + "\n")
    assert main(build_argv(changed, tmp_path / "changed")) == 0
    assert data_fingerprint(tmp_path / "changed") != first
    assert (
        read_manifest(tmp_path / "changed").source_fingerprint
        != read_manifest(data).source_fingerprint
    )
    # Without its manifest a root has the same fingerprint, from the files themselves.
    legacy = tmp_path / "legacy"
    shutil.copytree(data, legacy)
    (legacy / MANIFEST_NAME).unlink()
    assert data_fingerprint(legacy) == first
    shutil.copy(tmp_path / "changed" / SIGS[0] / "Q2.npz", legacy / SIGS[0] / "Q2.npz")
    assert data_fingerprint(legacy) != first


def test_a_file_changed_after_the_build_is_refused(built, tmp_path):
    _, data = built
    root = tmp_path / "data"
    shutil.copytree(data, root)
    target = root / SIGS[1] / "Q3.npz"
    with np.load(target, allow_pickle=False) as npz:
        arrays = dict(npz)
    arrays["X"] = arrays["X"] + 1e-9
    np.savez(target, **arrays)
    with pytest.raises(DataError, match=rf"^{target}: its sha256 differs from dataset.json's"):
        data_fingerprint(root)
    target.unlink()
    with pytest.raises(DataError, match=rf"^{target}: listed in dataset.json but missing"):
        data_fingerprint(root)


def test_an_identity_that_contradicts_the_path_is_refused(built, tmp_path, capsys):
    _, data = built
    root = tmp_path / "data"
    shutil.copytree(data, root)
    (root / MANIFEST_NAME).unlink()  # the loader checks each file by itself
    shutil.copy(root / SIGS[0] / "Q1.npz", root / SIGS[0] / "Q3.npz")  # Q1's data under Q3's name
    with pytest.raises(DataError) as caught:
        load_task_data(root / SIGS[0] / "Q3.npz", (0.0, 3.0))
    assert str(caught.value) == (
        f"{root / SIGS[0] / 'Q3.npz'}: records task Q1 but its name says Q3 (expected Q3, found Q1)"
    )
    shutil.copy(root / SIGS[1] / "Q2.npz", root / SIGS[0] / "Q2.npz")  # another signature's file
    with pytest.raises(
        DataError,
        match=rf"records signature {SIGS[1]} but its folder says {SIGS[0]} "
        rf"\(expected {SIGS[0]}, found {SIGS[1]}\)",
    ):
        load_task_data(root / SIGS[0] / "Q2.npz", Q1_RANGE)
    with pytest.raises(DataError, match="expected Q3, found Q1"):
        read_features(root / SIGS[0] / "Q3.npz")  # what predict reads
    # The command line: one line, exit status 2, naming the file.
    code = main(
        [
            "train",
            "--no-ray",
            "--data",
            str(root),
            "--sig",
            SIGS[0],
            "--q",
            "Q2",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    err = capsys.readouterr().err
    assert (
        code == 2
        and err.count("\n") == 1
        and f"{root / SIGS[0] / 'Q2.npz'}: records signature" in err
    )
    # A file whose path says nothing is taken for what it records.
    loose = tmp_path / "new_subjects.npz"
    shutil.copy(data / SIGS[0] / "Q1.npz", loose)
    features = read_features(loose)
    assert features.identity == DatasetIdentity(
        SIGS[0], "Q1", BuildParams("trajectory", 90.0, 23), BUILDER_VERSION
    )


def test_signatures_of_different_builds_are_not_trained_together(built, tmp_path):
    _, data = built
    root = tmp_path / "data"
    shutil.copytree(data, root)
    path = root / SIGS[1] / "Q1.npz"
    with np.load(path, allow_pickle=False) as npz:
        arrays = dict(npz)
    arrays.update(
        DatasetIdentity(SIGS[1], "Q1", BuildParams("fixation", 90.0, 1), BUILDER_VERSION).arrays()
    )
    np.savez(path, **arrays)
    with pytest.raises(
        DataError, match=rf"^{path}: built with mode=fixation, rate_hz=90, theiler_window=1 "
    ):
        load_group(root, SIGS, "Q1", Q1_RANGE)


def test_a_data_root_without_identity_still_loads(tmp_path):
    root = write_planted_root(
        tmp_path, {SIGS[0]: 1.0, SIGS[1]: 0.0}, tasks=("Q1",), n_subjects=40, identity=False
    )
    assert not (root / MANIFEST_NAME).exists()
    data = load_task_data(root / SIGS[0] / "Q1.npz", Q1_RANGE)
    assert data.identity is None and data.X.shape == (40, 10)
    group = load_group(root, SIGS, "Q1", Q1_RANGE)
    assert group.X.shape == (2, 40, 10)
    assert len(data_fingerprint(root)) == 64
    # The fixture's default: identity recorded and a manifest, like a built root.
    with_identity = write_planted_root(
        tmp_path / "new", {SIGS[0]: 1.0}, tasks=("Q1",), n_subjects=40
    )
    assert load_task_data(with_identity / SIGS[0] / "Q1.npz", Q1_RANGE).identity.task == "Q1"
    assert read_manifest(with_identity).subjects["Q1"][:2] == ("S0000", "S0001")


def test_a_hand_edited_manifest_is_refused(built, tmp_path):
    _, data = built
    root = tmp_path / "data"
    shutil.copytree(data, root)
    raw = json.loads((root / MANIFEST_NAME).read_text())
    raw["files"] = raw["files"][1:]
    (root / MANIFEST_NAME).write_text(json.dumps(raw))
    with pytest.raises(DataError, match="fingerprint does not match its own file list"):
        read_manifest(root)
    raw["format_version"] = 99
    (root / MANIFEST_NAME).write_text(json.dumps(raw))
    with pytest.raises(DataError, match="mmse-dataset format version 99 is newer than this code"):
        data_fingerprint(root)
    raw["format"] = 7
    (root / MANIFEST_NAME).write_text(json.dumps(raw))
    with pytest.raises(DataError, match="not a dataset manifest \\(format 7, expected"):
        data_fingerprint(root)


def test_a_manifest_of_the_untagged_version_1_still_reads(built, tmp_path):
    """Version 1 wrote `"format": 1` and no tag; its layout is today's less the folder's
    marker (tool, kind, contents: version 3)."""
    _, data = built
    root = tmp_path / "data"
    shutil.copytree(data, root)
    raw = json.loads((root / MANIFEST_NAME).read_text())
    for key in ("format_version", "tool", "kind", "contents"):
        del raw[key]
    raw["format"] = 1
    (root / MANIFEST_NAME).write_text(json.dumps(raw))
    assert read_manifest(root) == dataclasses.replace(read_manifest(data), contents=None)


def test_one_function_says_whether_a_data_root_is_synthetic(built, tmp_path):
    cohort, data = built
    # The cohort's SYNTHETIC.txt, carried by the build into dataset.json, is what counts.
    assert (cohort / SYNTHETIC_MARKER).is_file() and is_synthetic(data)
    recorded = tmp_path / "recorded"
    shutil.copytree(cohort, recorded)
    (recorded / SYNTHETIC_MARKER).unlink()
    assert main(build_argv(recorded, tmp_path / "data")) == 0
    assert not is_synthetic(tmp_path / "data")
    assert json.loads((tmp_path / "data" / MANIFEST_NAME).read_text())["synthetic"] is False
    # A SYNTHETIC.txt dropped into a built root does not overrule its dataset.json...
    (tmp_path / "data" / SYNTHETIC_MARKER).write_text("no")
    assert not is_synthetic(tmp_path / "data")
    # ...while a root without one (written before manifests) says so by the marker alone.
    old = write_planted_root(tmp_path / "old", {SIGS[0]: 1.0}, identity=False)
    assert not is_synthetic(old)
    (old / SYNTHETIC_MARKER).write_text("simulated")
    assert is_synthetic(old)


def test_the_recordings_a_build_left_out_are_counted_from_its_report(built, tmp_path):
    _cohort, data = built
    assert excluded_recordings(data) == 1  # synth0002's empty Q4
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    (copy / "build_report.csv").write_text("something else\n")
    assert excluded_recordings(copy) is None  # not the build's report: unknown, not 0
    (copy / "build_report.csv").unlink()
    assert excluded_recordings(copy) is None
    # A root without dataset.json was not built whole by `mmse data build`: it does not say.
    assert (
        excluded_recordings(write_planted_root(tmp_path / "old", {SIGS[0]: 1.0}, identity=False))
        is None
    )
