"""A bundle's manifest and weights are checked as one (issue 27): every edit, swap or damage
that used to give wrong sub-scores with exit status 0, or a traceback, is one line naming the
file, exit status 2, and nothing written or changed.

Most cases edit a copy of a written bundle the way someone who knows the format would
(tests/fixtures/bundles.py: the sha256 of every file and the digest recomputed), so that only
the checks of what the files say can catch them; a few leave the digest stale to show it
catches an edit by itself.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from mmse_app.cli import main
from mmse_model.bundle.layout import MANIFEST
from mmse_model.bundle.manifest import manifest_digest
from mmse_model.core.domain import TASKS
from mmse_model.core.hashing import sha256_file
from mmse_model.training.checkpoint import load_checkpoint, save_checkpoint
from tests.fixtures.bundles import rewrite_bundle
from tests.fixtures.trained_sweep import STRONG, WEAK


@pytest.fixture
def sweep(bundled_sweep):
    """(experiment, data root, bundle) of a finished five-task sweep (CV+ intervals)."""
    return bundled_sweep


@pytest.fixture
def bundle(sweep, tmp_path):
    """A copy of the bundle to edit."""
    copy = tmp_path / "bundle"
    shutil.copytree(sweep[2], copy)
    return copy


def snapshot(*folders):
    """Every regular file under `folders`: its sha256 (a file above 50 MB, sparse in these
    tests: its size and modification time, not read)."""
    files = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                info = path.stat()
                files[path] = (
                    (info.st_size, info.st_mtime_ns)
                    if info.st_size > 50_000_000
                    else sha256_file(path)
                )
    return files


def refused(argv, out, capsys, named, *needles, untouched=()):
    """Exit status 2, one line `mmse: error: ` naming `named`, no output, and every file
    beside `out` and under `untouched` byte-identical afterwards."""
    untouched = [out.parent, *untouched]
    before = snapshot(*untouched)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmse: error: ") and err.count("\n") == 1, err
    assert str(named) in err, err
    for needle in needles:
        assert needle in err, err
    assert "Traceback" not in err
    assert not out.exists()
    assert snapshot(*untouched) == before
    return err


def predict_argv(bundle, root, out):
    return ["predict", "--bundle", str(bundle), "--features", str(root), "--out", str(out)]


def test_a_written_bundle_is_sealed_and_its_weights_say_what_they_are(sweep):
    from safetensors import safe_open

    _, _, folder = sweep
    document = json.loads((folder / MANIFEST).read_text())
    assert document["format_version"] == 3 and document["digest"] == manifest_digest(document)
    with safe_open(str(folder / "Q3.safetensors"), "pt") as handle:
        metadata = handle.metadata()
    model = document["tasks"]["Q3"]
    assert metadata["format"] == "mmse-bundle-weights" and metadata["task"] == "Q3"
    assert metadata["signature"] == model["signature"] == STRONG
    assert json.loads(metadata["folds"]) == model["folds"]
    assert json.loads(metadata["feature_names"]) == model["feature_names"]
    assert json.loads(metadata["score_range"]) == model["score_range"] == [0.0, 3.0]
    with safe_open(str(folder / "subtotal.safetensors"), "pt") as handle:
        sub = handle.metadata()
    assert json.loads(sub["tasks"]) == list(TASKS) and json.loads(sub["score_range"]) == [0, 21]


def test_an_edited_manifest_fails_its_digest(bundle, sweep, tmp_path, capsys):
    _, root, _ = sweep
    out = tmp_path / "p.csv"

    def q1_reads_q2(manifest):
        manifest["tasks"]["Q1"]["weights"] = "Q2.safetensors"

    rewrite_bundle(bundle, q1_reads_q2, seal=False)
    refused(
        predict_argv(bundle, root, out),
        out,
        capsys,
        bundle / MANIFEST,
        "it was changed or damaged after it was written",
        untouched=[bundle, root],
    )


def _swap_q1_q2(bundle):
    q1, q2 = (bundle / "Q1.safetensors").read_bytes(), (bundle / "Q2.safetensors").read_bytes()
    (bundle / "Q1.safetensors").write_bytes(q2)
    (bundle / "Q2.safetensors").write_bytes(q1)


@pytest.mark.parametrize(
    ("case", "named", "needle"),
    [
        # the cases, each with every sha256 and the digest made to agree
        ("weights", MANIFEST, "tasks.Q1.weights: expected Q1.safetensors, found 'Q2.safetensors'"),
        (
            "signature",
            "Q1.safetensors",
            f"records signature {STRONG}, but the manifest's tasks.Q1 says {WEAK}",
        ),
        ("swap", "Q1.safetensors", "records task Q2, but the manifest's tasks.Q1 says Q1"),
        ("drop_q3", MANIFEST, "subtotal of Q1, Q2, Q3, Q4, Q5, but the bundle's tasks are Q1, Q2"),
        ("reversed", MANIFEST, "tasks.Q1.score_range [5, 0] is empty or reversed"),
        ("empty", MANIFEST, "tasks.Q1.score_range [2, 2] is empty or reversed"),
        ("mmse", MANIFEST, "tasks.Q1.score_range [0, 30], but Q1 scores lie in [0, 5]"),
        ("folds", MANIFEST, "tasks.Q2.folds 4, but its config has split.folds 3"),
        ("feature_names", "Q4.safetensors", 'records feature_names ["rqa_0"'),
        ("bounds", MANIFEST, "tasks.Q5.feature_min: 9 values, expected 10"),
        ("extra_file", MANIFEST, "files lists notes.safetensors, which no model uses"),
        ("level", MANIFEST, "interval_level 1.5: expected a level between 0 and 1"),
        ("task_key", MANIFEST, "tasks.Q1.task is 'Q2': a model listed under another task"),
    ],
)
def test_a_manifest_that_does_not_match_its_weights_or_the_domain_is_refused(
    bundle, sweep, tmp_path, capsys, case, named, needle
):
    _, root, _ = sweep
    out = tmp_path / "p.csv"

    def edit(manifest):
        tasks = manifest["tasks"]
        if case == "weights":
            tasks["Q1"]["weights"] = "Q2.safetensors"
        elif case == "signature":
            tasks["Q1"]["signature"] = WEAK
        elif case == "swap":  # the files swapped with their hashes (recomputed by the rewrite)
            _swap_q1_q2(bundle)
        elif case == "drop_q3":
            del tasks["Q3"]
            del manifest["files"]["Q3.safetensors"]
        elif case in ("reversed", "empty", "mmse"):
            tasks["Q1"]["score_range"] = {"reversed": [5, 0], "empty": [2, 2], "mmse": [0, 30]}[
                case
            ]
        elif case == "folds":
            tasks["Q2"]["folds"] = 4
        elif case == "feature_names":
            tasks["Q4"]["feature_names"] = [f"other{i}" for i in range(10)]
        elif case == "bounds":
            tasks["Q5"]["feature_min"] = tasks["Q5"]["feature_min"][:9]
        elif case == "extra_file":
            manifest["files"]["notes.safetensors"] = "0" * 64
        elif case == "level":
            manifest["interval_level"] = 1.5
        elif case == "task_key":
            tasks["Q1"]["task"] = "Q2"

    rewrite_bundle(bundle, edit)
    refused(
        predict_argv(bundle, root, out),
        out,
        capsys,
        bundle / named,
        needle,
        untouched=[bundle, root],
    )


def test_a_score_range_the_weights_do_not_record_is_refused(bundle, sweep, tmp_path, capsys):
    """The manifest says the item's range; the weights another: they do not belong together."""
    _, root, _ = sweep
    out = tmp_path / "p.csv"

    def other_range(metadata):
        metadata["score_range"] = "[0.0, 30.0]"

    rewrite_bundle(bundle, metadata={"Q1.safetensors": other_range})
    refused(
        predict_argv(bundle, root, out),
        out,
        capsys,
        bundle / "Q1.safetensors",
        "records score_range [0.0, 30.0], but the manifest's tasks.Q1 says [0.0, 5.0]",
        untouched=[bundle, root],
    )


