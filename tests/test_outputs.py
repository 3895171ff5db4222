"""Outputs never destroy inputs, and a folder is replaced only when mmse provably wrote it
(mmse_model/core/outputs.py; issue 27).

Every refusal is exit status 2, one line `mmse: error: <path>: <reason>` and nothing written
or changed: each test reads every byte (and every link and FIFO) under the folders involved
before and after.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import stat
import uuid
from pathlib import Path

import numpy as np
import pytest

from mmse_app.demo import _check_outputs
from mmse_model.bundle.layout import MANIFEST
from mmse_model.bundle.manifest import manifest_digest
from mmse_model.core import atomic, outputs, storage
from mmse_model.core.errors import InputError
from mmse_model.data.manifest import MANIFEST_NAME, MANIFEST_VERSION
from mmse_model.synth import cohort as synth
from tests.fixtures.cli import run_cli
from tests.fixtures.trained_sweep import STRONG, write_trained_sweep
from tests.test_build import build_argv

SIG = "m2_tau1_eps0.055_lmin2"


# --- what a test compares: every entry under some folders, byte for byte ----------------------


def snapshot(*roots: Path) -> dict[str, object]:
    """Every entry under `roots` (links and FIFOs not followed or opened): path -> bytes, the
    link's target, or the kind of a special file."""
    seen: dict[str, object] = {}
    for root in roots:
        entries = [root]
        if root.is_dir() and not root.is_symlink():
            entries += sorted(Path(here) / n for here, ds, fs in os.walk(root) for n in ds + fs)
        for path in entries:
            if not os.path.lexists(path):
                continue
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                seen[str(path)] = ("link", os.readlink(path))
            elif stat.S_ISREG(mode):
                seen[str(path)] = path.read_bytes()
            elif stat.S_ISDIR(mode):
                seen[str(path)] = "folder"
            else:
                seen[str(path)] = ("special", stat.S_IFMT(mode))
    return seen


def refused(argv: list[str], named: Path | str, *needles: str, keep: tuple[Path, ...]) -> str:
    """Run `mmse argv`: exit 2, one line naming `named` (and `needles`), nothing under `keep`
    changed, and no temporary sibling left beside `named`."""
    before = snapshot(*keep)
    siblings = sorted(os.listdir(Path(named).parent)) if Path(named).parent.is_dir() else None
    code, out, err = run_cli(*argv)
    assert code == 2, (code, out, err)
    assert err.startswith("mmse: error: ") and err.count("\n") == 1, err
    assert f"{named}:" in err, err
    for needle in needles:
        assert needle in err, err
    assert snapshot(*keep) == before
    if siblings is not None:
        assert sorted(os.listdir(Path(named).parent)) == siblings
    return err


# --- fixtures: one trained task, its bundle and checkpoint; a small cohort --------------------


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """(experiment, data root, bundle folder, checkpoint folder) of a finished one-task sweep."""
    base = tmp_path_factory.mktemp("outputs")
    experiment, root = write_trained_sweep(base, tasks=("Q1",), n_subjects=60)
    code, _, err = run_cli("bundle", str(experiment))
    assert code == 0, err
    checkpoint = next((experiment / "train_runs" / "t_Q1").glob("checkpoint_*"))
    return experiment, root, experiment / "bundle", checkpoint


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("outputs_cohort") / "cohort"
    synth.synthesize(out, n_subjects=4, seed=5, duration_s=(3.0, 4.0))
    return out


def build(cohort: Path, out: Path) -> list[str]:
    return build_argv(cohort, out, signatures=[SIG])


def features_csv(root: Path, path: Path) -> Path:
    """The Q1 features of the strong signature as a CSV `--input` (subject_id + 10 columns)."""
    with np.load(root / STRONG / "Q1.npz", allow_pickle=False) as npz:
        names, X, ids = list(npz["feature_names"]), npz["X"], list(npz["subject_id"])
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subject_id", *names])
        writer.writerows([sid, *row] for sid, row in zip(ids, X.tolist()))
    return path


