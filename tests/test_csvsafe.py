"""Spreadsheet safety (issue 27): no CSV the project writes holds a text cell a spreadsheet
would evaluate, numbers stay numbers, and every reader of the project's CSVs gets back the
exact ids and text it was given (core/csvsafe.py's rule is a bijection)."""

from __future__ import annotations

import csv
import io
import itertools
import json
import random
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mmse_app.cli import main
from mmse_model.core.csvsafe import TRIGGERS, cell, csv_text, escape, read_dicts, unescape
from mmse_model.sweeps.predictions import predictions_csv_text, read_predictions
from mmse_model.sweeps.rules import TrialRow, read_trials_csv, trials_csv_text
from tests.fixtures.toy_data import write_npz
from tests.fixtures.trained_sweep import STRONG

REPO = Path(__file__).resolve().parents[1]
FORMULAS = ['=HYPERLINK("http://x","y")', "+SUM(1,2)", "@x", "-x", "=1+1", "\tx", "\rx"]
TRICKY = [*FORMULAS, "'=x", "''=x", "'abc", "'", "", "-0.5", "+3", "1e-05", "-inf", "nan", "S0001"]


def risky(text: str) -> bool:
    """A spreadsheet would evaluate it: a leading trigger, and not a plain number."""
    number = re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", text)
    return text[:1] in TRIGGERS and text != "" and number is None


def strings():
    """Every string up to 4 characters over an alphabet of the rule's corner cases, and
    random longer ones."""
    alphabet = ["'", "=", "+", "-", "@", "\t", "\r", "1", ".", "e", "x", " "]
    for n in range(5):
        yield from ("".join(p) for p in itertools.product(alphabet, repeat=n))
    rng = random.Random(27)
    for _ in range(2000):
        yield "".join(rng.choice(alphabet + ["a", "é", ","]) for _ in range(rng.randint(5, 12)))


def test_escape_is_a_bijection_and_leaves_nothing_a_spreadsheet_evaluates():
    written = {}
    for text in strings():
        out = escape(text)
        assert not risky(out), repr(text)
        assert unescape(out) == text, repr(text)
        assert written.setdefault(out, text) == text  # injective
        assert escape(unescape(out)) == out  # and unescape inverts it on its image
    assert escape("=x") == "'=x" and escape("'=x") == "''=x" and escape("'abc") == "'abc"
    assert unescape("'=x") == "=x" and unescape("''=x") == "'=x" and unescape("'abc") == "'abc"
    # numbers stay numbers; text that only looks numeric to Python does not
    for number in ("-0.5", "+3", "1e-05", "-1E+3", ".5", "-7."):
        assert escape(number) == number
    assert escape("-inf") == "'-inf" and escape("-nan") == "'-nan"
    assert cell(-0.5) == "-0.5" and cell(3) == "3" and cell(None) == ""
    assert cell(float("-inf")) == "'-inf" and cell(True) == "True"


def test_csv_text_and_read_dicts_round_trip_every_cell():
    rows = [[t, i, -0.25 * i] for i, t in enumerate(TRICKY)]
    text = csv_text(["subject_id", "n", "value"], rows)
    for line in rows_of(text):
        assert not any(risky(c) for c in line), line
    back = list(read_dicts(text))
    assert [r["subject_id"] for r in back] == TRICKY
    assert [r["value"] for r in back] == [str(-0.25 * i) for i in range(len(TRICKY))]


def test_trials_and_test_predictions_round_trip_formula_text():
    rows = [
        TrialRow(
            trial_id=f"=t{i}",
            signature=STRONG,
            task="Q1",
            group="all",
            sample=i,
            hyperparameters={"arch.activation": value, "training.lr": -0.5},
            epochs_run=3,
            best_epoch=2,
            status="completed",
            validation={"loss": -1.5},
            checkpoint_uri="@checkpoint",
        )
        for i, value in enumerate(FORMULAS)
    ]
    text = trials_csv_text(rows)
    assert not any(risky(c) for line in rows_of(text) for c in line)
    back = read_trials_csv(text)
    assert [r["trial_id"] for r in back] == [f"=t{i}" for i in range(len(FORMULAS))]
    assert [r["hp/arch.activation"] for r in back] == FORMULAS
    assert back[0]["hp/training.lr"] == -0.5 and back[0]["val/loss"] == -1.5
    assert back[0]["checkpoint_uri"] == "@checkpoint"

    predictions = [
        {"task": "Q1", "signature": STRONG, "subject_id": s, "true": 1.0, "predicted": -0.0}
        for s in TRICKY
    ]
    text = predictions_csv_text(predictions)
    assert not any(risky(c) for line in rows_of(text) for c in line)
    assert [p.subject_id for p in read_predictions("p.csv", text)] == TRICKY


def _ids(n):
    """n distinct ids: formulas of every trigger, a genuine leading quote, numbers."""
    kinds = [
        lambda i: f'=HYPERLINK("http://x","{i}")',
        lambda i: f"+SUM({i})",
        lambda i: f"@x{i}",
        lambda i: f"-x{i}",
        lambda i: f"\tx{i}",
        lambda i: f"'=x{i}",
        lambda i: f"-0.{i}5",
        lambda i: f"{i:03d}",
    ]
    return [kinds[i % len(kinds)](i) for i in range(n)]


