"""Recordings in other layouts than t,x,y (issue 29; docs/rqa.md, "From your headset's
export"): the same SYNTHETIC gaze written as txy, as vectors and as a per-eye export with
millisecond timestamps builds the same features; the formulas by hand; bad mappings refused
before any recording is read; bad recordings skipped with their reason; the conversion
recorded with the data and compared where features meet a model (no Ray)."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mmse_app.cli import main
from mmse_model.core.conversion import TXY_CONVERSION, Conversion
from mmse_model.core.errors import InputError
from mmse_model.core.identity import BUILDER_VERSION, BuildParams, DatasetIdentity
from mmse_model.data.manifest import MANIFEST_NAME, read_manifest
from mmse_model.features.build import build_params, recording_features
from mmse_model.features.gaze_formats import TXY, mapping_layout, read_layout, vectors_layout
from mmse_model.features.recordings import RecordingError, resample
from mmse_model.synth import cohort as synth

SIGS = ["m2_tau1_eps0.055_lmin2", "m3_tau3_eps0.08_lmin3"]
TASKS = ("Q1", "Q2", "Q3", "Q4", "Q5")
N_SUBJECTS = 5

# An SRanipal-style export: per-eye direction vectors, a validity bitmask per eye (31: all
# five bits, the samples studies keep), timestamps in ms, semicolons, a text column.
PER_EYE_MAPPING = """\
delimiter: ";"
time: {column: timestamp_ms, unit: ms}
gaze:
  kind: vectors
  eyes: {left: [lx, ly, lz], right: [rx, ry, rz]}
valid:
  left: {column: left_validity, equals: 31}
  right: {column: right_validity, equals: 31}
"""


def _features(root: Path, sig: str = SIGS[0]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    found = {}
    for task in TASKS:
        with np.load(root / sig / f"{task}.npz", allow_pickle=False) as data:
            found[task] = (data["subject_id"], data["X"])
    return found


def _build(recordings: Path, labels: Path, out: Path, *options: str) -> int:
    argv = ["data", "build", "--no-ray", "--recordings", str(recordings)]
    argv += ["--labels", str(labels), "--out", str(out)]
    for sig in SIGS:
        argv += ["--signature", sig]
    return main(argv + list(options))


def _report(root: Path) -> dict[tuple[str, str], str]:
    with open(root / "build_report.csv", newline="") as handle:
        return {(r["subject_id"], r["task"]): r["reason"] for r in csv.DictReader(handle)}


def _rows(path: Path) -> tuple[list[str], np.ndarray]:
    lines = path.read_text().splitlines()
    return lines[0].split(","), np.array(
        [[float(v) for v in line.split(",")] for line in lines[1:]]
    )


def _per_eye_export(vectors_file: Path, out: Path, rng: np.random.Generator) -> None:
    """The vectors recording as the per-eye export above: each eye the same direction at
    another length; one eye at a time flagged invalid (bitmask 23 or 15: a bit missing) with
    a zero vector on some samples (the other eye carries the gaze there), both on blinks."""
    _, table = _rows(vectors_file)  # t, dx, dy, dz, valid
    t_ms, vectors, valid = table[:, 0] * 1000.0, table[:, 1:4], table[:, 4] == 1
    dropped = rng.choice(3, size=len(table), p=[0.8, 0.1, 0.1])  # 0 none, 1 left, 2 right
    left = np.where(((dropped == 1) | ~valid)[:, None], 0.0, vectors * 2.5)
    right = np.where(((dropped == 2) | ~valid)[:, None], 0.0, vectors * 0.4)
    left_validity = np.where((dropped == 1) | ~valid, 23, 31)
    right_validity = np.where((dropped == 2) | ~valid, 15, 31)
    lines = ["eye_tracker;timestamp_ms;lx;ly;lz;rx;ry;rz;left_validity;right_validity"]
    for i in range(len(table)):
        lines.append(
            f"vive;{t_ms[i]:.1f};{left[i, 0]:.10f};{left[i, 1]:.10f};{left[i, 2]:.10f};"
            f"{right[i, 0]:.10f};{right[i, 1]:.10f};{right[i, 2]:.10f};"
            f"{left_validity[i]};{right_validity[i]}"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One SYNTHETIC cohort in three layouts: txy, vectors (`mmse data synth --format`) and
    the per-eye export with its mapping file (`mapping.yaml` beside its recordings)."""
    base = tmp_path_factory.mktemp("formats")
    for gaze_format in ("txy", "vectors"):
        assert (
            main(
                [
                    "data",
                    "synth",
                    "--out",
                    str(base / gaze_format),
                    "--subjects",
                    "1",
                    "--seed",
                    "0",
                ]
                + ["--format", gaze_format]
            )
            == 0
        )
        shutil.rmtree(base / gaze_format)  # the CLI works; the tests take short recordings
        synth.synthesize(
            base / gaze_format,
            n_subjects=N_SUBJECTS,
            seed=11,
            duration_s=(3.0, 5.0),
            gaze_format=gaze_format,
        )
    per_eye = base / "per_eye"
    rng = np.random.default_rng(0)
    for path in sorted((base / "vectors" / "recordings").rglob("*.csv")):
        relative = path.relative_to(base / "vectors")
        _per_eye_export(path, per_eye / relative, rng)
    shutil.copy(base / "vectors" / "labels.csv", per_eye / "labels.csv")
    shutil.copy(base / "vectors" / "SYNTHETIC.txt", per_eye / "SYNTHETIC.txt")
    (per_eye / "mapping.yaml").write_text(PER_EYE_MAPPING)
    return {"txy": base / "txy", "vectors": base / "vectors", "per_eye": per_eye}