def predict_bundle(bundle: Path, features: Path, out: Path | str, *extra: str) -> list[str]:
    argv = ["predict", "--bundle", str(bundle), "--features", str(features)]
    return [*argv, "--out", str(out), *extra]


def predict_model(checkpoint: Path, source: Path, out: Path | str, *extra: str) -> list[str]:
    argv = ["predict", "--model", str(checkpoint), "--signature", STRONG, "--task", "Q1"]
    return [*argv, "--input", str(source), "--out", str(out), *extra]


# --- mmse predict: the output is never an input ---------------------------------------------


def test_predict_never_writes_over_the_bundle_or_its_features(sweep):
    experiment, root, bundle, _ = sweep
    keep = (bundle, root)
    # The bundle's own manifest (the next predict would fail), and a weights file.
    for target in (bundle / MANIFEST, bundle / "Q1.safetensors"):
        for extra in ((), ("--overwrite",)):
            argv = predict_bundle(bundle, root, target, *extra)
            refused(argv, target, f"lies inside the input {bundle} (--bundle)", keep=keep)
    # The input features: one file given, or inside the data root given.
    q1 = root / STRONG / "Q1.npz"
    argv = predict_bundle(bundle, q1, q1, "--overwrite")
    refused(argv, q1, f"is the input {q1} (--features)", keep=keep)
    argv = predict_bundle(bundle, root, q1, "--overwrite")
    refused(argv, q1, f"lies inside the input {root} (--features)", keep=keep)
    # Inside the recordings it would read.
    recordings = experiment.parent / "recordings"
    (recordings / "S0001").mkdir(parents=True)
    out = recordings / "predictions.csv"
    argv = ["predict", "--bundle", str(bundle), "--recordings", str(recordings), "--out", str(out)]
    refused(argv, out, "lies inside the input", "(--recordings)", keep=keep + (recordings,))


def test_predict_never_writes_over_the_checkpoint_or_its_input(sweep, tmp_path):
    _, root, _, checkpoint = sweep
    source = features_csv(root, tmp_path / "new_subjects.csv")
    keep = (checkpoint, tmp_path)
    model_pt = checkpoint / "model.pt"
    argv = predict_model(checkpoint, source, model_pt, "--overwrite")
    refused(argv, model_pt, f"lies inside the input {checkpoint} (--model)", keep=keep)
    argv = predict_model(model_pt, source, model_pt, "--overwrite")
    refused(argv, model_pt, f"is the input {model_pt} (--model)", keep=keep)
    argv = predict_model(checkpoint, source, source, "--overwrite")
    refused(argv, source, f"is the input {source} (--input)", keep=keep)
    # The input reached through a symbolic link, and through a hard link.
    alias = tmp_path / "alias.csv"
    alias.symlink_to(source)
    argv = predict_model(checkpoint, source, alias, "--overwrite")
    refused(argv, alias, f"is the input {source} (--input), symbolic links followed", keep=keep)
    hard = tmp_path / "hard.csv"
    os.link(source, hard)
    argv = predict_model(checkpoint, source, hard, "--overwrite")
    refused(argv, hard, f"is the input {source} (--input)", keep=keep)
    # The next predict still works: nothing was touched.
    code, _, err = run_cli(*predict_model(checkpoint, source, tmp_path / "p.csv"))
    assert code == 0, err


def test_an_existing_output_is_replaced_only_with_overwrite(sweep, tmp_path):
    _, root, bundle, _ = sweep
    out = tmp_path / "predictions.csv"
    out.write_text("my own notes\n")
    refused(
        predict_bundle(bundle, root, out),
        out,
        "exists; give --overwrite to replace it, or another --out",
        keep=(tmp_path,),
    )
    code, _, err = run_cli(*predict_bundle(bundle, root, out, "--overwrite"))
    assert code == 0, err
    assert out.read_text().startswith("subject_id,Q1,Q1_lo,Q1_hi")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.csv"]