def test_a_bundle_without_q3_and_its_subtotal_predicts_four_tasks_and_no_subtotal(
    bundle, sweep, tmp_path, capsys
):
    _, root, _ = sweep

    def drop(manifest):
        del manifest["tasks"]["Q3"]
        del manifest["files"]["Q3.safetensors"]
        del manifest["files"]["subtotal.safetensors"]
        manifest["subtotal"] = None

    rewrite_bundle(bundle, drop)
    out = tmp_path / "p.csv"
    assert main(predict_argv(bundle, root, out)) == 0
    header = out.read_text().splitlines()[0]
    assert "Q3" not in header and "subtotal" not in header and "Q4_hi" in header
    assert "subtotal for" not in capsys.readouterr().out


def _set(name, make):
    def edit(tensors):
        tensors[name] = make(tensors[name])

    return edit


@pytest.mark.parametrize(
    ("file", "edit", "needle"),
    [
        ("Q1.safetensors", lambda t: t.pop("conformal.residual"), "no tensor 'conformal.residual'"),
        (
            "Q2.safetensors",
            _set("conformal.fold", lambda t: torch.where(torch.arange(len(t)) == 3, 99, t)),
            "conformal.fold holds fold index 99; expected 0 to 2 (3 fold-models)",
        ),
        (
            "Q3.safetensors",
            _set("conformal.residual", lambda t: t[:-1].clone()),
            "conformal.residual holds 47 residuals for 48 training subjects",
        ),
        (
            "Q3.safetensors",
            _set("conformal.fold", lambda t: t[:-1].clone()),
            "conformal.fold has shape [47], expected [48]",
        ),
        (
            "Q4.safetensors",
            _set("features.min", lambda t: t[:9].clone()),
            "features.min has shape [9], expected [10]",
        ),
        (
            "Q5.safetensors",
            _set("model.flat", lambda t: torch.full_like(t, float("nan"))),
            "model.flat holds NaN or infinite values",
        ),
        (
            "Q1.safetensors",
            _set("model.flat", lambda t: t[:, :-1].clone()),
            "model.flat has shape [3, 192], expected [3, 193]",
        ),
        (
            "Q2.safetensors",
            _set("standardiser.scale", lambda t: torch.zeros_like(t)),
            "standardiser.scale holds values <= 0",
        ),
        (
            "Q3.safetensors",
            _set("conformal.fold", lambda t: t.double()),
            "conformal.fold is torch.float64, expected integers",
        ),
        (
            "Q4.safetensors",
            _set("features.max", lambda t: t + 1.0),
            "features.max differs from the manifest's feature_max",
        ),
        (
            "Q5.safetensors",
            _set("conformal.residual", lambda t: -t),
            "conformal.residual holds negative values",
        ),
        (
            "subtotal.safetensors",
            _set("conformal.fold", lambda t: t + 5),
            "conformal.fold holds fold index",
        ),
        (
            "Q1.safetensors",
            lambda t: t.update({"extra": torch.zeros(2)}),
            "holds unexpected tensor(s) extra",
        ),
    ],
)
def test_malformed_weights_are_one_line_not_a_traceback_or_nan(
    bundle, sweep, tmp_path, capsys, file, edit, needle
):
    _, root, _ = sweep
    out = tmp_path / "p.csv"
    rewrite_bundle(bundle, tensors={file: edit})
    refused(
        predict_argv(bundle, root, out),
        out,
        capsys,
        bundle / file,
        needle,
        untouched=[bundle, root],
    )


