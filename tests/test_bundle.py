"""The model bundle: written from a finished sweep, applied by `mmse predict --bundle`."""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest

from mmse_app.cli import main
from mmse_model.bundle.apply import OUT_OF_RANGE_MARGIN, load_bundle
from mmse_model.bundle.layout import MANIFEST
from mmse_model.bundle.manifest import split_hash
from mmse_model.core.domain import TASKS
from mmse_model.core.hashing import sha256_file
from mmse_model.core.identity import BUILDER_VERSION, BuildParams, DatasetIdentity
from mmse_model.data.manifest import data_fingerprint
from mmse_model.training.checkpoint import FoldEnsemble, load_checkpoint
from tests.fixtures.bundles import rewrite_bundle
from tests.fixtures.toy_data import write_npz
from tests.fixtures.trained_sweep import BUILD, STRONG, WEAK, write_trained_sweep


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """(experiment, data root, bundle folder) of a finished five-task sweep."""
    experiment, root = write_trained_sweep(
        tmp_path_factory.mktemp("sweep"), n_subjects=60, nested_repeats=1
    )
    assert main(["bundle", str(experiment)]) == 0
    return experiment, root, experiment / "bundle"


def rows_of(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def refused(argv, out, capsys, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmse: error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err
    assert not out.exists()
    return err


def test_the_bundle_holds_each_winner_as_the_summary_reports_it(sweep):
    experiment, root, folder = sweep
    summary = json.loads((experiment / "summary.json").read_text())
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["format"] == "mmse-bundle" and manifest["format_version"] == 3
    # The folder's marker: this tool's, a bundle, every file in it listed (itself too).
    assert (manifest["tool"], manifest["kind"]) == ("mmse", "bundle")
    assert manifest["contents"] == sorted(p.name for p in folder.iterdir())
    assert sorted(manifest["tasks"]) == list(TASKS) and manifest["subtotal"]["tasks"] == list(TASKS)
    # Only safetensors, JSON and markdown: nothing that unpickles.
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [MANIFEST, "model_card.md", "subtotal.safetensors", *(f"{t}.safetensors" for t in TASKS)]
    )
    assert manifest["files"] == {p.name: sha256_file(p) for p in folder.glob("*.safetensors")}
    for task, model in manifest["tasks"].items():
        entry = summary["tasks"][task]
        assert model["signature"] == entry["winner"]["signature"] == STRONG
        assert model["checkpoint_uri"] == entry["winner"]["checkpoint_uri"]
        assert model["build_params"] == BUILD.to_dict() and model["builder_version"] == "toy"
        assert (
            model["test"]["rmse"] == entry["test"]["rmse"]
            and model["test"]["rmse_ci"] == entry["test"]["rmse_ci"]
        )
        assert [b["key"] for b in model["baselines"]] == [
            "train_mean",
            "ridge",
            "hist_gradient_boosting",
        ]
        assert model["baselines"] == entry["baselines"] and model["verdict"] == entry["verdict"]
        # The coverage the summary reported is the bundle's own, recomputed from its weights.
        assert model["intervals"] == entry["intervals"]
        assert model["n_training_subjects"] == 48 and model["intervals"]["n"] == 12
        payload = load_checkpoint(model["checkpoint_uri"])
        assert manifest["split_hash"] == split_hash(payload.split)
    assert manifest["subtotal"]["intervals"] == summary["subtotal"]["intervals"]
    # The fixture root's dataset.json says SYNTHETIC, as `mmse data build` of a simulated
    # cohort does.
    assert manifest["synthetic"] is True and manifest["data_fingerprint"] == data_fingerprint(root)


def test_the_model_card_states_use_data_metrics_coverage_and_limits(sweep):
    _, _, folder = sweep
    card = (folder / "model_card.md").read_text()
    manifest = json.loads((folder / MANIFEST).read_text())
    assert card.startswith("> **SYNTHETIC DATA.**") and "**It is not a diagnosis**" in card
    for heading in (
        "## Intended use",
        "## Data",
        "## Model",
        "## Performance on the held-out test subjects",
        "## Prediction intervals",
        "## Limitations",
        "## Provenance",
    ):
        assert heading in card
    q1 = manifest["tasks"]["Q1"]
    low, high = q1["test"]["rmse_ci"]
    assert f"| Q1 | **network** | {q1['test']['rmse']:.2f} [{low:.2f}, {high:.2f}]" in card
    assert "| Q1 | Ridge |" in card and "| Q1 | HistGradientBoosting |" in card
    # How the training recordings' gaze was read (the fixture's data: t,x,y, recorded as such)
    assert q1["build_params"]["conversion"]["kind"] == "normalised"
    assert (
        "theiler_window=23 from gaze converted as kind=normalised, time_unit=s, "
        "field_of_view_deg=100 (builder toy)" in card
    )
    c = q1["intervals"]
    assert (
        f"| Q1 | {c['coverage']:.1%} | "
        f"[{c['coverage_ci'][0]:.1%}, {c['coverage_ci'][1]:.1%}] | 12 |" in card
    )
    assert all(digest in card for digest in manifest["files"].values())
    # The intervals new subjects get: calibrated on the outer folds, with the guarantee that
    # holds and their coverage over the outer folds (all, by band, the tails), in subjects.
    assert "calibrated on the repeated nested cross-validation's outer folds" in card
    report = q1["interval_report"]
    assert report["guarantee"] in card
    overall = report["overall"]
    low, high = overall["coverage_ci"]
    assert f"| Q1 | {overall['coverage']:.1%} [{low:.1%}, {high:.1%}] (n {overall['n']})" in card
    assert q1["calibration"] == report["calibration"]


def test_the_card_and_manifest_carry_the_sweeps_estimate(sweep):
    """The repeated nested cross-validation leads the card: every model with its interval,
    in points and on the item's scale, and the network minus each baseline with its p-value
    and the primary's Holm-adjusted one; the manifest holds the summary's estimate."""
    experiment, _, folder = sweep
    summary = json.loads((experiment / "summary.json").read_text())
    manifest = json.loads((folder / MANIFEST).read_text())
    card = (folder / "model_card.md").read_text()
    assert "## Performance: repeated nested cross-validation (the estimate)" in card
    assert card.index("(the estimate)") < card.index("## Performance on the held-out test")
    assert "| task | model | RMSE | MAE | exact | within 1 | weighted kappa |" in card
    for task, entry in summary["tasks"].items():
        estimate = entry["estimate"]
        assert manifest["tasks"][task]["estimate"] == estimate
        assert (estimate["repeats"], estimate["outer_folds"]) == (1, 5)
        network = estimate["network"]
        low, high = network["rmse"]["ci"]
        assert (
            f"| {task} | **network** | {network['rmse']['value']:.2f} [{low:.2f}, {high:.2f}]"
            in card
        )
        primary = estimate["differences"][0]
        assert primary["primary"] and primary["baseline"] == "ridge"
        assert f"| {task} | Ridge | {primary['rmse']['value']:+.2f}" in card
    assert manifest["subtotal"]["estimate"] == summary["subtotal"]["estimate"]
    # The fixture's trials scored these data once; the card says so.
    assert manifest["looks"] is None or manifest["looks"]["count"] >= 1


def test_a_data_root_that_is_not_synthetic_gets_no_banner(sweep, tmp_path):
    experiment, root, _ = sweep
    manifest = root / "dataset.json"
    saved = manifest.read_text()
    document = json.loads(saved)
    document["synthetic"] = False
    manifest.write_text(json.dumps(document))
    try:
        assert main(["bundle", str(experiment), "--out", str(tmp_path / "b")]) == 0
    finally:
        manifest.write_text(saved)
    assert json.loads((tmp_path / "b" / MANIFEST).read_text())["synthetic"] is False
    card = (tmp_path / "b" / "model_card.md").read_text()
    assert card.startswith("# Model card") and "SYNTHETIC" not in card


def test_predict_gives_each_subjects_five_scores_subtotal_and_intervals(sweep, tmp_path, capsys):
    experiment, root, folder = sweep
    out = tmp_path / "predictions.csv"
    assert (
        main(["predict", "--bundle", str(folder), "--features", str(root), "--out", str(out)]) == 0
    )
    assert (
        "wrote predictions for 60 subjects (Q1, Q2, Q3, Q4, Q5; subtotal for 60)"
        in capsys.readouterr().out
    )
    rows = rows_of(out)
    # Each item's interval also as the item's scores inside it (`_set`); the subtotal has none.
    columns = [
        "subject_id",
        *(f"{t}{s}" for t in TASKS for s in ("", "_lo", "_hi", "_set")),
        *(f"subtotal{s}" for s in ("", "_lo", "_hi")),
        "out_of_range",
    ]
    assert list(rows[0]) == columns
    for row in rows[:10]:
        low, high = math.ceil(float(row["Q1_lo"]) - 1e-9), math.floor(float(row["Q1_hi"]) + 1e-9)
        expected = "" if high < low else str(low) if low == high else f"{low}-{high}"
        assert row["Q1_set"] == expected
    source = np.load(root / STRONG / "Q1.npz", allow_pickle=False)
    assert [r["subject_id"] for r in rows] == source["subject_id"].tolist()
    for task in TASKS:
        model = json.loads((folder / MANIFEST).read_text())["tasks"][task]
        data = np.load(root / STRONG / f"{task}.npz", allow_pickle=False)
        expected = FoldEnsemble.from_checkpoint(
            load_checkpoint(model["checkpoint_uri"]), STRONG
        ).predict(data["X"])
        np.testing.assert_allclose([float(r[task]) for r in rows], expected, atol=5e-5)
        assert all(
            float(r[f"{task}_lo"]) <= float(r[task]) + 1e-4
            and float(r[task]) <= float(r[f"{task}_hi"]) + 1e-4
            for r in rows
        )
    subtotal = np.array([float(r["subtotal"]) for r in rows])
    np.testing.assert_allclose(subtotal, [sum(float(r[t]) for t in TASKS) for r in rows], atol=5e-4)
    # The test subjects' intervals are those the sweep scored coverage with.
    scored = {(p["task"], p["subject_id"]): p for p in rows_of(experiment / "test_predictions.csv")}
    by_id = {r["subject_id"]: r for r in rows}
    for (task, subject), p in scored.items():
        assert float(by_id[subject][f"{task}_lo"]) == pytest.approx(float(p["lo"]), abs=5e-5)
        assert float(by_id[subject][f"{task}_hi"]) == pytest.approx(float(p["hi"]), abs=5e-5)
    summary = json.loads((experiment / "summary.json").read_text())
    test_ids = {s for _, s in scored}
    truth = {s: sum(float(scored[(t, s)]["true"]) for t in TASKS) for s in test_ids}
    covered = sum(
        float(by_id[s]["subtotal_lo"]) - 5e-5 <= truth[s] <= float(by_id[s]["subtotal_hi"]) + 5e-5
        for s in test_ids
    )
    assert covered == summary["subtotal"]["intervals"]["covered"]


def test_subject_ids_stay_as_written_and_a_missing_task_leaves_no_subtotal(sweep, tmp_path):
    _, root, folder = sweep
    features = tmp_path / "new"
    ids = np.array(["007", "1e3", "0042"])
    for task in TASKS:
        data = dict(np.load(root / STRONG / f"{task}.npz", allow_pickle=False))
        data["subject_id"] = ids if task != "Q5" else ids[:2]
        data["X"], data["y"] = (
            data["X"][: len(data["subject_id"])],
            data["y"][: len(data["subject_id"])],
        )
        write_npz(features / STRONG / f"{task}.npz", **data)
    out = tmp_path / "p.csv"
    assert (
        main(["predict", "--bundle", str(folder), "--features", str(features), "--out", str(out)])
        == 0
    )
    rows = rows_of(out)
    assert [r["subject_id"] for r in rows] == ["007", "1e3", "0042"]
    assert (
        rows[2]["Q5"] == rows[2]["subtotal"] == rows[2]["subtotal_lo"] == "" and rows[2]["Q4"] != ""
    )
    assert rows[0]["subtotal"] != ""


def test_features_far_outside_the_training_range_are_flagged(sweep, tmp_path):
    _, root, folder = sweep
    bundle = load_bundle(folder)
    q2 = bundle.tasks["Q2"]
    data = dict(np.load(root / STRONG / "Q2.npz", allow_pickle=False))
    width = q2.feature_max[3] - q2.feature_min[3]
    data["X"][0, 3] = q2.feature_max[3] + 2 * OUT_OF_RANGE_MARGIN * width
    data["X"][1, 3] = (
        q2.feature_max[3] + 0.5 * OUT_OF_RANGE_MARGIN * width
    )  # near the edge: not flagged
    write_npz(tmp_path / "root" / STRONG / "Q2.npz", **data)
    out = tmp_path / "p.csv"
    assert (
        main(
            [
                "predict",
                "--bundle",
                str(folder),
                "--features",
                str(tmp_path / "root"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rows = rows_of(out)
    assert [r["out_of_range"] for r in rows[:3]] == ["Q2:rqa_3", "", ""]
    assert rows[0]["Q1"] == "" and rows[0]["Q2"] != ""  # only Q2's features were given


def _with_identity(source, path, **change):
    data = dict(np.load(source, allow_pickle=False))
    identity = DatasetIdentity(
        change.get("signature", str(data["signature"])),
        change.get("task", str(data["task"])),
        change.get("build", BuildParams.from_dict(json.loads(str(data["build_params"])))),
        str(data["builder_version"]),
    )
    data.update(identity.arrays())
    if "feature_names" in change:
        data["feature_names"] = change["feature_names"]
    write_npz(path, **data)
    return path


@pytest.mark.parametrize(
    ("change", "where", "needle"),
    [
        # one file whose path says nothing: what it records is compared with the bundle's model
        (
            {"signature": WEAK},
            "file",
            f"signature: expected {STRONG}, found {WEAK} (the bundle's Q1 model)",
        ),
        # in a data root, where the bundle looks for Q1: the loader already refuses a record
        # that contradicts the path
        ({"task": "Q3"}, "root", "records task Q3 but its name says Q1 (expected Q1, found Q3)"),
        ({"signature": WEAK}, "root", f"(expected {STRONG}, found {WEAK})"),
        (
            {"build": BuildParams("fixation", 90.0, 23)},
            "root",
            (
                "build parameters: expected mode=trajectory, rate_hz=90, theiler_window=23, "
                "found mode=fixation"
            ),
        ),
        (
            {"feature_names": np.array([f"other{i}" for i in range(10)])},
            "root",
            "feature_names: expected ['rqa_0'",
        ),
    ],
)
def test_features_made_otherwise_are_refused(sweep, tmp_path, capsys, change, where, needle):
    _, root, folder = sweep
    bad = tmp_path / "root" / STRONG / "Q1.npz" if where == "root" else tmp_path / "new.npz"
    _with_identity(root / STRONG / "Q1.npz", bad, **change)
    out = tmp_path / "p.csv"
    features = tmp_path / "root" if where == "root" else bad
    refused(
        ["predict", "--bundle", str(folder), "--features", str(features), "--out", str(out)],
        out,
        capsys,
        str(bad),
        needle,
    )


def test_a_file_without_identity_needs_its_path_or_signature_and_task(sweep, tmp_path, capsys):
    _, root, folder = sweep
    data = np.load(root / STRONG / "Q3.npz", allow_pickle=False)
    anonymous = tmp_path / "new_subjects.npz"
    write_npz(
        anonymous, X=data["X"], subject_id=data["subject_id"], feature_names=data["feature_names"]
    )
    out = tmp_path / "p.csv"
    argv = ["predict", "--bundle", str(folder), "--features", str(anonymous), "--out", str(out)]
    refused(argv, out, capsys, str(anonymous), "give --signature and --task")
    refused(
        [*argv, "--signature", WEAK, "--task", "Q3"],
        out,
        capsys,
        f"signature: expected {STRONG}, found {WEAK} (the bundle's Q3 model)",
    )
    capsys.readouterr()
    assert main([*argv, "--signature", STRONG, "--task", "Q3"]) == 0
    assert [r["Q3"] != "" and r["Q1"] == "" and r["subtotal"] == "" for r in rows_of(out)] == [
        True
    ] * 60
    # One task: no subtotal, and the summary line does not claim one.
    assert "wrote predictions for 60 subjects (Q3) with" in capsys.readouterr().out
    # A path that says it is enough; --task against the file's own record is checked.
    (tmp_path / STRONG).mkdir()
    shutil.copy(anonymous, tmp_path / STRONG / "Q3.npz")
    out.unlink()
    assert (
        main(
            [
                "predict",
                "--bundle",
                str(folder),
                "--features",
                str(tmp_path / STRONG / "Q3.npz"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    out.unlink()
    refused(
        [
            "predict",
            "--bundle",
            str(folder),
            "--features",
            str(root / STRONG / "Q3.npz"),
            "--task",
            "Q1",
            "--out",
            str(out),
        ],
        out,
        capsys,
        "--task Q1, but the file records Q3",
    )


def test_the_issues_case_another_signature_and_task_through_model_is_refused(
    sweep, tmp_path, capsys
):
    _, root, folder = sweep
    model = json.loads((folder / MANIFEST).read_text())["tasks"]["Q1"]["checkpoint_uri"]
    out = tmp_path / "p.csv"
    refused(
        [
            "predict",
            "--model",
            model,
            "--signature",
            WEAK,
            "--input",
            str(root / STRONG / "Q3.npz"),
            "--out",
            str(out),
        ],
        out,
        capsys,
        f"--signature {WEAK}, but the file records {STRONG}",
    )
    refused(
        [
            "predict",
            "--model",
            model,
            "--signature",
            STRONG,
            "--input",
            str(root / STRONG / "Q3.npz"),
            "--out",
            str(out),
        ],
        out,
        capsys,
        "task: expected Q1, found Q3",
    )
    assert (
        main(
            [
                "predict",
                "--model",
                model,
                "--signature",
                STRONG,
                "--input",
                str(root / STRONG / "Q1.npz"),
                "--out",
                str(out),
            ]
        )
        == 0
    )


def test_a_changed_weights_file_and_a_newer_format_are_refused(sweep, tmp_path, capsys):
    _, root, folder = sweep
    copy = tmp_path / "bundle"
    shutil.copytree(folder, copy)
    out = tmp_path / "p.csv"
    argv = ["predict", "--bundle", str(copy), "--features", str(root), "--out", str(out)]
    weights = copy / "Q4.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 1
    weights.write_bytes(bytes(blob))
    expected = json.loads((copy / MANIFEST).read_text())["files"]["Q4.safetensors"]
    refused(argv, out, capsys, str(weights), f"the manifest expects {expected}")
    shutil.copy(folder / "Q4.safetensors", weights)
    manifest = json.loads((copy / MANIFEST).read_text())
    (copy / MANIFEST).write_text(json.dumps({**manifest, "format_version": 4}))
    refused(
        argv, out, capsys, "mmse-bundle format version 4 is newer than this code reads (up to 3)"
    )


def test_bundle_refuses_to_overwrite_a_folder_that_is_not_a_bundle(sweep, tmp_path, capsys):
    experiment, _, _ = sweep
    target = tmp_path / "precious"
    target.mkdir()
    (target / "notes.txt").write_text("keep")
    assert main(["bundle", str(experiment), "--out", str(target)]) == 2
    assert "holds no manifest.json: not a model bundle written by mmse" in capsys.readouterr().err
    assert [p.name for p in target.iterdir()] == ["notes.txt"]


def test_the_bundle_loads_and_predicts_without_ray(sweep, tmp_path):
    _, root, folder = sweep
    code = (
        f"import sys\nfrom mmse_model.bundle.run import predict_with_bundle\n"
        f"print(predict_with_bundle({str(folder)!r}, "
        f"{str(tmp_path / 'p.csv')!r}, features={str(root)!r}))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'ray_jobs')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert len(rows_of(tmp_path / "p.csv")) == 60


def _bundle_for_built_features(folder, tmp_path, **change):
    """A copy of the bundle whose models take the builder's feature names (the fixture's
    planted data names them rqa_i); only the manifest changes, the weights are the same."""
    from mmse_model.core.domain import FEATURE_NAMES

    copy = tmp_path / "built_bundle"
    shutil.copytree(folder, copy)

    def edit(manifest):
        for model in manifest["tasks"].values():
            model["feature_names"] = list(FEATURE_NAMES)
            model["builder_version"] = BUILDER_VERSION  # the fixture's data say "toy"
            model.update(change)

    # The weights record their feature names too: written again with the manifest's.
    rewrite_bundle(copy, edit, sync_metadata=True)
    return copy


def test_predict_from_recordings_equals_predict_from_the_features_built_from_them(
    sweep, tmp_path, capsys
):
    from mmse_model.features.build import build_datasets, run_in_process
    from mmse_model.synth.cohort import synthesize

    _, _, folder = sweep
    bundle = _bundle_for_built_features(folder, tmp_path)
    cohort = tmp_path / "cohort"
    synthesize(cohort, n_subjects=5, seed=4, duration_s=(4.0, 6.0))
    built = tmp_path / "built"
    build_datasets(
        cohort / "recordings", cohort / "labels.csv", [STRONG], built, "trajectory", run_in_process
    )
    from_features, from_recordings = tmp_path / "f.csv", tmp_path / "r.csv"
    assert (
        main(
            [
                "predict",
                "--bundle",
                str(bundle),
                "--features",
                str(built),
                "--out",
                str(from_features),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "predict",
                "--bundle",
                str(bundle),
                "--recordings",
                str(cohort / "recordings"),
                "--out",
                str(from_recordings),
            ]
        )
        == 0
    )
    assert (
        "wrote predictions for 5 subjects (Q1, Q2, Q3, Q4, Q5; subtotal for 5)"
        in capsys.readouterr().out
    )
    assert from_recordings.read_text() == from_features.read_text()
    assert [r["subject_id"] for r in rows_of(from_recordings)] == sorted(
        p.name for p in (cohort / "recordings").iterdir()
    )


def test_recordings_are_refused_when_this_code_would_build_their_features_otherwise(
    sweep, tmp_path, capsys
):
    _, _, folder = sweep
    bundle = _bundle_for_built_features(
        folder, tmp_path, build_params={"mode": "trajectory", "rate_hz": 60.0, "theiler_window": 15}
    )
    (tmp_path / "recordings" / "S1").mkdir(parents=True)
    out = tmp_path / "p.csv"
    refused(
        [
            "predict",
            "--bundle",
            str(bundle),
            "--recordings",
            str(tmp_path / "recordings"),
            "--out",
            str(out),
        ],
        out,
        capsys,
        "features built with mode=trajectory, rate_hz=60, theiler_window=15; this code builds "
        "mode=trajectory, rate_hz=90, theiler_window=23",
    )


def test_predict_from_recordings_of_another_layout_needs_the_bundles_conversion(
    sweep, tmp_path, capsys
):
    """Issue 29: the bundle was trained on t,x,y recordings. The same numbers under other
    column names (a mapping file) predict the same; direction vectors are refused in one
    line naming both conversions, before any output."""
    from mmse_model.synth.cohort import synthesize

    _, _, folder = sweep
    bundle = _bundle_for_built_features(folder, tmp_path)
    cohort = tmp_path / "cohort"
    synthesize(cohort, n_subjects=3, seed=4, duration_s=(4.0, 6.0))
    renamed = tmp_path / "renamed"
    for path in (cohort / "recordings").rglob("*.csv"):
        target = renamed / path.relative_to(cohort / "recordings")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text().replace("t,x,y", "ts,gaze_x,gaze_y"))
    mapping = tmp_path / "clinic.yaml"
    mapping.write_text(
        "time: {column: ts, unit: s}\ngaze: {kind: normalised, columns: [gaze_x, gaze_y]}\n"
    )
    predict = ["predict", "--bundle", str(bundle), "--out"]
    assert (
        main([*predict, str(tmp_path / "a.csv"), "--recordings", str(cohort / "recordings")]) == 0
    )
    mapped = [*predict, str(tmp_path / "b.csv"), "--recordings", str(renamed)]
    assert main([*mapped, "--format", str(mapping)]) == 0
    assert (tmp_path / "b.csv").read_text() == (tmp_path / "a.csv").read_text()
    out = tmp_path / "c.csv"
    refused(
        [*predict, str(out), "--recordings", str(renamed), "--format", "vectors"],
        out,
        capsys,
        "its features were built from gaze converted as kind=normalised, time_unit=s, "
        "field_of_view_deg=100; --format vectors converts as kind=vectors, time_unit=s, "
        "forward=+z, field_of_view_deg=100",
    )
    refused(
        [*predict, str(out), "--recordings", str(renamed), "--field-of-view", "90"],
        out,
        capsys,
        "--forward and --field-of-view go with --format",
    )
    refused(
        [*predict, str(out), "--features", str(renamed), "--format", "txy"],
        out,
        capsys,
        "--format, --forward and --field-of-view go with --recordings",
    )


def test_the_demos_check_on_a_fresh_draw_measures_rmse_and_coverage(sweep, tmp_path):
    """The demo's last step: new subjects of the same population (here a planted-signal root
    drawn with another seed), predicted from the bundle, their RMSE beside the sweep's
    estimate and their intervals' coverage, each from the predictions CSV and the labels."""
    from mmse_app.demo import check_fresh_draw
    from tests.fixtures.toy_data import write_planted_root

    experiment = sweep[0]
    fresh = write_planted_root(
        tmp_path / "fresh", {STRONG: 1.0, WEAK: 0.0}, tasks=TASKS, n_subjects=40, seed=7
    )
    truth = {}
    for task in TASKS:
        with np.load(fresh / STRONG / f"{task}.npz", allow_pickle=False) as npz:
            for sid, score in zip(npz["subject_id"], npz["y"]):
                truth.setdefault(str(sid), {})[task] = float(score)
    (tmp_path / "labels.csv").write_text(
        "subject_id,"
        + ",".join(TASKS)
        + "\n"
        + "".join(f"{s}," + ",".join(str(v[t]) for t in TASKS) + "\n" for s, v in truth.items())
    )
    text = check_fresh_draw(experiment, tmp_path, fresh, tmp_path / "fresh.csv")
    rows = rows_of(tmp_path / "fresh.csv")
    assert len(rows) == 40 and text.startswith("demo: 40 new SYNTHETIC subjects")
    summary = json.loads((experiment / "summary.json").read_text())
    for task in (*TASKS, "subtotal"):
        parts = TASKS if task == "subtotal" else (task,)
        y = np.array([sum(truth[r["subject_id"]][t] for t in parts) for r in rows])
        predicted = np.array([float(r[task]) for r in rows])
        rmse = np.sqrt(np.mean((predicted - y) ** 2))
        inside = sum(float(r[f"{task}_lo"]) <= t <= float(r[f"{task}_hi"]) for r, t in zip(rows, y))
        entry = summary["subtotal"] if task == "subtotal" else summary["tasks"][task]
        estimate = entry["estimate"]["network"]["rmse"]["value"]
        line = next(line for line in text.splitlines() if line.startswith(f"  {task}: "))
        assert line.startswith(
            f"  {task}: RMSE {rmse:.2f} on 40 new subjects (estimate {estimate:.2f}"
        )
        assert "of 40 new subjects" in line and f"{100 * inside / 40:.1f}%" in line


def test_subject_ids_of_a_features_csv_stay_as_written(sweep, tmp_path):
    _, root, folder = sweep
    data = np.load(root / STRONG / "Q1.npz", allow_pickle=False)
    path = tmp_path / "features.csv"
    lines = ["subject_id," + ",".join(str(n) for n in data["feature_names"])]
    lines += [
        f"{sid}," + ",".join(repr(float(v)) for v in row)
        for sid, row in zip(["007", "1e3", "0042"], data["X"])
    ]
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "p.csv"
    assert (
        main(
            [
                "predict",
                "--bundle",
                str(folder),
                "--features",
                str(path),
                "--signature",
                STRONG,
                "--task",
                "Q1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rows = rows_of(out)
    assert [r["subject_id"] for r in rows] == ["007", "1e3", "0042"] and list(rows[0])[1:4] == [
        "Q1",
        "Q1_lo",
        "Q1_hi",
    ]


def test_bundle_refuses_an_unfinished_sweep_and_data_it_did_not_train_on(sweep, tmp_path, capsys):
    experiment, root, _ = sweep
    copy = tmp_path / "experiment"
    shutil.copytree(experiment, copy, ignore=shutil.ignore_patterns("bundle"))
    summary = json.loads((copy / "summary.json").read_text())

    def bundle_with(**changes):
        (copy / "summary.json").write_text(json.dumps({**summary, **changes}))
        return ["bundle", str(copy), "--data", str(root), "--out", str(tmp_path / "b")]

    refused(
        bundle_with(failed_trials=["t_Q1"]),
        tmp_path / "b",
        capsys,
        "the sweep did not finish (1 trials failed)",
    )
    provenance = {**summary.get("provenance", {}), "data_fingerprint": "0" * 64}
    refused(
        bundle_with(provenance=provenance),
        tmp_path / "b",
        capsys,
        f"{root}: not the data the sweep trained on",
    )
    provenance["data_fingerprint"] = data_fingerprint(root)
    assert main(bundle_with(provenance=provenance)) == 0 and (tmp_path / "b" / MANIFEST).exists()
