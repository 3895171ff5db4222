"""`mmse data build` on recordings as real exports have them: every bad kind is skipped with its
reason, the good ones come out as from a clean build, memory stays bounded, the output is
replaced whole (no Ray)."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmse_app.cli import main
from mmse_model.data.manifest import MANIFEST_NAME
from mmse_model.synth import cohort as synth
from tests.test_build import build_argv, files

SIGS = ["m2_tau1_eps0.055_lmin2", "m3_tau3_eps0.08_lmin3"]
TASKS = ("Q1", "Q2", "Q3", "Q4", "Q5")
REPO = Path(__file__).resolve().parents[1]


def _good_rows(n: int = 300, rate: float = 90.0) -> list[str]:
    t = np.arange(n) / rate
    x = 0.5 + 0.2 * np.sin(t * 3.1)
    y = 0.5 + 0.2 * np.cos(t * 2.3)
    return [f"{a:.4f},{b:.5f},{c:.5f}" for a, b, c in zip(t, x, y)]


def _text(rows: list[str], header: str = "t,x,y") -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


GOOD = _good_rows()
# Each bad kind: Q1.csv of a subject of its own, and the start of the reason it gets.
BAD_KINDS: dict[str, tuple[bytes | None, str]] = {
    "header": (_text(GOOD, "time,gx,gy"), "missing column(s) t,x,y"),
    "columns": (_text([r.rsplit(",", 1)[0] for r in GOOD]), "line 2: 2 fields, expected 3"),
    "ragged": (_text(GOOD[:50] + ["0.6,0.5"] + GOOD[51:]), "line 52: 2 fields, expected 3"),
    "nonnumeric": (
        _text(GOOD[:10] + ["0.2,abc,0.5"] + GOOD[11:]),
        "line 12: non-numeric value 'abc'",
    ),
    "binary": (bytes(range(256)) * 40, "binary content (NUL bytes)"),
    "latin1": (
        _text(GOOD[:5]) + "0.1,0.5,0.5 caf\xe9\n".encode("latin-1"),
        "not UTF-8 text (byte 0xe9",
    ),
    "empty": (b"", "empty file"),
    "headeronly": (b"t,x,y\n", "no samples"),
    "allmissing": (_text([f"{i / 90:.4f},nan,nan" for i in range(300)]), "no valid gaze samples"),
    "repeat": (
        _text(GOOD[:100] + [GOOD[99]] + GOOD[100:]),
        "timestamps do not increase (sample 101",
    ),
    "backwards": (
        _text(GOOD[:100] + ["0.5000,0.5,0.5"] + GOOD[100:]),
        "timestamps do not increase (sample 101",
    ),
    "long": (
        _text([f"{i}.0000,0.5,0.5" for i in range(700)]),
        "duration 699 s above --max-duration-s 600",
    ),
    "clockjump": (
        _text(GOOD + ["1000000000.0,0.5,0.5"]),
        "duration 1e+09 s above --max-duration-s 600",
    ),
    "pixels": (
        _text([f"{i / 90:.4f},{960 + i},{540 - i}" for i in range(300)]),
        "coordinates far outside the screen: 300 of 300 samples",
    ),
    "huge": (None, "file of 101.0 MB above --max-file-mb 100 (not read)"),
}


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A clean cohort, and the same with one subject per bad kind added (its Q1 bad, its
    other tasks good copies)."""
    root = tmp_path_factory.mktemp("robust")
    clean = root / "clean"
    synth.synthesize(clean, n_subjects=5, seed=3, duration_s=(3.0, 4.0))
    mixed = root / "mixed"
    shutil.copytree(clean, mixed)
    labels = (mixed / "labels.csv").read_text().splitlines()
    template = labels[1].split(",")
    for kind, (content, _) in BAD_KINDS.items():
        subject = f"bad_{kind}"
        shutil.copytree(mixed / "recordings" / template[0], mixed / "recordings" / subject)
        path = mixed / "recordings" / subject / "Q1.csv"
        if content is None:  # 101 MB, sparse: it costs no disk, and reading it would cost memory
            with open(path, "wb") as handle:
                handle.truncate(101_000_000)
        else:
            path.write_bytes(content)
        labels.append(",".join([subject, *template[1:]]))
    (mixed / "labels.csv").write_text("\n".join(labels) + "\n")
    return clean, mixed


def read_report(root: Path) -> dict[tuple[str, str], str]:
    with open(root / "build_report.csv", newline="") as handle:
        return {(r["subject_id"], r["task"]): r["reason"] for r in csv.DictReader(handle)}


def test_every_bad_kind_is_skipped_with_its_reason_and_the_good_ones_are_unchanged(
    cohorts, tmp_path, capsys
):
    clean, mixed = cohorts
    assert main(build_argv(clean, tmp_path / "clean")) == 0
    capsys.readouterr()
    assert main(build_argv(mixed, tmp_path / "mixed")) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert f"warning: skipped {len(BAD_KINDS)} recording(s)" in captured.err

    report = read_report(tmp_path / "mixed")
    assert set(report) == {(f"bad_{kind}", "Q1") for kind in BAD_KINDS}
    for kind, (_, reason) in BAD_KINDS.items():
        assert report[(f"bad_{kind}", "Q1")].startswith(reason), (
            kind,
            report[(f"bad_{kind}", "Q1")],
        )

    for sig in SIGS:
        for task in TASKS:
            with (
                np.load(tmp_path / "clean" / sig / f"{task}.npz", allow_pickle=False) as c,
                np.load(tmp_path / "mixed" / sig / f"{task}.npz", allow_pickle=False) as m,
            ):
                ids = list(m["subject_id"])
                bad = [s for s in ids if s.startswith("bad_")]
                # Q1 has none of the bad subjects; the other tasks have all of them (good copies).
                assert len(bad) == (0 if task == "Q1" else len(BAD_KINDS))
                keep = [ids.index(s) for s in c["subject_id"]]
                np.testing.assert_array_equal(m["X"][keep], c["X"])  # bit for bit
                np.testing.assert_array_equal(m["y"][keep], c["y"])