@pytest.fixture(scope="module")
def txy_features(cohorts, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("txy_built") / "data"
    cohort = cohorts["txy"]
    assert _build(cohort / "recordings", cohort / "labels.csv", out) == 0
    return out


def _assert_same_features(built: Path, reference: Path) -> None:
    for sig in SIGS:
        ours, theirs = _features(built, sig), _features(reference, sig)
        for task in TASKS:
            np.testing.assert_array_equal(ours[task][0], theirs[task][0])
            assert len(ours[task][0]) == N_SUBJECTS
            np.testing.assert_allclose(ours[task][1], theirs[task][1], rtol=1e-9, atol=1e-12)


def test_synth_writes_the_same_gaze_as_txy_and_as_vectors(cohorts) -> None:
    names, txy = _rows(cohorts["txy"] / "recordings" / "synth0000" / "Q1.csv")
    vector_names, vectors = _rows(cohorts["vectors"] / "recordings" / "synth0000" / "Q1.csv")
    assert names == ["t", "x", "y"] and vector_names == ["t", "dx", "dy", "dz", "valid"]
    np.testing.assert_array_equal(vectors[:, 0], txy[:, 0])
    blink = ~np.isfinite(txy[:, 1])
    assert blink.any() and (vectors[blink, 4] == 0).all() and (vectors[blink, 1:4] == 0).all()
    seen = ~blink
    assert (vectors[seen, 4] == 1).all()
    np.testing.assert_allclose(np.linalg.norm(vectors[seen, 1:4], axis=1), 1.0, atol=1e-9)
    # atan2(dx, dz) in degrees over the 100-degree field of view gives x back.
    x = 0.5 + np.degrees(np.arctan2(vectors[seen, 1], vectors[seen, 3])) / 100.0
    np.testing.assert_allclose(x, txy[seen, 1], atol=1e-9)
    assert "recordings as vectors" in (cohorts["vectors"] / "SYNTHETIC.txt").read_text()


def test_txy_vectors_and_a_per_eye_ms_export_build_the_same_features(
    cohorts, txy_features, tmp_path
) -> None:
    vectors, per_eye = cohorts["vectors"], cohorts["per_eye"]
    assert (
        _build(
            vectors / "recordings", vectors / "labels.csv", tmp_path / "v", "--format", "vectors"
        )
        == 0
    )
    mapping = per_eye / "mapping.yaml"
    assert (
        _build(
            per_eye / "recordings", per_eye / "labels.csv", tmp_path / "e", "--format", str(mapping)
        )
        == 0
    )
    _assert_same_features(tmp_path / "v", txy_features)
    _assert_same_features(tmp_path / "e", txy_features)
    # Each root says how its gaze was read: the conversion, and where the numbers were.
    txy_build = read_manifest(txy_features).build
    assert txy_build.conversion == TXY_CONVERSION and txy_build.layout.format == "txy"
    vectors_build = read_manifest(tmp_path / "v").build
    assert vectors_build.conversion == Conversion(kind="vectors", forward="+z")
    per_eye_build = read_manifest(tmp_path / "e").build
    assert per_eye_build.conversion == Conversion(kind="vectors", time_unit="ms", forward="+z")
    assert per_eye_build.layout.format == "mapping"
    assert per_eye_build.layout.mapping["gaze"]["eyes"]["left"] == ["lx", "ly", "lz"]
    assert (
        per_eye_build.layout.mapping_sha256
        == __import__("hashlib").sha256(mapping.read_bytes()).hexdigest()
    )
    # ...in every file too, not only in dataset.json.
    identity = DatasetIdentity.from_npz(tmp_path / "e" / SIGS[0] / "Q1.npz")
    assert identity.build.conversion.time_unit == "ms" and identity.build.layout.format == "mapping"


def test_forward_minus_z_and_a_recording_that_looks_backwards(cohorts, txy_features, tmp_path):
    """OpenXR and Meta look down -z: the same gaze with dz negated builds the same features
    with --forward -z; read as +z, a recording whose vectors mostly point backwards is
    skipped with that reason."""
    source = cohorts["vectors"]
    flipped = tmp_path / "minus_z"
    shutil.copytree(source, flipped)
    for path in (flipped / "recordings").rglob("*.csv"):
        names, table = _rows(path)
        table[:, 3] = -table[:, 3] + 0.0  # + 0.0: no "-0.0000000000" for a blink's zero
        rows = (f"{r[0]:.4f},{r[1]:.10f},{r[2]:.10f},{r[3]:.10f},{int(r[4])}" for r in table)
        path.write_text(",".join(names) + "\n" + "\n".join(rows) + "\n")
    labels = flipped / "labels.csv"
    options = ("--format", "vectors", "--forward", "-z")
    assert _build(flipped / "recordings", labels, tmp_path / "minus", *options) == 0
    _assert_same_features(tmp_path / "minus", txy_features)
    assert read_manifest(tmp_path / "minus").build.conversion.forward == "-z"

    # One subject's Q2 exported down -z among +z recordings, read as +z: skipped, named.
    mixed = tmp_path / "mixed"
    shutil.copytree(source, mixed)
    shutil.copy(flipped / "recordings/synth0001/Q2.csv", mixed / "recordings/synth0001/Q2.csv")
    assert (
        _build(mixed / "recordings", mixed / "labels.csv", tmp_path / "m", "--format", "vectors")
        == 0
    )
    report = _report(tmp_path / "m")
    assert list(report) == [("synth0001", "Q2")]
    reason = report[("synth0001", "Q2")]
    assert reason.startswith("gaze vectors mostly point backwards: ") and "--forward -z" in reason
    assert "synth0001" not in _features(tmp_path / "m")["Q2"][0]


def test_the_formulas_by_hand_per_eye_combination_and_sranipal_validity_31() -> None:
    layout = mapping_layout(
        {
            "time": {"column": "ts", "unit": "ns"},
            "gaze": {
                "kind": "vectors",
                "eyes": {"left": ["lx", "ly", "lz"], "right": ["rx", "ry", "rz"]},
            },
            "valid": {
                "left": {"column": "lv", "equals": 31},
                "right": {"column": "rv", "equals": 31},
            },
            "forward": "-z",
            "field_of_view": 100,
        },
        "hand.yaml",
    )
    s, d = math.tan(math.radians(10)), math.tan(math.radians(45))
    text = (
        "ts,lx,ly,lz,rx,ry,rz,lv,rv\n"
        f"0,{d},0,-1,0,0,-2,31,31\n"  # both eyes: 45 and 0 degrees -> mean 22.5
        f"11000000,{d},{s},-1,5,5,5,31,30\n"  # right flagged (30: a bit missing): left only
        f"22000000,9,9,9,0,{3 * s},-3,23,31\n"  # left flagged: right only, 10 degrees up
        "33000000,0,0,0,0,0,0,31,31\n"  # both zero vectors: not tracked
        f"44000000,0,0,-1,0,0,-1,0,15\n"  # neither valid
        f"55000000,0,0,-1,{d},{d},-1,31,31\n"
    ).encode()
    recording = layout.parse(text)
    np.testing.assert_allclose(recording.t, [0.0, 0.011, 0.022, 0.033, 0.044, 0.055])
    np.testing.assert_array_equal(recording.valid, [True, True, True, False, False, True])
    expected = [[0.725, 0.5], [0.95, 0.6], [0.5, 0.6], [0.725, 0.725]]
    np.testing.assert_allclose(recording.xy[recording.valid], expected, atol=1e-12)
    assert layout.conversion == Conversion(kind="vectors", time_unit="ns", forward="-z")

    # A narrower field of view: 45 degrees is off a 50-degree screen, so that sample is
    # tracker loss (invalid), and 10 degrees lands at 0.5 + 10/50.
    narrow = vectors_layout("+z", 50.0)
    recording = narrow.parse(f"t,dx,dy,dz\n0,{d},0,1\n0.01,0,{s},1\n0.02,0,0,1\n".encode())
    np.testing.assert_array_equal(recording.valid, [False, True, True])
    np.testing.assert_allclose(recording.xy[1:], [[0.5, 0.7], [0.5, 0.5]], atol=1e-12)

    degrees = mapping_layout(
        {
            "delimiter": "\t",
            "time": {"column": "T", "unit": "us"},
            "gaze": {"kind": "degrees", "columns": ["h", "v"]},
        },
        "deg.yaml",
    )
    recording = degrees.parse(b"T\th\tv\n0\t-25\t10\n10000\t0\t0\n")
    np.testing.assert_allclose(recording.xy, [[0.25, 0.6], [0.5, 0.5]])
    np.testing.assert_allclose(recording.t, [0.0, 0.01])


def test_the_fixation_detector_uses_the_recorded_field_of_view(tmp_path) -> None:
    """Read over 150 degrees, the same vectors lie closer together in normalised units; the
    fixation detector, converting back with the recorded 150, finds the same fixations as
    over 100, and the build passes it the recorded value (not the domain's 100)."""
    from mmse_model.core.domain import parse_signature
    from mmse_model.features.fixations import fixation_spans

    cohort = tmp_path / "cohort"
    synth.synthesize(cohort, n_subjects=2, seed=3, duration_s=(12.0, 14.0), gaze_format="vectors")
    argv = ("--format", "vectors", "--field-of-view", "150", "--mode", "fixation")
    assert _build(cohort / "recordings", cohort / "labels.csv", tmp_path / "f", *argv) == 0
    assert not _report(tmp_path / "f")
    assert read_manifest(tmp_path / "f").build.conversion.field_of_view_deg == 150.0
    subjects, built = _features(tmp_path / "f")["Q1"]
    signature = parse_signature(SIGS[0])
    path = cohort / "recordings" / subjects[0] / "Q1.csv"
    recording = vectors_layout(None, 150.0).parse(path.read_bytes())
    expected = recording_features(recording, [signature], "fixation", 150.0)[0]
    np.testing.assert_array_equal(built[0], expected)
    assert not np.allclose(
        recording_features(recording, [signature], "fixation", 100.0)[0], expected
    )
    wide = vectors_layout(None, 100.0).parse(path.read_bytes())
    starts, ends = fixation_spans(resample(recording, 90.0), field_of_view_deg=150.0)
    assert len(starts) > 20
    np.testing.assert_array_equal(
        (starts, ends), fixation_spans(resample(wide, 90.0), field_of_view_deg=100.0)
    )


@pytest.mark.parametrize(
    "mapping, needle",
    [
        (PER_EYE_MAPPING.replace("eyes:", "eye:"), "gaze.eye: unknown key"),
        (PER_EYE_MAPPING + "colour: red\n", "colour: unknown key"),
        (PER_EYE_MAPPING.replace("unit: ms", "unit: min"), "time.unit: "),
        (PER_EYE_MAPPING.replace("[rx, ry, rz]", "[rx, ry]"), "gaze.eyes.right: 2 column(s)"),
        (PER_EYE_MAPPING + "forward: +y\n", "forward: "),
        (PER_EYE_MAPPING + "field_of_view: 190\n", "field_of_view: expected a number < 180"),
        ("[time, gaze]\n", "expected a mapping"),
        ("time: {column: t\n", "not a YAML mapping file"),
    ],
)
def test_a_bad_mapping_is_refused_in_one_line_before_any_recording_is_read(
    tmp_path, capsys, mapping, needle
) -> None:
    path = tmp_path / "export.yaml"
    path.write_text(mapping)
    # The recordings folder does not exist: the mapping is the first thing checked.
    argv = ("--format", str(path))
    assert _build(tmp_path / "absent", tmp_path / "labels.csv", tmp_path / "out", *argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mmse: error: {path}: ") and err.count("\n") == 1, err
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "options, needle",
    [
        (("--format", "tobii"), "--format tobii: expected txy, vectors or a YAML mapping file"),
        (("--format", "txy", "--forward", "-z"), "--forward: only for --format vectors"),
        (("--format", "vectors", "--field-of-view", "0"), "--field-of-view: expected a number > 0"),
        (("--format", "absent.yaml"), "absent.yaml: mapping file not found"),
    ],
)
def test_bad_format_options_are_refused_in_one_line(tmp_path, capsys, options, needle) -> None:
    assert _build(tmp_path / "absent", tmp_path / "labels.csv", tmp_path / "out", *options) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err, err


def test_bad_recordings_of_any_format_are_skipped_with_their_reason(cohorts, tmp_path) -> None:
    """A recording without a mapped column is a bad recording, the column named; malformed
    files of the mapped and vectors layouts are skipped as t,x,y ones are."""
    per_eye = tmp_path / "per_eye"
    shutil.copytree(cohorts["per_eye"], per_eye)
    recordings = per_eye / "recordings"
    first = recordings / "synth0000" / "Q1.csv"
    lines = first.read_text().splitlines()
    # synth0000/Q1: the right eye's validity column renamed by another export version
    first.write_text("\n".join([lines[0].replace("right_validity", "rv"), *lines[1:]]) + "\n")
    (recordings / "synth0001" / "Q3.csv").write_text(lines[0] + "\n")  # header only
    width = recordings / "synth0002" / "Q4.csv"
    width.write_text("\n".join([*lines[:50], lines[50] + ";7", *lines[51:]]) + "\n")
    text = recordings / "synth0003" / "Q5.csv"
    text.write_text("\n".join([*lines[:20], lines[20].replace("vive;", "vive;x"), *lines[21:]]))
    mapping = per_eye / "mapping.yaml"
    assert (
        _build(recordings, per_eye / "labels.csv", tmp_path / "out", "--format", str(mapping)) == 0
    )
    report = _report(tmp_path / "out")
    assert set(report) == {
        ("synth0000", "Q1"),
        ("synth0001", "Q3"),
        ("synth0002", "Q4"),
        ("synth0003", "Q5"),
    }
    assert (
        report[("synth0000", "Q1")] == "missing column(s) right_validity (mapped by mapping.yaml)"
    )
    assert report[("synth0001", "Q3")] == "no samples"
    assert report[("synth0002", "Q4")] == "line 51: 11 fields, expected 10"
    assert report[("synth0003", "Q5")].startswith("line 21: non-numeric value ")

    vectors = tmp_path / "vectors"
    shutil.copytree(cohorts["vectors"], vectors)
    (vectors / "recordings" / "synth0004" / "Q2.csv").write_text("t,dx,dy\n0,1,2\n")
    (vectors / "recordings" / "synth0002" / "Q2.csv").write_bytes(b"t,dx,dy,dz\n\xff\xfe\n")
    off = vectors / "recordings" / "synth0001" / "Q2.csv"
    off.write_text("t,dx,dy,dz,valid\n0,0,0,1,0\n0.01,0,0,1,0\n0.02,0,0,0,1\n")
    assert (
        _build(
            vectors / "recordings", vectors / "labels.csv", tmp_path / "v", "--format", "vectors"
        )
        == 0
    )
    report = _report(tmp_path / "v")
    assert report[("synth0004", "Q2")] == "missing column(s) dz (mapped by vectors)"
    assert report[("synth0002", "Q2")].startswith("not UTF-8 text")
    assert report[("synth0001", "Q2")] == (
        "no valid gaze samples (all NaN, flagged invalid or off-screen)"
    )


def _stand_in_bundle(build: BuildParams):
    """What `features_from_recordings` reads of a bundle: each task's signature, build
    parameters and builder version."""
    model = SimpleNamespace(signature=SIGS[0], builder_version=BUILDER_VERSION, build=lambda: build)
    return SimpleNamespace(tasks={"Q1": SimpleNamespace(model=model)})


def test_predict_reads_any_layout_of_the_bundles_conversion_and_refuses_another(
    cohorts, txy_features
) -> None:
    from mmse_model.bundle.recordings import features_from_recordings

    trained = _stand_in_bundle(read_manifest(txy_features).build)
    txy = features_from_recordings(trained, cohorts["txy"] / "recordings")["Q1"]
    expected = dict(zip(*_features(txy_features)["Q1"]))
    np.testing.assert_array_equal(txy.X, np.stack([expected[s] for s in txy.subject_ids]))

    # A clinic's export of the same kind of numbers under other names: accepted, same features.
    renamed = cohorts["txy"].parent / "renamed"
    for path in (cohorts["txy"] / "recordings").rglob("Q1.csv"):
        target = renamed / path.relative_to(cohorts["txy"])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text().replace("t,x,y", "time_s|gx|gy").replace(",", "|"))
    other_names = mapping_layout(
        {
            "delimiter": "|",
            "time": {"column": "time_s", "unit": "s"},
            "gaze": {"kind": "normalised", "columns": ["gx", "gy"]},
        },
        "clinic.yaml",
    )
    mapped = features_from_recordings(trained, renamed / "recordings", layout=other_names)["Q1"]
    np.testing.assert_array_equal(mapped.X, txy.X)

    # Vectors for a model trained on t,x,y: refused in one line naming both conversions.
    with pytest.raises(InputError) as refused:
        features_from_recordings(
            trained, cohorts["vectors"] / "recordings", layout=read_layout("vectors")
        )
    message = str(refused.value)
    assert "\n" not in message and message == (
        "the bundle's Q1 model: its features were built from gaze converted as kind=normalised, "
        "time_unit=s, field_of_view_deg=100; --format vectors converts as kind=vectors, "
        "time_unit=s, forward=+z, field_of_view_deg=100 (the kind, time unit, forward axis and "
        "field of view must be the same)"
    )
    with pytest.raises(InputError, match="field_of_view_deg=90"):
        features_from_recordings(
            trained, cohorts["txy"] / "recordings", layout=read_layout("txy", None, 90)
        )

    # A model trained on the per-eye export reads new recordings as it did, unasked.
    per_eye = mapping_layout(
        __import__("yaml").safe_load(PER_EYE_MAPPING), "mapping.yaml", "digest"
    )
    trained_per_eye = _stand_in_bundle(
        build_params("trajectory", per_eye.conversion, per_eye.record)
    )
    found = features_from_recordings(trained_per_eye, cohorts["per_eye"] / "recordings")["Q1"]
    np.testing.assert_allclose(found.X, txy.X, rtol=1e-9, atol=1e-12)