def rows_of(text):
    return list(csv.reader(io.StringIO(text)))


def read(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return handle.read()


def test_predictions_escape_formula_ids_and_a_features_csv_reads_them_back(bundled_sweep, tmp_path):
    """`mmse predict --bundle` and `--model`: ids that would be formulas come out escaped;
    a features CSV written by the same rule reads them back to the same subjects."""
    _, root, bundle = bundled_sweep
    data = tmp_path / "data"
    ids = None
    for task in ("Q1", "Q2"):
        arrays = dict(np.load(root / STRONG / f"{task}.npz", allow_pickle=False))
        ids = np.array(_ids(len(arrays["subject_id"])), dtype=np.str_)
        arrays["subject_id"] = ids
        write_npz(data / STRONG / f"{task}.npz", **arrays)
    out = tmp_path / "p.csv"
    args = ["predict", "--bundle", str(bundle), "--features", str(data), "--out", str(out)]
    assert main(args) == 0
    lines = rows_of(read(out))
    assert not any(risky(c) for line in lines for c in line)
    assert [line[0] for line in lines[1:]] == [escape(s) for s in ids.tolist()]
    assert lines[1][0] == '\'=HYPERLINK("http://x","0")' and lines[3][0] == "'@x2"
    assert lines[6][0] == "''=x5"  # a genuine leading quote gets one more
    assert lines[7][0] == "-0.65"  # a number stays as it is
    assert [r["subject_id"] for r in read_dicts(read(out))] == ids.tolist()

    # A features CSV the project's rule wrote: `mmse predict --model` reads the ids back and
    # writes them escaped again, the same subjects.
    arrays = np.load(data / STRONG / "Q1.npz", allow_pickle=False)
    features = tmp_path / "features.csv"
    names = [str(n) for n in arrays["feature_names"]]
    rows = ([s, *x] for s, x in zip(ids.tolist(), arrays["X"].tolist()))
    features.write_bytes(csv_text(["subject_id", *names], rows).encode("utf-8"))
    single = tmp_path / "single.csv"
    checkpoint = json.loads((bundle / "manifest.json").read_text())["tasks"]["Q1"]
    argv = ["predict", "--model", checkpoint["checkpoint_uri"], "--signature", STRONG]
    argv += ["--task", "Q1", "--input", str(features), "--out", str(single)]
    assert main(argv) == 0
    back = list(read_dicts(read(single)))
    assert [r["subject_id"] for r in back] == ids.tolist()
    by_id = {r["subject_id"]: r for r in read_dicts(read(out))}
    for row in back:
        assert float(row["Q1_predicted"]) == pytest.approx(float(by_id[row["subject_id"]]["Q1"]))


def test_build_report_and_labels_keep_formula_ids_safe(tmp_path, capsys):
    """A subject folder named like a formula, without labels, is listed escaped in
    build_report.csv; a labels file escaped by the same rule matches its folder."""
    from mmse_model.synth import cohort as synth
    from tests.test_build import build_argv

    cohort = tmp_path / "cohort"
    synth.synthesize(cohort, n_subjects=4, seed=2, duration_s=(3.0, 4.0))
    recordings = cohort / "recordings"
    first, second = sorted(p.name for p in recordings.iterdir())[:2]
    (recordings / first).rename(recordings / "=HYPERLINK(x)")  # labelled, escaped below
    (recordings / second).rename(recordings / "+SUM(1)")  # not labelled: skipped, reported
    labels = (cohort / "labels.csv").read_text().replace(f"{first},", "'=HYPERLINK(x),", 1)
    (cohort / "labels.csv").write_text(labels.replace(f"{second},", "S9999,", 1))
    out = tmp_path / "data"
    assert main(build_argv(cohort, out)) == 0
    capsys.readouterr()
    report = read(out / "build_report.csv")
    lines = rows_of(report)
    assert not any(risky(c) for line in lines for c in line)
    assert ["'+SUM(1)", "all"] in [line[:2] for line in lines]
    assert ("+SUM(1)", "all") in {(r["subject_id"], r["task"]) for r in read_dicts(report)}
    q1 = np.load(out / STRONG / "Q1.npz", allow_pickle=False)
    assert "=HYPERLINK(x)" in q1["subject_id"].tolist()


@pytest.mark.skipif(shutil.which("node") is None, reason="no node to run the page's script")
def test_the_dashboards_csv_export_follows_the_same_rule():
    script = (REPO / "mmse_app" / "dashboard_assets" / "table.js").read_text()
    function = re.search(r"function spreadsheetSafe\(s\) \{.*?\n\}", script, re.DOTALL).group(0)
    cases = [t for t in strings() if len(t) <= 3] + TRICKY
    program = f"{function}\nconsole.log(JSON.stringify({json.dumps(cases)}.map(spreadsheetSafe)));"
    done = subprocess.run(["node", "-e", program], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == [escape(t) for t in cases]
