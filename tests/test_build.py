"""`mmse data build`: contract, determinism, skip policy, errors, learnability (no Ray)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from mmse_app.cli import main
from mmse_model.features.rqa import FEATURE_NAMES
from mmse_model.synth import cohort as synth

SIGS = ["m2_tau1_eps0.055_lmin2", "m3_tau3_eps0.08_lmin3"]
TASKS = ("Q1", "Q2", "Q3", "Q4", "Q5")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build") / "cohort"
    synth.synthesize(out, n_subjects=8, seed=5, duration_s=(3.0, 5.0))
    return out


def files(root: Path) -> dict[Path, bytes]:
    return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def build_argv(
    cohort: Path, out: Path, signatures=SIGS, labels: Path | None = None, no_ray: bool = True
) -> list[str]:
    """`mmse data build` arguments for a synthesised cohort folder."""
    args = ["data", "build", "--recordings", str(cohort / "recordings")]
    args += ["--labels", str(labels or cohort / "labels.csv"), "--out", str(out)]
    for sig in signatures:
        args += ["--signature", sig]
    return args + (["--no-ray"] if no_ray else [])


def build(cohort: Path, out: Path, *extra: str, labels: Path | None = None) -> int:
    return main(build_argv(cohort, out, labels=labels) + list(extra))


def test_datasets_follow_the_contract(cohort: Path, tmp_path: Path) -> None:
    assert build(cohort, tmp_path / "data") == 0
    labels = {r["subject_id"]: r for r in csv.DictReader((cohort / "labels.csv").open())}
    for task in TASKS:
        subjects = None
        for sig in SIGS:
            with np.load(tmp_path / "data" / sig / f"{task}.npz", allow_pickle=False) as d:
                assert d["X"].shape == (8, 10) and d["X"].dtype == np.float64
                assert np.isfinite(d["X"]).all()
                assert d["subject_id"].dtype.kind == "U"
                assert list(d["feature_names"]) == list(FEATURE_NAMES)
                expected_y = [float(labels[s][task]) for s in d["subject_id"]]
                np.testing.assert_array_equal(d["y"], expected_y)
                if subjects is not None:  # same subjects, same order in every signature
                    np.testing.assert_array_equal(d["subject_id"], subjects)
                subjects = d["subject_id"]
    report = (tmp_path / "data" / "build_report.csv").read_text()
    assert report == "subject_id,task,reason\n"


def test_rebuild_is_byte_identical(cohort: Path, tmp_path: Path) -> None:
    assert build(cohort, tmp_path / "a") == 0
    assert build(cohort, tmp_path / "b") == 0
    first = files(tmp_path / "a")
    assert len(first) == 12  # 2 signatures x 5 tasks + the report + dataset.json
    assert build(cohort, tmp_path / "a") == 0  # over its own output: no temporaries left
    assert files(tmp_path / "a") == first == files(tmp_path / "b")


def test_fixation_mode(tmp_path: Path) -> None:
    synth.synthesize(tmp_path / "c", n_subjects=4, seed=2, duration_s=(20.0, 25.0))
    args = build_argv(tmp_path / "c", tmp_path / "fx", signatures=["m2_tau1_eps0.05_lmin2"])
    assert main([*args, "--mode", "fixation"]) == 0
    for task in TASKS:
        with np.load(tmp_path / "fx" / "m2_tau1_eps0.05_lmin2" / f"{task}.npz") as d:
            assert d["X"].shape == (4, 10) and np.isfinite(d["X"]).all()


def test_bad_recordings_are_skipped_and_reported(
    cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(cohort, broken)
    rec = broken / "recordings"
    (rec / "synth0000" / "Q1.csv").write_text("")
    (rec / "synth0001" / "Q2.csv").write_text("t,x\n0,0.5\n")
    (rec / "synth0002" / "Q3.csv").write_text("t,x,y\n0,0.5,0.5\n0.01,abc,0.5\n")
    (rec / "synth0003" / "Q4.csv").write_text("t,x,y\n0,nan,nan\n0.01,,\n")
    (rec / "synth0004" / "Q5.csv").write_text("t,x,y\n0,0.5,0.5\n0.01,0.5,0.5\n0.02,0.4,0.4\n")
    (rec / "synth0005" / "Q1.csv").unlink()
    shutil.copytree(rec / "synth0006", rec / "stranger")  # recordings without labels
    (rec / "synth0006" / "Q2.csv").write_text("t,x,y\n0,0.5,0.5\n0.02,0.5,0.5\n0.01,0.5,0.5\n")
    shutil.rmtree(rec / "synth0007")  # labels without recordings
    capsys.readouterr()
    assert build(broken, tmp_path / "data") == 0
    err = capsys.readouterr().err
    assert "warning: skipped 9" in err and "build_report.csv" in err

    report = list(csv.DictReader((tmp_path / "data" / "build_report.csv").open()))
    reasons = {(r["subject_id"], r["task"]): r["reason"] for r in report}
    assert reasons == {
        ("stranger", "all"): reasons[("stranger", "all")],
        ("synth0000", "Q1"): "empty file",
        ("synth0001", "Q2"): "missing column(s) y",
        ("synth0002", "Q3"): "line 3: non-numeric value 'abc'",
        ("synth0003", "Q4"): "no valid gaze samples (all NaN or off-screen)",
        ("synth0004", "Q5"): reasons[("synth0004", "Q5")],
        ("synth0005", "Q1"): "missing recording Q1.csv",
        ("synth0006", "Q2"): "timestamps do not increase (sample 3: t=0.01)",
        ("synth0007", "all"): "no recordings directory",
    }
    assert "no labels" in reasons[("stranger", "all")]
    assert reasons[("synth0004", "Q5")].startswith("too short for the embedding of m2_tau1")
    for task, gone in {
        "Q1": {"synth0000", "synth0005"},
        "Q2": {"synth0001", "synth0006"},
        "Q3": {"synth0002"},
        "Q4": {"synth0003"},
        "Q5": {"synth0004"},
    }.items():
        for sig in SIGS:  # skipped in every signature, kept in the other tasks
            with np.load(tmp_path / "data" / sig / f"{task}.npz", allow_pickle=False) as d:
                subjects = set(d["subject_id"])
            assert not subjects & (gone | {"stranger", "synth0007"})
            assert len(subjects) == 7 - len(gone)


LABEL_ERRORS = {
    "missing column": ("subject_id,Q1,Q2,Q3,Q4,mmse\nsynth0000,5,5,3,5,29\n", "missing column"),
    "non-numeric": ("subject_id,Q1,Q2,Q3,Q4,Q5\nsynth0000,5,five,3,5,3\n", "not a number"),
    "out of range": ("subject_id,Q1,Q2,Q3,Q4,Q5\nsynth0000,5,5,4,5,3\n", "Q3=4 outside 0-3"),
    "duplicate": ("subject_id,Q1,Q2,Q3,Q4,Q5\ns1,5,5,3,5,3\ns1,5,5,3,5,3\n", "duplicate"),
    "inconsistent": ("subject_id,Q1,Q2,Q3,Q4,Q5,mmse\ns1,5,5,3,5,3,12\n", "inconsistent"),
    "ragged": ("subject_id,Q1,Q2,Q3,Q4,Q5\ns1,5,5,3\n", "expected 6 fields"),
    "empty": ("", "empty labels file"),
    "header only": ("subject_id,Q1,Q2,Q3,Q4,Q5\n", "no label rows"),
}


@pytest.mark.parametrize("case", sorted(LABEL_ERRORS))
def test_malformed_labels_exit_2_and_write_nothing(
    case: str, cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    text, message = LABEL_ERRORS[case]
    labels = tmp_path / "labels.csv"
    labels.write_text(text)
    capsys.readouterr()
    assert build(cohort, tmp_path / "data", labels=labels) == 2
    err = capsys.readouterr().err
    assert message in err and str(labels) in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "signature", ["m2_tau1_eps0.055", "m0_tau1_eps0.05_lmin2", "m2_tau1_eps0_lmin2", "junk"]
)
def test_malformed_signature_exit_2_and_keeps_old_output(
    signature: str, cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert build(cohort, tmp_path / "data") == 0
    before = files(tmp_path / "data")
    capsys.readouterr()
    assert build(cohort, tmp_path / "data", "--signature", signature) == 2
    err = capsys.readouterr().err
    assert f"signature {signature!r}" in err and len(err.strip().splitlines()) == 1
    assert files(tmp_path / "data") == before


def test_missing_inputs_exit_2(cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert build(cohort, tmp_path / "d", labels=tmp_path / "nope.csv") == 2
    assert "labels file not found" in capsys.readouterr().err
    assert build(tmp_path / "nowhere", tmp_path / "d", labels=cohort / "labels.csv") == 2
    assert "recordings directory not found" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert build(cohort, tmp_path / "file") == 2
    assert "exists and is a file, not a folder" in capsys.readouterr().err


def test_a_model_can_learn_but_not_trivially(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # RQA at 30 Hz on 30 Hz recordings (nothing resampled; the 0.25 s Theiler window is 8
    # samples) keeps the build to seconds; the gaze dynamics are the simulator's own.
    monkeypatch.setattr("mmse_model.features.build.RQA_RATE_HZ", 30.0)
    synth.synthesize(tmp_path / "c", n_subjects=200, seed=11, sample_rates_hz=(30.0,))
    sig = "m2_tau1_eps0.055_lmin2"
    assert main(build_argv(tmp_path / "c", tmp_path / "data", signatures=[sig])) == 0
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    scores = {}
    for task in TASKS:
        with np.load(tmp_path / "data" / sig / f"{task}.npz", allow_pickle=False) as d:
            model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
            cv = KFold(5, shuffle=True, random_state=0)
            scores[task] = cross_val_score(model, d["X"], d["y"], cv=cv, scoring="r2").mean()
    learnable = [t for t, r2 in scores.items() if 0.1 < r2 < 0.95]
    assert len(learnable) >= 3, scores
    assert max(scores.values()) < 0.95, scores
