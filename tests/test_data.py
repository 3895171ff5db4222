import re

import numpy as np
import pytest
import torch

from mmse_app.cli import main
from mmse_model.core.config import Config
from mmse_model.core.errors import DataError
from mmse_model.data.dataset import (
    build_member_tensors,
    load_group,
    load_task_data,
    make_split,
    min_subjects,
)
from tests.conftest import SIG, WEAK_SIG, save_npz

Q1_RANGE = (0.0, 5.0)


def good_arrays(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "X": rng.normal(size=(n, 10)),
        "y": rng.integers(0, 6, size=n).astype(float),
        "subject_id": np.array([f"S{i}" for i in range(n)]),
    }


def write_case(tmp_path, name, arrays):
    return save_npz(tmp_path / SIG / "Q1.npz", **arrays) if name else None


def bad_cases():
    a = good_arrays()
    yield "missing X", {k: v for k, v in a.items() if k != "X"}, "missing array 'X'"
    yield "missing y", {k: v for k, v in a.items() if k != "y"}, "missing array 'y'"
    yield "X 1-D", {**a, "X": a["X"][:, 0]}, "X must have shape (N, 10), got (40,)"
    yield "X 9 columns", {**a, "X": a["X"][:, :9]}, "X must have shape (N, 10), got (40, 9)"
    yield "row counts", {**a, "y": a["y"][:-1]}, "X has 40 rows but y has 39"
    x_nan = a["X"].copy()
    x_nan[3, 2] = np.nan
    yield "NaN in X", {**a, "X": x_nan}, "X has 1 NaN/Inf values (first in row 3)"
    y_inf = a["y"].copy()
    y_inf[5] = np.inf
    yield "Inf in y", {**a, "y": y_inf}, "y has 1 NaN/Inf values (first in row 5)"
    y_out = a["y"].copy()
    y_out[7] = 6.0
    yield "y out of range", {**a, "y": y_out}, "outside the task's range [0, 5] (row 7: 6)"
    yield (
        "object array",
        {**a, "subject_id": np.array(["a", 1] * 20, dtype=object)},
        "pickled objects",
    )
    ids = a["subject_id"].copy()
    ids[1] = ids[0]
    y_conflict = a["y"].copy()
    y_conflict[0], y_conflict[1] = 1.0, 2.0
    yield (
        "conflicting duplicate",
        {**a, "subject_id": ids, "y": y_conflict},
        "subject 'S0' has conflicting y values",
    )


