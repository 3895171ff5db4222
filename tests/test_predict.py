import csv

import numpy as np
import pytest

from mmse_app.cli import main
from mmse_model.training.checkpoint import FoldEnsemble, load_checkpoint
from tests.conftest import SIG


@pytest.fixture(scope="module")
def model_dir(data_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "run"
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
                str(out),
                "--set",
                "training.epochs=5",
                "--set",
                "split.folds=3",
            ]
        )
        == 0
    )
    return out / "model"


def read_rows(path):
    return list(csv.DictReader(open(path)))


def test_predict_from_npz_matches_the_ensemble(model_dir, data_root, tmp_path, capsys):
    source = np.load(data_root / SIG / "Q1.npz", allow_pickle=False)
    out = tmp_path / "pred.csv"
    assert (
        main(
            [
                "predict",
                "--model",
                str(model_dir),
                "--input",
                str(data_root / SIG / "Q1.npz"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rows = read_rows(out)
    assert len(rows) == len(source["y"])
    assert [r["subject_id"] for r in rows] == list(source["subject_id"])
    expected = FoldEnsemble.from_checkpoint(load_checkpoint(model_dir)).predict(source["X"])
    got = np.array([float(r["Q1_predicted"]) for r in rows])
    np.testing.assert_allclose(got, expected, atol=5e-5)
    assert got.min() >= 0 and got.max() <= 5
    assert all(float(r["fold_sd"]) >= 0 for r in rows)


def test_predict_from_csv(model_dir, data_root, tmp_path):
    source = np.load(data_root / SIG / "Q1.npz", allow_pickle=False)
    path = tmp_path / "features.csv"
    with open(path, "w") as fh:
        fh.write("subject_id," + ",".join(str(n) for n in source["feature_names"]) + "\n")
        fh.writelines(
            sid + "," + ",".join(repr(float(v)) for v in row) + "\n"
            for sid, row in zip(source["subject_id"][:5], source["X"][:5])
        )
    argv = [
        "predict",
        "--model",
        str(model_dir),
        "--input",
        str(path),
        "--out",
        str(tmp_path / "p.csv"),
    ]
    # A CSV records no identity and its path says none: the user states signature and task.
    assert main(argv) == 2
    assert main([*argv, "--signature", SIG, "--task", "Q1"]) == 0
    assert [r["subject_id"] for r in read_rows(tmp_path / "p.csv")] == list(
        source["subject_id"][:5]
    )


def test_predict_refuses_features_of_another_kind(model_dir, tmp_path, capsys):
    path = tmp_path / "other.npz"
    np.savez(path, X=np.zeros((3, 10)), feature_names=np.array([f"other{i}" for i in range(10)]))
    out = tmp_path / "p.csv"
    assert (
        main(
            [
                "predict",
                "--model",
                str(model_dir),
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
        == 2
    )
    err = capsys.readouterr().err
    assert "feature_names" in err and str(path) in err and err.count("\n") == 1
    assert not out.exists()
    bad = tmp_path / "nine.npz"
    np.savez(bad, X=np.zeros((3, 9)))
    assert main(["predict", "--model", str(model_dir), "--input", str(bad), "--out", str(out)]) == 2
    assert "X must have shape (N, 10)" in capsys.readouterr().err
    assert (
        main(["predict", "--model", str(tmp_path / "none"), "--input", str(bad), "--out", str(out)])
        == 2
    )
    assert "no such checkpoint" in capsys.readouterr().err


def _save_one_array(path):
    with open(path, "wb") as fh:  # a file object: np.save would add .npy to a path
        np.save(fh, np.zeros((3, 10)))


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (
            _save_one_array,
            "not an npz archive (a single .npy array)",
        ),
        (
            lambda p: np.savez(p, X=np.zeros((3, 10)), subject_id=np.array(["a", "b"])),
            "subject_id must have shape (3,) like X's rows, got (2,)",
        ),
    ],
)
def test_predict_refuses_a_malformed_input_in_one_line(model_dir, tmp_path, capsys, write, message):
    path = tmp_path / "input.npz"
    write(path)
    out = tmp_path / "p.csv"
    assert (
        main(["predict", "--model", str(model_dir), "--input", str(path), "--out", str(out)]) == 2
    )
    err = capsys.readouterr().err
    assert message in err and str(path) in err and err.count("\n") == 1
    assert not out.exists()


def test_predict_to_an_unwritable_place_is_one_line(model_dir, data_root, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    out = blocker / "p.csv"
    assert (
        main(
            [
                "predict",
                "--model",
                str(model_dir),
                "--input",
                str(data_root / SIG / "Q1.npz"),
                "--out",
                str(out),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith(f"mmse: error: {out}: cannot write") and err.count("\n") == 1