def test_data_built_before_conversions_were_recorded_read_as_txy(txy_features, tmp_path) -> None:
    old = BuildParams.from_dict({"mode": "trajectory", "rate_hz": 90.0, "theiler_window": 23})
    assert old == build_params("trajectory") and old.conversion == TXY_CONVERSION
    assert old.layout is None  # not known: provenance only, never compared
    root = tmp_path / "v3"
    shutil.copytree(txy_features, root)
    raw = json.loads((root / MANIFEST_NAME).read_text())
    raw["format_version"] = 3
    del raw["build_params"]["conversion"], raw["build_params"]["layout"]
    (root / MANIFEST_NAME).write_text(json.dumps(raw))
    assert read_manifest(root).build == read_manifest(txy_features).build
    raw["format_version"] = 4
    (root / MANIFEST_NAME).write_text(json.dumps(raw))
    with pytest.raises(InputError, match="build_params.conversion"):
        read_manifest(root)
    # Features and a model of other conversions do not meet.
    ours = DatasetIdentity(SIGS[0], "Q1", build_params("trajectory"), BUILDER_VERSION)
    theirs = DatasetIdentity(
        SIGS[0], "Q1", build_params("trajectory", Conversion(kind="vectors", forward="-z"))
    )
    assert ours.mismatch(theirs) == (
        "gaze conversion: expected kind=vectors, time_unit=s, forward=-z, field_of_view_deg=100, "
        "found kind=normalised, time_unit=s, field_of_view_deg=100"
    )


def test_a_txy_layout_is_todays_reader() -> None:
    assert read_layout("txy") is TXY
    with pytest.raises(RecordingError, match="missing column"):
        TXY.parse(b"t,dx,dy,dz\n0,0,0,1\n")