@pytest.mark.parametrize(
    ("case", "arrays", "message"), list(bad_cases()), ids=[c[0] for c in bad_cases()]
)
def test_bad_dataset_is_one_line_exit_2_naming_the_file(tmp_path, capsys, case, arrays, message):
    root = tmp_path / "data"
    path = save_npz(root / SIG / "Q1.npz", **arrays)
    out = tmp_path / "out"
    code = main(
        ["train", "--no-ray", "--data", str(root), "--sig", SIG, "--q", "Q1", "--out", str(out)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert str(path) in err and message in err
    assert not out.exists(), "nothing may be written on bad input"


def test_missing_file_and_non_npz(tmp_path, capsys):
    args = [
        "train",
        "--no-ray",
        "--data",
        str(tmp_path / "data"),
        "--sig",
        SIG,
        "--q",
        "Q1",
        "--out",
        str(tmp_path / "o"),
    ]
    assert main(args) == 2
    assert "Q1.npz: no such dataset file" in capsys.readouterr().err
    (tmp_path / "data" / SIG).mkdir(parents=True)
    (tmp_path / "data" / SIG / "Q1.npz").write_text("X,y\n1,2\n")
    assert main(args) == 2
    assert "Q1.npz: not a readable npz archive" in capsys.readouterr().err


def test_single_npy_file_is_refused(tmp_path):
    path = tmp_path / "Q1.npz"
    with open(path, "wb") as fh:
        np.save(fh, np.zeros((3, 10)))
    with pytest.raises(DataError, match="not an npz archive"):
        load_task_data(path, Q1_RANGE)


def test_bad_signature_and_task_names(tmp_path, capsys):
    base = ["train", "--no-ray", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "o")]
    assert main([*base, "--sig", "m2-tau1", "--q", "Q1"]) == 2
    assert "signature 'm2-tau1'" in capsys.readouterr().err
    assert main([*base, "--sig", SIG, "--q", "Q9"]) == 2
    assert "task 'Q9'" in capsys.readouterr().err


def test_too_few_subjects(tmp_path):
    a = good_arrays(n=8)
    path = save_npz(tmp_path / "Q1.npz", **a)
    data = load_task_data(path, Q1_RANGE)
    with pytest.raises(
        DataError, match=r"8 subjects, need at least 12 for 5 folds and a 20% test set"
    ):
        make_split(data.subject_ids, data.y, folds=5, test_fraction=0.2, seed=0, source=str(path))
    assert min_subjects(5, 0.2) == 12


def test_consistent_duplicate_rows_are_one_subject(tmp_path):
    a = good_arrays(n=40)
    a["subject_id"][1] = a["subject_id"][0]
    a["y"][1] = a["y"][0]
    data = load_task_data(save_npz(tmp_path / "Q1.npz", **a), Q1_RANGE)
    assert len(data.subjects) == 39
    split = make_split(data.subject_ids, data.y, 3, 0.2, 0)
    assert len(split.test_subjects) + len(split.fold_of_subject) == 39


def test_row_index_stands_in_for_missing_subject_ids(tmp_path):
    a = good_arrays()
    del a["subject_id"]
    data = load_task_data(save_npz(tmp_path / "Q1.npz", **a), Q1_RANGE)
    assert len(data.subjects) == 40


# --- splits ---------------------------------------------------------------------------------


def test_split_partitions_subjects_and_is_stratified():
    rng = np.random.default_rng(1)
    ids = np.array([f"P{i}" for i in range(200)])
    y = rng.integers(0, 6, size=200).astype(float)
    split = make_split(ids, y, folds=5, test_fraction=0.2, seed=3)
    test = set(split.test_subjects)
    assert len(test) == 40
    assert not test & set(split.fold_of_subject)
    assert test | set(split.fold_of_subject) == set(ids)
    fold_sizes = np.bincount(list(split.fold_of_subject.values()))
    assert fold_sizes.max() - fold_sizes.min() <= 1
    # Stratified: the test set's score distribution follows the cohort's to within 2 subjects.
    score = dict(zip(ids, y))
    for value in range(6):
        share = np.mean(y == value) * 40
        assert abs(sum(score[s] == value for s in test) - share) <= 2


def test_split_is_seeded_and_order_free():
    ids = np.array([f"P{i}" for i in range(60)])
    y = np.arange(60) % 4 * 1.0
    a = make_split(ids, y, 5, 0.2, seed=7)
    shuffled = np.random.default_rng(0).permutation(60)
    b = make_split(ids[shuffled], y[shuffled], 5, 0.2, seed=7)
    c = make_split(ids, y, 5, 0.2, seed=8)
    assert a == b
    assert a.test_subjects != c.test_subjects


def test_every_signature_of_a_task_gets_the_same_split(data_root):
    config = Config()
    splits = []
    for sig in (SIG, WEAK_SIG):
        data = load_task_data(data_root / sig / "Q1.npz", config.score_range("Q1"))
        splits.append(make_split(data.subject_ids, data.y, 5, 0.2, config.split.seed))
    assert splits[0] == splits[1]


# --- fold tensors ---------------------------------------------------------------------------


def test_standardiser_uses_training_subjects_only(data_root):
    group = load_group(data_root, [SIG], "Q1", Q1_RANGE)
    data = group.task_data(SIG)
    split = make_split(data.subject_ids, data.y, 3, 0.2, 0)
    folds = build_member_tensors(group, split, Q1_RANGE, dtype=torch.float64)
    for k in range(3):
        train_ids = [s for s, f in split.fold_of_subject.items() if f != k]
        rows = np.isin(data.subject_ids, train_ids)
        np.testing.assert_allclose(folds.standardiser.mean[k], data.X[rows].mean(axis=0))
        np.testing.assert_allclose(folds.standardiser.scale[k], data.X[rows].std(axis=0))
        n = int(folds.train_counts[k])
        assert n == rows.sum()
        z = folds.X_train[k, :n].numpy()
        np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-9)
        np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-9)
    # Test subjects are nowhere in the tensors.
    n_test_rows = np.isin(data.subject_ids, split.test_subjects).sum()
    assert int(folds.val_mask.sum()) == len(data.y) - n_test_rows
    # y is scaled by the task's range, not by the data's own min and max.
    y_val = folds.y_val[folds.val_mask].numpy()
    assert y_val.min() >= 0 and y_val.max() <= 1
    val_rows = np.array([split.fold_of_subject.get(s) == 0 for s in data.subject_ids])
    np.testing.assert_allclose(
        sorted(folds.y_val[0, : int(folds.val_mask[0].sum())].numpy()),
        sorted(data.y[val_rows] / 5.0),
    )