def test_what_is_not_a_regular_file_is_never_replaced(sweep, tmp_path):
    _, root, bundle, _ = sweep
    pipe = tmp_path / "pipe.csv"
    os.mkfifo(pipe)
    target = tmp_path / "target.csv"
    target.write_text("kept\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "nowhere.csv")
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    cases = [
        (pipe, "is a FIFO, not a regular file; never replaced, even with --overwrite"),
        (link, "is a symbolic link, not a regular file"),
        (dangling, "is a symbolic link, not a regular file"),
        (folder, "is a folder"),
    ]
    device = tmp_path / "null.csv"
    try:
        os.mknod(device, stat.S_IFCHR | 0o600, os.makedev(1, 3))
        cases.append((device, "is a character device"))
    except (PermissionError, OSError):
        pass  # no CAP_MKNOD here: the FIFO stands for special files
    sock = socket.socket(socket.AF_UNIX)
    sock_path = tmp_path / "s.csv"
    try:
        sock.bind(str(sock_path))
        cases.append((sock_path, "is a socket"))
    except OSError:
        pass  # a path too long for a socket
    try:
        for path, reason in cases:
            for extra in ((), ("--overwrite",)):
                argv = predict_bundle(bundle, root, path, *extra)
                refused(argv, path, reason, keep=(tmp_path,))
    finally:
        sock.close()
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode) and link.is_symlink()
    assert target.read_text() == "kept\n"


def test_atomic_writes_refuse_what_is_not_a_regular_file(tmp_path):
    """The last line of defence, under every writer: a rename never replaces a link or FIFO."""
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "target").write_text("kept")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder_link").symlink_to(tmp_path / "folder")
    before = snapshot(tmp_path)
    for name in ("pipe", "link"):
        with pytest.raises(InputError, match=f"{name}: is a .*; not replaced"):
            atomic.write_text(tmp_path / name, "x")
    for name, match in (
        ("folder_link", "folder_link: is a symbolic link, not a folder"),
        ("target", "target: is a file, not a folder"),
    ):
        staged = atomic.staged_dir(tmp_path / name, replace=True)
        with pytest.raises(InputError, match=match):
            staged.__enter__()
    assert snapshot(tmp_path) == before


# --- mmse data build: a folder is replaced only when it is a data root mmse wrote ------------


def test_data_build_refuses_a_folder_with_another_tools_dataset_json(cohort, tmp_path):
    out = tmp_path / "project"
    (out / "sub").mkdir(parents=True)
    (out / MANIFEST_NAME).write_text(json.dumps({"name": "someone else's dataset"}))
    (out / "sub" / "precious.txt").write_text("precious")
    refused(
        build(cohort, out),
        out,
        "not a data root written by mmse data build",
        f"{out / MANIFEST_NAME}: not a dataset manifest",
        "left as it is",
        keep=(tmp_path, cohort),
    )


def test_data_build_replaces_its_own_data_root_and_nothing_else(cohort, tmp_path):
    out = tmp_path / "data"
    code, _, err = run_cli(*build(cohort, out))
    assert code == 0, err
    written = snapshot(out)
    # Over an earlier data root it wrote: allowed, and the result is the same root.
    code, _, err = run_cli(*build(cohort, out))
    assert code == 0, err
    assert snapshot(out) == written
    assert not [p for p in tmp_path.iterdir() if p.name != "data"]  # no staging left
    # The same root with anything the manifest does not list is not replaced.
    for extra, named in (
        ("notes.txt", "notes.txt"),
        ("sub/precious.txt", "sub/"),
        (f"{SIG}/Q9.npz", f"{SIG}/Q9.npz"),
    ):
        (out / extra).parent.mkdir(exist_ok=True)
        (out / extra).write_text("mine")
        reason = f"holds {named}, not a file its {MANIFEST_NAME} lists"
        refused(build(cohort, out), out, reason, keep=(tmp_path,))
        (out / extra).unlink()
        if extra.startswith("sub/"):
            (out / "sub").rmdir()
    # A listed file that is a link is not a file the build wrote either.
    q1 = out / SIG / "Q1.npz"
    saved = q1.read_bytes()
    q1.unlink()
    (tmp_path / "elsewhere.npz").write_bytes(saved)
    q1.symlink_to(tmp_path / "elsewhere.npz")
    refused(build(cohort, out), out, f"holds {SIG}/Q1.npz (a symbolic link)", keep=(tmp_path,))