@pytest.mark.parametrize(
    ("file", "change", "needle"),
    [
        ("Q1.safetensors", lambda m: m.pop("folds"), "records no folds (the manifest's tasks.Q1"),
        ("Q2.safetensors", lambda m: m.update(task="Q3"), "records task Q3, but"),
        ("subtotal.safetensors", lambda m: m.update(folds="5"), "records folds 5, but"),
    ],
)
def test_weights_metadata_is_checked_against_the_manifest(
    bundle, sweep, tmp_path, capsys, file, change, needle
):
    _, root, _ = sweep
    out = tmp_path / "p.csv"
    rewrite_bundle(bundle, metadata={file: change})
    refused(predict_argv(bundle, root, out), out, capsys, bundle / file, needle, untouched=[bundle])


def test_a_weights_file_that_is_not_safetensors_is_refused(bundle, sweep, tmp_path, capsys):
    _, root, _ = sweep
    (bundle / "Q3.safetensors").write_bytes(b"\xff" * 64)
    rewrite_bundle(bundle)  # its sha256 recorded: only reading it can tell
    out = tmp_path / "p.csv"
    refused(
        predict_argv(bundle, root, out),
        out,
        capsys,
        bundle / "Q3.safetensors",
        "not a readable safetensors file",
    )


def test_a_non_finite_number_in_the_manifest_is_refused(bundle, sweep, tmp_path, capsys):
    _, root, _ = sweep
    text = (bundle / MANIFEST).read_text()
    (bundle / MANIFEST).write_text(text.replace('"interval_level": 0.9', '"interval_level": NaN'))
    out = tmp_path / "p.csv"
    refused(
        predict_argv(bundle, root, out),
        out,
        capsys,
        bundle / MANIFEST,
        "interval_level is not a finite number",
    )


