"""Inputs are bounded and of the right kind (issue 27): a features file above `--max-file-mb`
is refused before it is read (an npz's arrays also unpacked), a task of 0 subjects is an
error naming the file, and a recording that is a directory, a FIFO, a device or a symlink
leading outside the recordings folder is skipped with its reason, never read and never
skipped in silence."""

from __future__ import annotations

import csv
import io
import os
import shutil
import zipfile

import numpy as np
import pytest

from mmse_app.cli import main
from mmse_model.synth import cohort as synth
from tests.fixtures.toy_data import write_npz
from tests.fixtures.trained_sweep import STRONG
from tests.test_build import build_argv
from tests.test_bundle_integrity import predict_argv, refused, snapshot


def model_argv(experiment, features, out, *extra):
    checkpoint = next((experiment / "train_runs" / "t_Q1").iterdir())
    return [
        "predict",
        "--model",
        str(checkpoint),
        "--signature",
        STRONG,
        "--input",
        str(features),
        "--out",
        str(out),
        *extra,
    ]


def test_help_says_the_cap(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--max-file-mb MB" in text and "before reading it" in text and "default 100 MB" in text


def test_a_features_csv_above_the_cap_is_refused_unread(bundled_sweep, tmp_path, capsys):
    """The issue's 2 GB sparse file: a MemoryError traceback before, one line now."""
    experiment, root, bundle = bundled_sweep
    big = tmp_path / "big.csv"
    with open(big, "wb") as handle:
        handle.truncate(2_000_000_000)  # sparse: costs no disk, and reading it would cost 2 GB
    out = tmp_path / "p.csv"
    refused(
        model_argv(experiment, big, out),
        out,
        capsys,
        big,
        "file of 2000.0 MB above --max-file-mb 100 (not read)",
        untouched=[root],
    )
    refused(
        [*predict_argv(bundle, big, out), "--signature", STRONG, "--task", "Q1"],
        out,
        capsys,
        big,
        "above --max-file-mb 100",
    )


def test_the_cap_is_the_users_and_counts_an_npz_unpacked(bundled_sweep, tmp_path, capsys):
    experiment, root, bundle = bundled_sweep
    source = root / STRONG / "Q1.npz"
    out = tmp_path / "p.csv"
    refused(
        model_argv(experiment, source, out, "--max-file-mb", "0.001"),
        out,
        capsys,
        source,
        "above --max-file-mb 0.001 (not read)",
    )
    # A compressed archive of zeros: 2 kB on disk, 16 MB unpacked.
    bomb = tmp_path / "bomb" / STRONG / "Q1.npz"
    bomb.parent.mkdir(parents=True)
    np.savez_compressed(bomb, X=np.zeros((200_000, 10)), subject_id=np.zeros(200_000, int))
    assert bomb.stat().st_size < 100_000
    refused(
        model_argv(experiment, bomb, out, "--max-file-mb", "1"),
        out,
        capsys,
        bomb,
        "its arrays unpack to 17.6 MB, above --max-file-mb 1 (not read)",
    )
    refused(
        [*predict_argv(bundle, tmp_path / "bomb", out), "--max-file-mb", "1"],
        out,
        capsys,
        bomb,
        "unpack to",
    )
    refused(
        model_argv(experiment, source, out, "--max-file-mb", "0"),
        out,
        capsys,
        "--max-file-mb 0",
        "expected a finite number > 0",
    )


def test_an_npz_whose_header_asks_for_more_than_it_holds_is_refused(
    bundled_sweep, tmp_path, capsys
):
    """A forged .npy header (10^9 rows) in a small archive would make numpy allocate 80 GB."""
    experiment, _, _ = bundled_sweep
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**9, 10)}
    )
    forged = tmp_path / "forged.npz"
    with zipfile.ZipFile(forged, "w") as archive:
        archive.writestr("X.npy", header.getvalue() + b"\0" * 80)
    out = tmp_path / "p.csv"
    refused(
        model_argv(experiment, forged, out),
        out,
        capsys,
        forged,
        "array 'X' declares 80000000000 bytes but the archive holds",
    )


def test_a_task_of_no_subjects_is_an_error_naming_the_file(bundled_sweep, tmp_path, capsys):
    experiment, root, bundle = bundled_sweep
    empty = tmp_path / "data" / STRONG / "Q1.npz"
    data = dict(np.load(root / STRONG / "Q1.npz", allow_pickle=False))
    for key in ("X", "y", "subject_id"):
        data[key] = data[key][:0]
    write_npz(empty, **data)
    shutil.copy(root / STRONG / "Q2.npz", empty.parent / "Q2.npz")
    out = tmp_path / "p.csv"
    needle = "no subjects (X has 0 rows); nothing to predict"
    refused(predict_argv(bundle, tmp_path / "data", out), out, capsys, empty, needle)
    refused(model_argv(experiment, empty, out), out, capsys, empty, needle)
    header_only = tmp_path / "header_only.csv"
    header_only.write_text("subject_id," + ",".join(f"rqa_{i}" for i in range(10)) + "\n")
    refused(model_argv(experiment, header_only, out), out, capsys, header_only, "no rows")