def test_a_group_aligns_rows_across_signatures(tmp_path):
    """Files of two signatures list the same subjects in different orders: the group puts
    them in one order, so row i is the same subject (and score) under both."""
    rng = np.random.default_rng(0)
    ids = np.array([f"S{i:03d}" for i in range(40)])
    y = rng.integers(0, 6, 40).astype(float)
    X = rng.normal(size=(40, 10))
    order = rng.permutation(40)
    save_npz(tmp_path / "m2_tau1_eps0.1_lmin2" / "Q1.npz", X=X, y=y, subject_id=ids)
    save_npz(
        tmp_path / "m3_tau1_eps0.1_lmin2" / "Q1.npz",
        X=X[order] * 2,
        y=y[order],
        subject_id=ids[order],
    )
    group = load_group(tmp_path, ["m2_tau1_eps0.1_lmin2", "m3_tau1_eps0.1_lmin2"], "Q1", Q1_RANGE)
    assert group.X.shape == (2, 40, 10)
    np.testing.assert_array_equal(group.subject_ids, np.sort(ids))
    np.testing.assert_allclose(group.X[1], 2 * group.X[0])
    split = make_split(group.subject_ids, group.y, 3, 0.2, 0)
    folds = build_member_tensors(group, split, Q1_RANGE, dtype=torch.float64)
    assert folds.n_members == 6 and folds.n_folds == 3 and folds.n_signatures == 2
    torch.testing.assert_close(
        folds.y_train[0], folds.y_train[3]
    )  # signature 2's fold 0 = signature 1's


@pytest.mark.parametrize(
    "change, message",
    [
        ("subject", "subjects (or rows per subject) differ"),
        ("score", "scores 5 here but"),
    ],
)
def test_a_group_refuses_signatures_that_disagree(tmp_path, change, message):
    ids = np.array([f"S{i:03d}" for i in range(30)])
    y = np.array([i % 5 for i in range(30)], dtype=float)
    save_npz(
        tmp_path / "m2_tau1_eps0.1_lmin2" / "Q1.npz", X=np.zeros((30, 10)), y=y, subject_id=ids
    )
    other_ids, other_y = ids.copy(), y.copy()
    if change == "subject":
        other_ids[3] = "S999"
    else:
        other_y[0] = 5.0
    save_npz(
        tmp_path / "m3_tau1_eps0.1_lmin2" / "Q1.npz",
        X=np.zeros((30, 10)),
        y=other_y,
        subject_id=other_ids,
    )
    with pytest.raises(DataError, match=re.escape(message)) as info:
        load_group(tmp_path, ["m2_tau1_eps0.1_lmin2", "m3_tau1_eps0.1_lmin2"], "Q1", Q1_RANGE)
    assert str(info.value).startswith(str(tmp_path / "m3_tau1_eps0.1_lmin2" / "Q1.npz"))