def test_an_older_bundle_without_a_digest_is_read_and_said_unchecked(
    bundle, sweep, tmp_path, capsys
):
    """Format 2: no digest, weights that record format, task and signature only. It loads
    and predicts as before, says its manifest is unchecked, and what its weights do record
    is still checked."""
    _, root, folder = sweep

    def older(manifest):
        manifest["format_version"] = 2
        del manifest["digest"]

    def three_keys(metadata):
        for key in list(metadata):
            if key not in ("format", "task", "signature"):
                del metadata[key]

    rewrite_bundle(
        bundle, older, metadata={p.name: three_keys for p in bundle.glob("*.safetensors")}
    )
    out, sealed = tmp_path / "p.csv", tmp_path / "sealed.csv"
    assert main(predict_argv(bundle, root, out)) == 0
    said = capsys.readouterr().out
    assert "an older bundle without a manifest digest" in said and "manifest itself not" in said
    assert main(predict_argv(folder, root, sealed)) == 0
    assert out.read_bytes() == sealed.read_bytes()
    assert "without a manifest digest" not in capsys.readouterr().out

    def other_signature(manifest):
        manifest["tasks"]["Q2"]["signature"] = WEAK

    rewrite_bundle(bundle, other_signature)
    out.unlink()
    refused(
        predict_argv(bundle, root, out),
        out,
        capsys,
        bundle / "Q2.safetensors",
        f"records signature {STRONG}, but the manifest's tasks.Q2 says {WEAK}",
    )


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (
            lambda p: {
                "best_model_state": {"flat": p.best_model_state["flat"][:, :-1].clone()},
            },
            "best_model_state.flat has shape [6, 192], expected [6, 193]",
        ),
        (
            lambda p: {"best_model_state": {"flat": p.best_model_state["flat"] * float("nan")}},
            "best_model_state.flat holds NaN, infinite or non-float values",
        ),
        (
            lambda p: {"standardiser_mean": p.standardiser_mean[:, :9].clone()},
            "standardiser_mean has shape [6, 9], expected [6, 10]",
        ),
        (
            lambda p: {"standardiser_scale": torch.full_like(p.standardiser_scale, float("inf"))},
            "standardiser_scale holds NaN, infinite or non-float values",
        ),
        (lambda p: {"score_range": [5.0, 0.0]}, "score_range [5.0, 0.0] is not [low, high]"),
    ],
)
def test_predict_with_a_malformed_checkpoint_is_one_line(sweep, tmp_path, capsys, change, needle):
    experiment, root, _ = sweep
    source = next((experiment / "train_runs" / "t_Q1").iterdir())
    payload = load_checkpoint(source)
    broken = tmp_path / "checkpoint"
    save_checkpoint(broken, payload.model_copy(update=change(payload)))
    out = tmp_path / "p.csv"
    refused(
        [
            "predict",
            "--model",
            str(broken),
            "--signature",
            STRONG,
            "--input",
            str(root / STRONG / "Q1.npz"),
            "--out",
            str(out),
        ],
        out,
        capsys,
        broken,
        needle,
        untouched=[root, broken],
    )


def test_the_digest_covers_the_weights_hashes(sweep):
    """Changing one listed sha256 changes the digest: the hashes are inside what it seals."""
    _, _, folder = sweep
    document = json.loads((folder / MANIFEST).read_text())
    other = json.loads(json.dumps(document))
    other["files"]["Q1.safetensors"] = "0" * 64
    assert manifest_digest(other) != manifest_digest(document) == document["digest"]
    # ... and the digest does not cover itself.
    assert manifest_digest({**document, "digest": "x"}) == document["digest"]
    assert np.isfinite(document["interval_level"])