def _peak_rss_mb(argv: list[str]) -> tuple[int, float]:
    """Exit status and peak RSS (MB) of one `mmse` command in a fresh process."""
    code = (
        "import resource, sys\nfrom mmse_app.cli import main\nrc = main(sys.argv[1:])\n"
        "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\nsys.exit(rc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *argv],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        timeout=600,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("PEAK_RSS_KB"))
    return done.returncode, int(line.split()[1]) / 1024


def test_memory_stays_bounded_whatever_the_files(cohorts, tmp_path):
    clean, mixed = cohorts
    rc_clean, rss_clean = _peak_rss_mb(build_argv(clean, tmp_path / "clean"))
    rc_mixed, rss_mixed = _peak_rss_mb(build_argv(mixed, tmp_path / "mixed"))
    print(f"peak RSS: clean build {rss_clean:.0f} MB, with the bad files {rss_mixed:.0f} MB")
    assert rc_clean == rc_mixed == 0
    # The 101 MB file is never read and the 1e9 s recording is never resampled (671 GiB):
    # the bad files cost no more than a few MB of parsing.
    assert rss_mixed < rss_clean + 30


def test_strict_turns_a_skip_into_exit_2_and_writes_nothing(cohorts, tmp_path, capsys):
    clean, mixed = cohorts
    out = tmp_path / "data"
    assert main(build_argv(clean, out)) == 0
    before = files(out)
    capsys.readouterr()
    assert main([*build_argv(mixed, out), "--strict"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mmse: error: ")
    assert "bad_allmissing/Q1.csv: no valid gaze samples" in err  # the first skip, by subject
    assert f"(and {len(BAD_KINDS) - 1} more)" in err and "--strict" in err
    assert files(out) == before
    assert (
        main([*build_argv(clean, tmp_path / "strict"), "--strict"]) == 0
    )  # nothing to skip: built


def test_a_rebuild_holds_exactly_what_it_wrote(cohorts, tmp_path):
    clean, _ = cohorts
    out = tmp_path / "data"
    assert main(build_argv(clean, out)) == 0
    assert (out / SIGS[1] / "Q5.npz").is_file()
    # The same recordings without any usable Q5, under one signature only.
    fewer = tmp_path / "fewer"
    shutil.copytree(clean, fewer)
    for q5 in (fewer / "recordings").glob("*/Q5.csv"):
        q5.write_text("t,x,y\n")
    assert main(build_argv(fewer, out, signatures=SIGS[:1])) == 0
    assert not (out / SIGS[1]).exists()
    assert not (out / SIGS[0] / "Q5.npz").exists()
    assert sorted(p.name for p in (out / SIGS[0]).iterdir()) == [
        "Q1.npz",
        "Q2.npz",
        "Q3.npz",
        "Q4.npz",
    ]
    assert read_report(out)[("all", "Q5")] == "no usable recording: no dataset written"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "fewer"]  # no staging folder left


def test_an_output_that_is_not_a_data_root_is_refused(cohorts, tmp_path, capsys):
    clean, _ = cohorts
    out = tmp_path / "results"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(build_argv(clean, out)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{out}: holds no {MANIFEST_NAME}: not a data root" in err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    # A folder without dataset.json is not taken for a data root by its shape (a report and
    # signature folders, as builds before dataset.json left): nothing proves it is ours.
    assert main(build_argv(clean, tmp_path / "old")) == 0
    (tmp_path / "old" / MANIFEST_NAME).unlink()
    assert main(build_argv(clean, tmp_path / "old")) == 2
    assert f"holds no {MANIFEST_NAME}" in capsys.readouterr().err
    assert not (tmp_path / "old" / MANIFEST_NAME).exists()
    # An output holding the recordings would be replaced with them in it.
    assert main(build_argv(clean, clean)) == 2
    assert "holds the input" in capsys.readouterr().err


def test_a_build_that_fails_while_writing_leaves_the_old_root(cohorts, tmp_path, monkeypatch):
    clean, _ = cohorts
    out = tmp_path / "data"
    assert main(build_argv(clean, out)) == 0
    before = files(out)
    from mmse_model.core import atomic

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic, "write_json", disk_full)  # the manifest is written last
    with pytest.raises(OSError):
        main(build_argv(clean, out, signatures=SIGS[:1]))
    assert files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_a_header_of_a_million_columns_is_refused_before_anything_is_allocated():
    from mmse_model.features.recordings import MAX_COLUMNS, RecordingError, parse_recording

    data = b"t,x,y" + b",c" * 1_000_000 + b"\n" + b"\n" * 100_000 + b"0,0.5,0.5\n"
    with pytest.raises(
        RecordingError, match=f"header of 1000003 columns \\(at most {MAX_COLUMNS}\\)"
    ):
        parse_recording(data)
