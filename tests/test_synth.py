"""The synthetic cohort: file layout, label consistency, reproducibility, speed."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from mmse_model import synth
from mmse_app.cli import main


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "cohort"
    synth.synthesize(out, n_subjects=6, seed=3)
    return out


def test_layout_rates_durations_and_blinks(cohort_dir: Path) -> None:
    subjects = sorted(p.name for p in (cohort_dir / "recordings").iterdir())
    assert len(subjects) == 6 and (cohort_dir / "SYNTHETIC.txt").exists()
    saw_blink = False
    for subject in subjects:
        for task in synth.TASK_NAMES:
            path = cohort_dir / "recordings" / subject / f"{task}.csv"
            assert path.read_text().startswith("t,x,y\n")
            data = np.loadtxt(path, delimiter=",", skiprows=1)
            rate = 1.0 / np.median(np.diff(data[:, 0]))
            assert 89 <= rate <= 121
            assert 19.9 <= data[-1, 0] <= 40.0
            xy = data[:, 1:]
            gaps = np.isnan(xy).all(axis=1)
            saw_blink |= bool(gaps.any())
            assert np.array_equal(np.isnan(xy).any(axis=1), gaps)  # blink rows: x and y nan
            assert ((xy[~gaps] >= 0) & (xy[~gaps] <= 1)).all()
    assert saw_blink


def test_labels_consistent_with_mmse(cohort_dir: Path) -> None:
    rows = list(csv.DictReader((cohort_dir / "labels.csv").open()))
    assert list(rows[0]) == ["subject_id", "Q1", "Q2", "Q3", "Q4", "Q5", "mmse", "group"]
    for row in rows:
        assert row["group"] in synth.GROUPS
        scores = [int(row[q]) for q in synth.TASK_NAMES]
        assert all(0 <= s <= hi for s, hi in zip(scores, (5, 5, 3, 5, 3)))
        assert 0 <= int(row["mmse"]) - sum(scores) <= 9


def test_cohort_distribution_is_clinical() -> None:
    cohort = synth.simulate_cohort(6000, np.random.default_rng(0))
    np.testing.assert_allclose(np.bincount(cohort.group) / 6000, synth.GROUP_PROPORTIONS, atol=0.02)
    means = [cohort.mmse[cohort.group == g].mean() for g in range(3)]
    assert means[0] > means[1] > means[2]
    assert 28 < means[0] <= 30 and 25.5 < means[1] < 28 and 18 < means[2] < 23
    assert (cohort.items.sum(axis=1) == cohort.mmse).all()
    # Impairment costs recall (Q5) more than registration (Q3), in proportion to the range.
    lost = 1 - cohort.items[:, :5] / synth.ITEM_MAX[:5]
    assert lost[:, 4].mean() > lost[:, 2].mean()


def test_reproducible_by_seed(tmp_path: Path) -> None:
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        synth.synthesize(tmp_path / name, n_subjects=2, seed=seed, duration_s=(2.0, 3.0))
    q3 = Path("recordings/synth0001/Q3.csv")
    assert (tmp_path / "a" / q3).read_bytes() == (tmp_path / "b" / q3).read_bytes()
    assert (tmp_path / "a" / q3).read_bytes() != (tmp_path / "c" / q3).read_bytes()


def test_cli_refuses_existing_output(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    assert main(["data", "synth", "--out", str(tmp_path / "taken"), "--subjects", "2"]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"
    assert main(["data", "synth", "--out", str(tmp_path / "new"), "--subjects", "0"]) == 2
    assert not (tmp_path / "new").exists()