def test_an_older_data_root_is_replaced_only_when_it_lists_everything_there(cohort, tmp_path):
    """A manifest of version 2 (no tool, kind or contents) lists the dataset files: those,
    dataset.json and build_report.csv may be replaced; anything more is refused."""
    out = tmp_path / "data"
    assert run_cli(*build(cohort, out))[0] == 0
    raw = json.loads((out / MANIFEST_NAME).read_text())
    for key in ("tool", "kind", "contents"):
        del raw[key]
    (out / MANIFEST_NAME).write_text(json.dumps({**raw, "format_version": 2}))
    (out / "notes.txt").write_text("mine")
    refused(build(cohort, out), out, "holds notes.txt", keep=(tmp_path,))
    (out / "notes.txt").unlink()
    code, _, err = run_cli(*build(cohort, out))
    assert code == 0, err
    assert json.loads((out / MANIFEST_NAME).read_text())["format_version"] == MANIFEST_VERSION


def test_data_build_never_writes_into_or_over_its_inputs(cohort, tmp_path):
    recordings, labels = cohort / "recordings", cohort / "labels.csv"
    keep = (cohort, tmp_path)
    refused(build(cohort, recordings), recordings, "is the input", keep=keep)
    inside = recordings / "synth0001"
    refused(build(cohort, inside), inside, "lies inside the input", keep=keep)
    refused(build(cohort, cohort), cohort, f"holds the input {recordings}", keep=keep)
    refused(build(cohort, labels), labels, "exists and is a file, not a folder", keep=keep)
    # A link to a data root: replacing it would replace the link, not the root.
    real = tmp_path / "real"
    assert run_cli(*build(cohort, real))[0] == 0
    link = tmp_path / "link"
    link.symlink_to(real)
    refused(build(cohort, link), link, "is a symbolic link", keep=keep)
    link_to_input = tmp_path / "to_recordings"
    link_to_input.symlink_to(recordings)
    refused(build(cohort, link_to_input), link_to_input, "is a symbolic link", keep=keep)


def test_data_synth_writes_only_a_new_or_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "empty")
    argv = ["data", "synth", "--subjects", "2", "--out"]
    refused([*argv, str(link)], link, "is a symbolic link", keep=(tmp_path,))
    os.mkfifo(tmp_path / "pipe")
    refused([*argv, str(tmp_path / "pipe")], tmp_path / "pipe", "is a FIFO", keep=(tmp_path,))


# --- mmse bundle: a folder is replaced only when it is a bundle mmse wrote -------------------


def test_bundle_refuses_a_folder_with_another_tools_manifest(sweep, tmp_path):
    experiment, _, _, _ = sweep
    out = tmp_path / "webapp"
    (out / "src").mkdir(parents=True)
    (out / MANIFEST).write_text(json.dumps({"name": "webapp", "version": "1.0.0"}))
    (out / "src" / "app.js").write_text("console.log('mine')\n")
    refused(
        ["bundle", str(experiment), "--out", str(out)],
        out,
        "not a model bundle written by mmse",
        "left as it is",
        keep=(tmp_path, experiment),
    )


