"""Subject ids are strings exactly as written, in every reader: `007` stays `007`, `1e3` stays
`1e3` (recordings, labels, npz, features CSV, groups file, predictions; no Ray)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from mmse_app.cli import main
from mmse_model.core.errors import DataError
from mmse_model.data.dataset import load_task_data, read_features
from mmse_model.data.manifest import read_manifest
from mmse_model.sweeps.summary import dementia_auc, read_groups
from mmse_model.synth import cohort as synth
from tests.conftest import SIG, save_npz
from tests.test_build import build_argv

IDS = [
    "007",
    "1e3",
    "0042",
    "7",
    "1000",
    "42.0",
]  # the last three: what numbers would make of the first


def test_a_build_keeps_the_ids_of_folders_and_labels(tmp_path):
    synth.synthesize(tmp_path / "c", n_subjects=len(IDS), seed=1, duration_s=(3.0, 4.0))
    labels = (tmp_path / "c" / "labels.csv").read_text()
    for i, new in enumerate(IDS):
        old = f"synth{i:04d}"
        (tmp_path / "c" / "recordings" / old).rename(tmp_path / "c" / "recordings" / new)
        labels = labels.replace(f"{old},", f"{new},")
    (tmp_path / "c" / "labels.csv").write_text(labels)
    assert main(build_argv(tmp_path / "c", tmp_path / "data", signatures=[SIG])) == 0
    for task in ("Q1", "Q5"):
        with np.load(tmp_path / "data" / SIG / f"{task}.npz", allow_pickle=False) as npz:
            assert npz["subject_id"].dtype.kind == "U"
            assert sorted(npz["subject_id"]) == sorted(IDS)
        assert sorted(
            load_task_data(tmp_path / "data" / SIG / f"{task}.npz", (0, 5)).subject_ids
        ) == sorted(IDS)
        assert sorted(read_manifest(tmp_path / "data").subjects[task]) == sorted(IDS)


def test_npz_ids_are_read_as_written_and_numbers_that_lost_them_are_refused(tmp_path):
    X, y = np.zeros((6, 10)), np.arange(6.0) % 4
    path = save_npz(tmp_path / SIG / "Q1.npz", X=X, y=y, subject_id=np.array(IDS))
    assert list(load_task_data(path, (0, 5)).subject_ids) == IDS
    assert list(read_features(path).subject_ids) == IDS
    save_npz(
        path, X=X, y=y, subject_id=np.array([7, 1000, 42, 8, 9, 10])
    )  # integers: spelt in decimal
    assert list(load_task_data(path, (0, 5)).subject_ids) == ["7", "1000", "42", "8", "9", "10"]
    save_npz(path, X=X, y=y, subject_id=np.array([7.0, 1000.0, 42.0, 8.0, 9.0, 10.0]))
    with pytest.raises(DataError, match=rf"^{path}: subject_id must be strings, got float64"):
        load_task_data(path, (0, 5))
    with pytest.raises(DataError, match="subject_id must be strings"):
        read_features(path)


def _features_csv(path: Path, ids: list[str], names: list[str], X: np.ndarray) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subject_id", *names])
        writer.writerows([sid, *(repr(float(v)) for v in row)] for sid, row in zip(ids, X))
    return path


def test_a_features_csv_keeps_its_ids_through_predict(data_root, tmp_path):
    with np.load(data_root / SIG / "Q1.npz", allow_pickle=False) as npz:
        X, names = npz["X"][: len(IDS)], [str(n) for n in npz["feature_names"]]
    path = _features_csv(tmp_path / "features.csv", IDS, names, X)
    features = read_features(path)
    assert list(features.subject_ids) == IDS and features.identity is None
    np.testing.assert_array_equal(features.X, X)
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--no-ray",
                "--data",
                str(data_root),
                "--sig",
                SIG,
                "--q",
                "Q1",
                "--out",
                str(run),
                "--set",
                "training.epochs=2",
                "--set",
                "split.folds=3",
            ]
        )
        == 0
    )
    out = tmp_path / "predictions.csv"
    # A CSV records no identity and its path says none: signature and task are stated.
    assert (
        main(
            [
                "predict",
                "--model",
                str(run / "model"),
                "--input",
                str(path),
                "--out",
                str(out),
                "--signature",
                SIG,
                "--task",
                "Q1",
            ]
        )
        == 0
    )
    with open(out, newline="") as handle:
        assert [row["subject_id"] for row in csv.DictReader(handle)] == IDS


def test_a_features_csv_with_a_bad_cell_is_one_line_naming_it(tmp_path):
    names = [f"f{i}" for i in range(10)]
    path = _features_csv(tmp_path / "f.csv", ["007", "008"], names, np.zeros((2, 10)))
    text = path.read_text().replace("008,0.0", "008,zero", 1)
    path.write_text(text)
    with pytest.raises(DataError, match=rf"^{path}: line 3: f0='zero' is not a number$"):
        read_features(path)
    path.write_bytes(
        b"subject_id," + ",".join(names).encode() + b"\n\xe9\xe9," + b"0," * 9 + b"0\n"
    )
    with pytest.raises(DataError, match=rf"^{path}: not UTF-8 text$"):
        read_features(path)


def test_a_groups_file_matches_ids_as_written(tmp_path):
    groups = tmp_path / "labels.csv"
    groups.write_text("subject_id,group\n007,dementia\n1e3,healthy\n0042,dementia\n")
    ids = ["007", "1e3", "0042", "7", "1000"]
    result = dementia_auc(
        ids,
        np.array([10.0, 20.0, 12.0, 5.0, 5.0]),
        read_groups(str(groups)),
        str(groups),
        seed=0,
        synthetic=False,
    )
    assert (result["n_dementia"], result["n_other"], result["n_without_group"]) == (2, 1, 2)
    assert result["auc"] == 1.0


def test_the_cohort_writer_and_the_labels_reader_agree_on_ids(tmp_path):
    from mmse_model.features.recordings import read_labels

    synth.synthesize(tmp_path / "c", n_subjects=3, seed=0, duration_s=(3.0, 4.0))
    shutil.copy(tmp_path / "c" / "labels.csv", tmp_path / "labels.csv")
    text = (
        (tmp_path / "labels.csv")
        .read_text()
        .replace("synth0001,", "0042,")
        .replace("synth0002,", "1e3,")
    )
    (tmp_path / "labels.csv").write_text(text)
    assert sorted(read_labels(tmp_path / "labels.csv")) == ["0042", "1e3", "synth0000"]