def test_a_features_file_that_is_not_a_regular_file_is_refused(bundled_sweep, tmp_path, capsys):
    experiment, root, bundle = bundled_sweep
    data = tmp_path / "data"
    (data / STRONG / "Q1.npz").mkdir(parents=True)  # a directory where Q1's file should be
    shutil.copy(root / STRONG / "Q2.npz", data / STRONG / "Q2.npz")
    out = tmp_path / "p.csv"
    refused(
        predict_argv(bundle, data, out),
        out,
        capsys,
        data / STRONG / "Q1.npz",
        "a directory, not a file; expected a features file",
        untouched=[data],
    )
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)  # reading it would block for ever
    refused(
        model_argv(experiment, fifo, out),
        out,
        capsys,
        fifo,
        "not a regular file (a FIFO); expected a features file",
    )
    zero = tmp_path / "zero.csv"
    zero.symlink_to("/dev/zero")  # reading it would never end
    refused(model_argv(experiment, zero, out), out, capsys, zero, "(a character device)")


@pytest.fixture(scope="module")
def odd_cohort(tmp_path_factory):
    """A small cohort in which four subjects' Q1.csv is a directory, a FIFO, a symlink to
    /dev/zero and a symlink to a good recording outside the recordings folder."""
    root = tmp_path_factory.mktemp("odd")
    cohort = root / "cohort"
    synth.synthesize(cohort, n_subjects=6, seed=5, duration_s=(3.0, 4.0))
    subjects = sorted(p.name for p in (cohort / "recordings").iterdir())
    outside = root / "elsewhere.csv"
    shutil.copy(cohort / "recordings" / subjects[0] / "Q1.csv", outside)
    kinds = {
        subjects[1]: ("directory", "Q1.csv is a directory, not a file"),
        subjects[2]: ("fifo", "Q1.csv is not a regular file (a FIFO)"),
        subjects[3]: ("zero", "Q1.csv is not a regular file (a character device)"),
        subjects[4]: ("outside", "Q1.csv is a symlink that leads outside the recordings folder"),
    }
    for subject, (kind, _) in kinds.items():
        path = cohort / "recordings" / subject / "Q1.csv"
        path.unlink()
        if kind == "directory":
            path.mkdir()
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "zero":
            path.symlink_to("/dev/zero")
        else:
            path.symlink_to(outside)
    return cohort, {s: reason for s, (_, reason) in kinds.items()}


def test_unreadable_recordings_are_skipped_with_their_reason(odd_cohort, tmp_path, capsys):
    cohort, reasons = odd_cohort
    before = snapshot(cohort)
    out = tmp_path / "data"
    assert main(build_argv(cohort, out)) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "skipped 4 recording(s)" in captured.err
    with open(out / "build_report.csv", newline="") as handle:
        report = {(r["subject_id"], r["task"]): r["reason"] for r in csv.DictReader(handle)}
    assert set(report) == {(s, "Q1") for s in reasons}
    for subject, reason in reasons.items():
        assert report[(subject, "Q1")].startswith(reason), report[(subject, "Q1")]
    q1 = np.load(out / "m2_tau1_eps0.055_lmin2" / "Q1.npz", allow_pickle=False)
    assert len(q1["subject_id"]) == 2  # the two subjects with a usable Q1
    assert snapshot(cohort) == before
    # --strict: the first skip named, exit 2, nothing written
    strict = tmp_path / "strict"
    assert main([*build_argv(cohort, strict), "--strict"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Q1.csv is" in err and "(and 3 more)" in err
    assert not strict.exists()


def test_predict_from_recordings_names_every_unreadable_one(
    bundled_sweep, odd_cohort, tmp_path, capsys
):
    from tests.test_bundle import _bundle_for_built_features

    _, _, folder = bundled_sweep
    cohort, reasons = odd_cohort
    bundle = _bundle_for_built_features(folder, tmp_path)
    out = tmp_path / "p.csv"
    argv = ["predict", "--bundle", str(bundle), "--recordings", str(cohort / "recordings")]
    assert main([*argv, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    for subject, reason in reasons.items():
        line = f"mmse: skipped {cohort / 'recordings' / subject / 'Q1.csv'}: "
        assert line + reason.removeprefix("Q1.csv is ") in err, err
    assert "Traceback" not in err