def test_bundle_replaces_an_earlier_bundle_of_its_own(sweep, tmp_path):
    experiment, _, bundle, _ = sweep
    out = tmp_path / "bundle"
    shutil.copytree(bundle, out)
    code, _, err = run_cli("bundle", str(experiment), "--out", str(out))
    assert code == 0, err
    assert (
        sorted(p.name for p in out.iterdir())
        == json.loads((out / MANIFEST).read_text())["contents"]
    )
    # Anything the manifest does not list stops it.
    (out / "src").mkdir()
    (out / "src" / "app.js").write_text("mine")
    refused(["bundle", str(experiment), "--out", str(out)], out, "holds src/", keep=(tmp_path,))
    shutil.rmtree(out / "src")
    # An older bundle (format 2: no tool, kind or contents) is replaced when it holds only
    # its manifest, its card and the weights its manifest lists.
    raw = json.loads((out / MANIFEST).read_text())
    for key in ("tool", "kind", "contents"):
        del raw[key]
    (out / MANIFEST).write_text(json.dumps({**raw, "format_version": 2}))
    (out / "notes.txt").write_text("mine")
    refused(
        ["bundle", str(experiment), "--out", str(out)], out, "holds notes.txt", keep=(tmp_path,)
    )
    (out / "notes.txt").unlink()
    code, _, err = run_cli("bundle", str(experiment), "--out", str(out))
    assert code == 0, err
    assert json.loads((out / MANIFEST).read_text())["format_version"] == 3


def test_bundle_never_writes_into_or_over_what_it_is_made_of(sweep, tmp_path):
    experiment, root, _, checkpoint = sweep
    keep = (experiment, root)
    argv = ["bundle", str(experiment), "--out"]
    refused([*argv, str(root)], root, f"is the input {root} (--data)", keep=keep)
    refused(
        [*argv, str(experiment)],
        experiment,
        f"holds the input {experiment / 'summary.json'} (the sweep's summary)",
        keep=keep,
    )
    inside = checkpoint / "bundle"
    refused([*argv, str(inside)], inside, "lies inside the input", "checkpoint", keep=keep)
    link = tmp_path / "link"
    link.symlink_to(experiment / "bundle")
    refused([*argv, str(link)], link, "is a symbolic link", keep=keep + (tmp_path,))


def test_a_bundle_in_object_storage_is_replaced_only_when_it_is_ours(sweep):
    experiment = sweep[0]
    out = f"mock:///{uuid.uuid4().hex}/bundle"
    storage.write_text(storage.join(out, MANIFEST), json.dumps({"name": "webapp"}))
    storage.write_text(storage.join(out, "app.js"), "mine")
    code, _, err = run_cli("bundle", str(experiment), "--out", out)
    assert code == 2 and "not a model bundle written by mmse" in err and err.count("\n") == 1
    assert storage.read_text(storage.join(out, "app.js")) == "mine"
    out = f"mock:///{uuid.uuid4().hex}/bundle"
    assert run_cli("bundle", str(experiment), "--out", out)[0] == 0
    # An earlier bundle's file this one does not write is removed with the old bundle.
    listed = json.loads(storage.read_text(storage.join(out, MANIFEST)))["contents"]
    raw = json.loads(storage.read_text(storage.join(out, MANIFEST)))
    storage.write_text(storage.join(out, "Q2.safetensors"), "old weights")
    raw["contents"] = sorted([*listed, "Q2.safetensors"])
    storage.write_text(storage.join(out, MANIFEST), json.dumps(raw))
    # A manifest edited after it was written is not provably ours: its digest differs.
    code, _, err = run_cli("bundle", str(experiment), "--out", out)
    assert code == 2 and "digest" in err and err.count("\n") == 1, err
    raw["digest"] = manifest_digest(raw)
    storage.write_text(storage.join(out, MANIFEST), json.dumps(raw))
    assert run_cli("bundle", str(experiment), "--out", out)[0] == 0
    assert [e.name for e in storage.list_dir(out)] == listed
    storage.write_text(storage.join(out, "notes.txt"), "mine")
    code, _, err = run_cli("bundle", str(experiment), "--out", out)
    assert code == 2 and "holds notes.txt" in err
    assert storage.read_text(storage.join(out, "notes.txt")) == "mine"


# --- mmse train, mmse dashboard and the demo ---------------------------------------------------


def test_train_never_writes_into_its_data(sweep, tmp_path):
    _, root, _, _ = sweep
    argv = ["train", "--no-ray", "--data", str(root), "--sig", STRONG, "--q", "Q1", "--out"]
    refused([*argv, str(root)], root, f"is the input {root} (--data)", keep=(root,))
    inside = root / STRONG / "run"
    refused([*argv, str(inside)], inside, "lies inside the input", keep=(root,))
    (tmp_path / "file").write_text("x")
    refused([*argv, str(tmp_path / "file")], tmp_path / "file", "not a folder", keep=(tmp_path,))


def test_dashboard_replaces_its_own_page_and_no_one_elses(sweep, tmp_path):
    experiment, _, _, _ = sweep
    out = tmp_path / "site"
    out.mkdir()
    (out / "index.html").write_text("<html>my site</html>")
    argv = ["dashboard", str(experiment), "--out", str(out)]
    refused(argv, out / "index.html", "exists; give --overwrite", keep=(tmp_path,))
    code, _, err = run_cli(*argv, "--overwrite")
    assert code == 0, err
    page = (out / "index.html").read_bytes()
    assert b'<meta name="generator" content="mmse dashboard">' in page
    # Its own page it rebuilds without being asked.
    code, _, err = run_cli(*argv)
    assert code == 0, err
    (out / "index.html").unlink()
    os.mkfifo(out / "index.html")
    refused([*argv, "--overwrite"], out / "index.html", "is a FIFO", keep=(tmp_path,))


def test_the_demo_checks_its_outputs_before_any_work(tmp_path):
    out = tmp_path / "demo"
    (out / "data" / "sub").mkdir(parents=True)
    (out / "data" / MANIFEST_NAME).write_text(json.dumps({"name": "other"}))
    (out / "data" / "sub" / "precious.txt").write_text("precious")
    before = snapshot(tmp_path)
    with pytest.raises(InputError, match="not a data root written by mmse data build"):
        _check_outputs(out, out / "cohort")
    assert snapshot(tmp_path) == before
    shutil.rmtree(out / "data")
    (out / "fresh_predictions.csv").write_text("mine")
    with pytest.raises(InputError, match="fresh_predictions.csv: exists; remove it"):
        _check_outputs(out, out / "cohort")
    assert (out / "fresh_predictions.csv").read_text() == "mine"


# --- the check itself ------------------------------------------------------------------------


def test_how_an_output_relates_to_an_input(tmp_path):
    (tmp_path / "in").mkdir()
    assert outputs._relation(tmp_path / "in", tmp_path / "in" / ".") == "is"
    assert outputs._relation(tmp_path / "in" / "x", tmp_path / "in") == "inside"
    assert outputs._relation(tmp_path, tmp_path / "in") == "holds"
    assert outputs._relation(tmp_path / "in2", tmp_path / "in") is None
    assert outputs._relation("s3://b/exp/bundle", "s3://b/exp/bundle/") == "is"
    assert outputs._relation("s3://b/exp/bundle/x", "s3://b/exp/bundle?region=x") == "inside"
    assert outputs._relation("s3://b/exp", "s3://other/exp") is None
    assert outputs._relation("s3://b/exp", tmp_path) is None
    assert outputs.unlisted(tmp_path, []) == "in/"
    (tmp_path / "in" / "a.npz").write_text("")
    assert outputs.unlisted(tmp_path, ["in/a.npz"]) is None
    assert outputs.unlisted(tmp_path, ["in/b.npz"]) == "in/a.npz"
