"""The dashboard's data and page, from small synthetic experiments (no Ray, no browser).

`tests.fixtures.synthetic_sweep` writes what a sweep leaves in its experiment folder and returns
the ground truth (each trial's ending, curve and rows); the page's embedded document must say
exactly that. The finished sweep here has both the estimate (repeated nested cross-validation,
the verdicts' source) and a held-out split. The s3:// case is in tests/ray/test_dashboard_s3.py
(it needs the S3 server), the real browser in tests/test_dashboard_browser.py, the results'
views in each layout (and an older sweep's) in tests/test_dashboard_results.py."""

from __future__ import annotations

import csv
import json
import math
import re
import threading
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mmse_app.dashboard import (
    ASSETS,
    SCRIPTS,
    Dashboard,
    data_version,
    embed_json,
    render_page,
    serve,
    start_server,
    write_after_sweep,
)
from mmse_app.dashboard_data import load_experiment, page_data
from mmse_app.page_schema import PageData, read_page_data
from mmse_model.core import storage
from mmse_model.core.errors import InputError
from mmse_model.sweeps import rules
from mmse_model.sweeps.plan import plan_trials, signature_groups
from mmse_model.sweeps.rungs import rungs
from tests.fixtures.cli import run_cli
from tests.fixtures.synthetic_sweep import (
    START,
    iso,
    many_signatures,
    write_synthetic_sweep,
)

SIG, WEAK = "m2_tau1_eps0.055_lmin2", "m3_tau2_eps0.1_lmin2"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    sweep = write_synthetic_sweep(
        tmp_path_factory.mktemp("finished") / "sweep_a", samples=4, errored=1, held_out=True
    )
    return sweep, page_data(load_experiment(str(sweep.path)))


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    sweep = write_synthetic_sweep(
        tmp_path_factory.mktemp("running") / "sweep_b",
        samples=4,
        finished=False,
        running=2,
        errored=1,
    )
    return sweep, page_data(load_experiment(str(sweep.path)))


def embedded(page: str) -> PageData:
    """The page data a page embeds, read back by its one reader."""
    return read_page_data("index.html", page)


# --- a finished sweep ----------------------------------------------------------------------


def test_rows_are_trials_csv_with_readable_names(finished):
    sweep, data = finished
    assert data.meta.finished and data.meta.state == "finished"
    assert len(data.rows) == len(sweep.rows) == 2 * 2 * 4  # signatures x tasks x samples
    truth = {(r.trial_id, r.signature): r for r in sweep.rows}
    for row in data.rows:
        expected = truth[(row["trial_id"], row["signature"])]
        assert (
            row["val/rmse"] == expected.validation["rmse"]
            and row["val/loss"] == expected.validation["loss"]
        )
        assert (row["status"], row["epochs_run"], row["best_epoch"]) == (
            expected.status,
            expected.epochs_run,
            expected.best_epoch,
        )
        assert row["name"] == f"{row['task']}-all-{expected.sample}"
        assert data.trials[row["trial"]].trial_id == row["trial_id"]
    # Trial folders are named <task>-<group>-<sample>, and the page calls them so.
    assert sorted(t.folder for t in data.trials) == sorted(t.name for t in data.trials)
    # Statuses in the order every view lists them, with the rules' words and row counts.
    present = {r.status for r in sweep.rows}
    assert [s.status for s in data.statuses] == rules.ordered_statuses(present)
    assert {s.status: (s.label, s.n) for s in data.statuses} == {
        s: (rules.STATUS_WORDS[s], sum(r.status == s for r in sweep.rows)) for s in present
    }
    assert [s.status for s in data.statuses if s.faint] == [rules.STOPPED_BY_ASHA]
    assert data.hp_scale == {
        "arch.dropout": "linear",
        "arch.h1": "linear",
        "arch.use_batch_norm": "category",
        "training.lr": "log",
    }


def test_heatmap_has_one_cell_per_signature_and_task_with_its_best(finished):
    sweep, data = finished
    cells = data.heatmap.cells
    assert sorted((c.signature, c.task) for c in cells) == sorted(
        (s, t) for s in (SIG, WEAK) for t in ("Q1", "Q3")
    )
    for cell in cells:
        mine = [r for r in sweep.rows if r.signature == cell.signature and r.task == cell.task]
        best = min(mine, key=lambda r: r.validation["loss"])
        assert cell.n == len(mine)
        assert cell.best_val_rmse == best.validation["rmse"] and cell.best_trial_id == best.trial_id
        assert cell.winner == (sweep.summary.tasks[cell.task].winner.signature == cell.signature)
        # Only the winner's cell carries a verdict, the task's (from the estimate: Q3's Ridge was
        # made better than its network).
        expected = {"Q1": "better", "Q3": "worse"}[cell.task] if cell.winner else None
        assert cell.verdict == expected
        assert cell.mark == {"better": "✓", "worse": "✗", None: ""}[expected]
    assert sum(c.winner for c in cells) == 2
    # Under each task: the mark and the verdict's words, as the summary says them.
    assert [(h.task, h.verdict, h.text) for h in data.heatmap.heads] == [
        ("Q1", "better", "✓ network better"),
        ("Q3", "worse", "✗ Ridge better"),
    ]
    for head in data.heatmap.heads:
        verdict = sweep.summary.tasks[head.task].verdict
        assert verdict.source.startswith("the declared comparator's RMSE difference over the")
        assert (
            "over the outer folds of the repeated nested cross-validation (view 1) " in head.title
        )
        assert verdict.source in head.title
    assert "Holm-adjusted for the 2 tasks" in data.heatmap.note
    assert "from the repeated nested cross-validation (view 1)" in data.heatmap.note


def test_winner_against_baselines_with_intervals_and_paired_comparisons(finished):
    sweep, data = finished
    for task, entry in sweep.summary.tasks.items():
        cmp = data.comparison.tasks[task]
        assert [m.key for m in cmp.models] == [
            "network",
            "train_mean",
            "ridge",
            "hist_gradient_boosting",
        ]
        assert [m.label for m in cmp.models] == [
            "network (winner)",
            "training mean",
            "Ridge",
            "HistGradientBoosting",
        ]
        assert cmp.models[0].test == entry.test and cmp.models[2].test == entry.baselines[1].test
        assert cmp.verdict == entry.verdict and cmp.verdict.baseline == "ridge"
        ridge = cmp.models[2]
        # The verdict is the estimate's: the held-out split's comparisons are its alone.
        assert ridge.primary and ridge.tag == "primary, this split only"
        assert ridge.comparison == entry.comparisons[0] and ridge.comparison.primary
        assert [m.tag for m in cmp.models] == [
            "",
            "secondary, this split only",
            "primary, this split only",
            "secondary, this split only",
        ]
        assert cmp.winner.signature == entry.winner.signature
        assert cmp.winner.name == next(
            t.name for t in data.trials if t.trial_id == entry.winner.trial_id
        )
        # The training mean predicts a constant: its calibration slope is undefined.
        assert cmp.models[1].absent == {
            "pearson_r": "undefined",
            "calibration_slope": "undefined",
            "calibration_intercept": "undefined",
        }
        assert cmp.models[0].absent == {}
    assert data.comparison.tasks["Q1"].verdict.result == "better"
    assert data.comparison.tasks["Q3"].verdict.result == "worse"
    assert data.comparison.any_interval and data.comparison.held_out
    assert data.comparison.note.startswith(
        "One held-out split's numbers, apart from the estimate (view 1)"
    )
    # The comparator's sentence is the estimate's, said there; an older summary's nested
    # estimate has no place here.
    assert data.comparison.comparator_note == "" and data.comparison.estimate_note == ""
    assert data.estimate.comparator_note == data.comparator.note
    assert data.estimate.tasks.keys() == sweep.summary.tasks.keys()


def test_curves_stop_at_asha_rungs_and_rung_counts(finished):
    sweep, data = finished
    assert data.asha.rungs == sweep.rungs == rungs(8, 2, 2) == (2, 4)
    assert data.asha.source == "the sweep config (summary.json's provenance)"
    truth = {t.trial_id: t for t in sweep.trials}
    assert any(t.status == "asha" for t in sweep.trials), (
        "the synthetic sweep stops some trial at a rung"
    )
    for trial in data.trials:
        expected = truth[trial.trial_id]
        assert trial.status == expected.status
        assert trial.last_epoch == expected.last_epoch
        assert len(trial.loss) == expected.last_epoch and trial.epochs is None  # epochs 1..n
        assert list(trial.loss) == [
            float(f"{v:.4g}")
            for v in (
                [
                    min(expected.losses[s][e] for s in expected.signatures)
                    for e in range(expected.last_epoch)
                ]
            )
        ]
        if expected.status == "asha":
            assert trial.stop_epoch == expected.last_epoch and trial.stop_epoch in data.asha.rungs
        else:
            assert trial.stop_epoch is None
        assert set(trial.sig_rmse) == {SIG, WEAK}
    for task in ("Q1", "Q3"):
        mine = [t for t in sweep.trials if t.task == task]
        reached = data.asha.reached[task]
        assert reached.n_trials == len(mine)
        assert reached.counts == tuple(sum(t.last_epoch >= r for t in mine) for r in (2, 4))


def test_calibration_and_provenance(finished):
    sweep, data = finished
    with open(sweep.path / "test_predictions.csv") as handle:
        predictions = list(csv.DictReader(handle))
    for task, entry in sweep.summary.tasks.items():
        cal = data.calibration[task]
        mine = [p for p in predictions if p["task"] == task]
        assert cal.n == len(mine) == entry.test.n
        assert list(cal.predicted) == [float(p["predicted"]) for p in mine]
        assert list(cal.true) == [float(p["true"]) for p in mine]
        assert (cal.slope, cal.intercept) == (
            entry.test.calibration_slope,
            entry.test.calibration_intercept,
        )
        assert cal.signature == entry.winner.signature
        assert cal.line_label == "calibration line: true = 0.20 + 0.90 × predicted"
    items = {i.label: i.text for i in data.provenance.items}
    assert items["code version (git commit)"] == sweep.summary.provenance.git_commit
    assert (items["Ray"], items["torch"], items["Python"]) == ("2.60.0", "2.13.0+cpu", "3.11.7")
    assert items["started"] == iso(START)
    assert (
        items["ASHA rungs"] == "2, 4 (max_t 8; from the sweep config (summary.json's provenance))"
    )
    assert data.provenance.config["asha"]["grace_period"] == 2


# --- a sweep still running ------------------------------------------------------------------


def test_running_sweep_from_result_lines(running):
    sweep, data = running
    assert not (sweep.path / "trials.csv").exists()
    assert data.meta.finished is False and data.meta.has_trials_csv is False
    assert data.meta.state == "running"
    truth = {t.trial_id: t for t in sweep.trials}
    assert len(data.rows) == sum(len(t.signatures) for t in sweep.trials)
    for row in data.rows:
        trial = truth[row["trial_id"]]
        losses = trial.losses[row["signature"]]
        best = min(range(len(losses)), key=losses.__getitem__)
        assert row["status"] == trial.status  # running, error, asha, early_stopping, completed
        assert row["best_epoch"] == best + 1 and row["epochs_run"] == trial.last_epoch
        assert math.isclose(row["val/loss"], losses[best]) and math.isclose(
            row["val/rmse"], trial.rmses[row["signature"]][best]
        )
        assert row["sample"] == trial.sample and row["name"] == trial.folder
        assert row["hp/training.lr"] == trial.hp["training.lr"]
        assert row["checkpoint_uri"] == ""
    assert [t.status for t in data.trials][-2:] == ["running", "running"]
    assert {t.status for t in data.trials} >= {"running", "error", "completed"}
    # No test numbers yet: no estimate, no comparison, no calibration, no verdict; winners so
    # far.
    assert data.comparison.tasks == {} and data.comparator is None
    assert not data.estimate.recorded and data.estimate.tasks == {}
    assert data.estimate.note == (
        "The estimate (repeated nested cross-validation over every subject) appears when the "
        "sweep has finished."
    )
    assert not data.intervals.recorded and data.intervals.tasks == {}
    assert data.intervals.note == (
        "The prediction intervals' coverage over the outer folds appears when the sweep has "
        "finished."
    )
    assert all(not c.predicted for c in data.calibration.values())
    assert all(c.verdict is None for c in data.heatmap.cells)
    assert [h.text for h in data.heatmap.heads] == ["test after the sweep"] * 2
    assert all(w.provisional for w in data.winners.values())
    # ASHA's rungs and the epoch limit come from the sweep's record.
    assert data.asha.rungs == (2, 4)
    assert data.asha.source == "the sweep record (sweep_record.json)"
    items = {i.label: i.text for i in data.provenance.items}
    assert items["data root"] == "/data/synthetic" and items["started"] == iso(START)
    assert items["ended"] == "still running"
    assert data.provenance.config == sweep.record.sweep_config


def test_a_running_sweeps_cohort_is_its_data_roots(tmp_path):
    """While a sweep runs (no summary yet), SYNTHETIC and the excluded recordings are what its
    data root's dataset.json and build report say, where this machine can read them."""
    from mmse_model.core.identity import BuildParams
    from mmse_model.data.manifest import Manifest

    sweep = write_synthetic_sweep(tmp_path / "s", finished=False)
    assert page_data(load_experiment(str(sweep.path))).banner is None  # /data/synthetic: absent
    root = tmp_path / "data"
    root.mkdir()
    manifest = Manifest(BuildParams("trajectory", 90.0, 1), "test", (), {}, None, synthetic=True)
    (root / "dataset.json").write_text(json.dumps(manifest.to_dict()))
    (root / "build_report.csv").write_text("subject_id,task,reason\ns1,Q1,empty\ns2,*,no labels\n")
    record = sweep.record.model_copy(update={"data_root": str(root)})
    (sweep.path / "sweep_record.json").write_text(record.to_json())
    data = page_data(load_experiment(str(sweep.path)))
    assert "(the data root's dataset.json says so)" in data.banner
    assert data.data.note.startswith(
        "Recordings the dataset build excluded: 2 (from the data root's build report)."
    )


def test_a_half_written_result_line_is_skipped(tmp_path):
    sweep = write_synthetic_sweep(tmp_path / "s", finished=False, running=1)
    before = page_data(load_experiment(str(sweep.path)))
    result = sweep.path / sweep.trials[-1].folder / "result.json"
    with open(result, "a") as handle:
        handle.write('{"epoch": 9.0, "val/loss": 0.')  # Tune is writing this line now
    assert page_data(load_experiment(str(sweep.path))) == before


def test_one_signature_per_trial(tmp_path):
    sweep = write_synthetic_sweep(
        tmp_path / "s", signatures=many_signatures(3), signatures_per_trial=1, samples=2
    )
    data = page_data(load_experiment(str(sweep.path)))
    assert len(data.heatmap.cells) == 3 * 2 and len(data.trials) == 3 * 2 * 2
    for trial in data.trials:
        assert trial.group == trial.signatures[0] and trial.sig_rmse is None
        assert trial.name == f"{trial.task}-{trial.group}-{trial.sample}" == trial.folder


def test_a_trial_config_this_version_does_not_make_is_left_out_while_running(tmp_path):
    """A running sweep started by an earlier version (its trial configs without `trial`)
    is not read while it runs: its trials are left out, not guessed at."""
    sweep = write_synthetic_sweep(tmp_path / "s", finished=False)
    folder = sweep.path / sweep.trials[0].folder
    lines = [json.loads(line) for line in (folder / "result.json").read_text().splitlines()]
    for line in lines:
        line["config"] = {"task": "Q1", "group": {"label": "all", "signatures": [SIG]}}
    (folder / "result.json").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    data = page_data(load_experiment(str(sweep.path)))
    assert len(data.trials) == len(sweep.trials) - 1
    assert sweep.trials[0].trial_id not in {t.trial_id for t in data.trials}


# --- the page --------------------------------------------------------------------------------


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.scripts_with_src = 0
        self.stylesheets = 0

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("src", "href", "srcset", "action", "data", "poster") and value is not None:
                self.refs.append((tag, key, value))
        if tag == "script" and dict(attrs).get("src"):
            self.scripts_with_src += 1
        if tag == "link":
            self.stylesheets += 1


def test_page_is_self_contained_and_embeds_the_data(finished, tmp_path):
    sweep, data = finished
    code, out, err = run_cli("dashboard", str(sweep.path), "--out", str(tmp_path / "page"))
    assert (code, err) == (0, "") and out == f"dashboard: {tmp_path / 'page' / 'index.html'}\n"
    page = (tmp_path / "page" / "index.html").read_text()
    refs = _Refs()
    refs.feed(page)
    assert refs.scripts_with_src == 0 and refs.stylesheets == 0
    external = [r for r in refs.refs if re.match(r"\s*(https?:)?//", r[2], re.IGNORECASE)]
    assert external == [] and all(r[2].startswith("#") for r in refs.refs)
    assert "window.Plotly = Plotly" in page  # plotly.js inlined from the installed package
    document = embedded(page)
    assert document.version == data_version(data) and len(document.version) == 16
    assert document.builder is not None and document.refresh_s == 5.0
    assert document.model_copy(update={"builder": None, "version": ""}) == data


def test_page_data_round_trips_and_is_versioned(finished):
    sweep, data = finished
    assert (data.format, data.format_version) == ("mmse-dashboard-page", 3)
    assert data.results_not_recorded == ()
    page = render_page(data, refresh_s=2.5, built="2026-11-29T12:00:00+00:00")
    back = read_page_data("index.html", page)
    assert back == data.model_copy(
        update={"version": data_version(data), "refresh_s": 2.5, "builder": back.builder}
    )
    assert back.builder.built == "2026-11-29T12:00:00+00:00"
    # Its JSON alone reads back too, and the version leaves out who built the page and when.
    assert read_page_data("page.json", back.to_json()) == back
    assert data_version(back) == data_version(data) == back.version
    # Equal folders give equal data and version; another page data format is refused.
    assert page_data(load_experiment(str(sweep.path))) == data
    with pytest.raises(InputError, match="not a dashboard's page data"):
        read_page_data("x.json", json.dumps({"format": "mmse-sweep-summary", "format_version": 1}))
    with pytest.raises(InputError, match="newer than this code reads"):
        read_page_data("x.json", json.dumps({"format": data.format, "format_version": 4}))
    # A page of a version before the estimate (1) or the intervals' coverage (2) is refused,
    # with the way to a new one.
    for old in (1, 2):
        with pytest.raises(InputError, match=f"version {old} is no longer read .*mmse dashboard"):
            read_page_data("x.json", json.dumps({"format": data.format, "format_version": old}))


def test_embedded_json_cannot_end_its_script_block(finished):
    _, data = finished
    nasty = "x</script><script>alert(1)</script><!-- </SCRIPT"
    text = embed_json({"meta": {"name": nasty}, "rows": [{"hp/note": nasty}]})
    assert "<" not in text and json.loads(text) == {
        "meta": {"name": nasty},
        "rows": [{"hp/note": nasty}],
    }
    rows = ({**data.rows[0], "hp/note": nasty},) + data.rows[1:]
    meta = data.meta.model_copy(update={"name": nasty})
    page = render_page(data.model_copy(update={"meta": meta, "rows": rows}))
    assert embedded(page).rows[0]["hp/note"] == nasty and embedded(page).meta.name == nasty
    assert page.lower().count("</script") == page.lower().count("<script")  # one end per script
    assert "<title>mmse sweep x&lt;/script&gt;" in page


def test_the_script_is_every_asset_in_order():
    """The page's script is the assets' JS files, each once, in `SCRIPTS`' order."""
    assert sorted(SCRIPTS) == sorted(p.name for p in ASSETS.glob("*.js"))
    assert SCRIPTS[0] == "data.js" and SCRIPTS[-1] == "main.js"


# Words and keys that are rules (the results' labels, verdicts, statuses, groups, comparator
# sentences): the page data says them, so no script may. Case-sensitive, as written.
RULE_WORDS = (
    "Ridge",
    "ridge",
    "HistGradientBoosting",
    "hist_gradient_boosting",
    "HGB",
    "train_mean",
    "training mean",
    "train mean",
    "no difference shown",
    "network better",
    "no paired comparison",
    "better than",
    "level with",
    "predates",
    "not recorded",
    "declared no comparator",
    "unadjusted",
    "Holm",
    "healthy",
    "dementia",
    '"mci"',
    "SYNTHETIC",
    *rules.STATUS_WORDS.values(),
    *(f'"{s}"' for s in rules.STATUS_WORDS),
    *(f"'{s}'" for s in rules.STATUS_WORDS),
    *(f'"{v}"' for v in (rules.BETTER, rules.LEVEL, rules.WORSE)),
    "✓",
    "≈",
    "✗",
    # The prediction intervals: their method, guarantee, cells and what falls short.
    "Mondrian",
    "CV+",
    "Wilson",
    "short of",
    "true score ",
    "nominal ",
)


@pytest.mark.parametrize("script", SCRIPTS)
def test_no_script_holds_a_rule(script):
    text = (ASSETS / script).read_text(encoding="utf-8")
    found = [word for word in RULE_WORDS if word in text]
    assert found == [], f"{script} states what the page data should: {found}"


def test_default_out_is_the_experiment_folder(finished):
    sweep, _ = finished
    code, out, _ = run_cli("dashboard", str(sweep.path))
    assert code == 0 and out.strip() == f"dashboard: {sweep.path / 'dashboard' / 'index.html'}"
    # The page's own folder is not taken for a trial folder afterwards.
    assert len(page_data(load_experiment(str(sweep.path))).trials) == len(sweep.trials)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "{p}: no such folder"),
        (lambda p: p.mkdir(), "{p}: not a sweep (no trials.csv and no trial folders)"),
        (
            lambda p: (p.mkdir(), (p / "junk").mkdir(), (p / "junk" / "notes.txt").write_text("x")),
            "{p}: not a sweep (no trials.csv and no trial folders)",
        ),
    ],
)
def test_not_a_sweep_is_a_one_line_error(tmp_path, make, message):
    folder = tmp_path / "exp"
    make(folder)
    code, out, err = run_cli("dashboard", str(folder), "--out", str(tmp_path / "page"))
    assert (code, out) == (2, "")
    assert err == f"mmse: error: {message.format(p=folder)}\n"
    assert not (tmp_path / "page").exists()


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("summary.json", "{not json", "summary.json: not JSON"),
        (
            "summary.json",
            '{"format": "mmse-sweep-summary", "format_version": 9}',
            "summary.json: mmse-sweep-summary format version 9 is newer than this code reads",
        ),
        ("test_predictions.csv", "task,true,predicted\nQ1,x,1\n", "test_predictions.csv: row 2"),
    ],
)
def test_a_result_file_its_reader_refuses_is_a_one_line_error(tmp_path, name, text, message):
    sweep = write_synthetic_sweep(tmp_path / "s")
    (sweep.path / name).write_text(text)
    code, _, err = run_cli("dashboard", str(sweep.path))
    assert code == 2 and err.startswith(f"mmse: error: {sweep.path}/{message}"), err
    assert err.count("\n") == 1


def test_bad_serve_options_are_one_line_errors(finished):
    sweep, _ = finished
    assert run_cli("dashboard", str(sweep.path), "--port", "70000")[::2] == (
        2,
        "mmse: error: --port 70000: expected 0..65535\n",
    )
    assert run_cli("dashboard", str(sweep.path), "--interval", "0")[::2] == (
        2,
        "mmse: error: --interval 0.0: expected a positive number of seconds\n",
    )


def test_the_page_after_a_sweep(finished, tmp_path, capsys):
    sweep, _ = finished
    lines: list[str] = []
    page = write_after_sweep(str(sweep.path), lines.append)
    assert page == sweep.path / "dashboard" / "index.html" and lines == [f"dashboard: {page}"]
    # A page that cannot be built warns (the sweep's results are written): no exception.
    assert write_after_sweep(str(tmp_path / "missing"), lines.append) is None
    assert capsys.readouterr().err == (
        f"mmse: warning: no dashboard ({tmp_path / 'missing'}: no such folder); "
        f"build it with: mmse dashboard {tmp_path / 'missing'}\n"
    )


# --- --serve ----------------------------------------------------------------------------------


def test_serve_rebuilds_while_the_sweep_runs(tmp_path):
    sweep = write_synthetic_sweep(tmp_path / "live", finished=False, running=1)
    board = Dashboard(str(sweep.path), tmp_path / "page")
    assert board.refresh(write_version=True) is True and board.finished is False
    first = json.loads((tmp_path / "page" / "version.json").read_text())
    assert first == {"version": board.version, "finished": False}
    assert embedded(board.page.read_text()).version == board.version
    assert board.refresh(write_version=True) is False  # nothing new: the page is not rewritten

    # The running trial reports another epoch: the page changes, and says so in version.json.
    trial = sweep.trials[-1]
    result = sweep.path / trial.folder / "result.json"
    last = json.loads(result.read_text().splitlines()[-1])
    result.write_text(
        result.read_text()
        + json.dumps({**last, "epoch": last["epoch"] + 1, "val/loss": last["val/loss"] / 2})
        + "\n"
    )
    assert board.refresh(write_version=True) is True
    second = json.loads((tmp_path / "page" / "version.json").read_text())["version"]
    assert second != first["version"]
    data = embedded(board.page.read_text())
    assert (
        next(t for t in data.trials if t.trial_id == trial.trial_id).last_epoch
        == trial.last_epoch + 1
    )

    server = start_server(tmp_path / "page", 0)
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/version.json", timeout=5) as response:
            assert json.loads(response.read())["version"] == second
            assert response.headers["Cache-Control"] == "no-store"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            assert embedded(response.read().decode()).version == second
        # Nothing else in the folder, and nothing for a page that reached us under another name.
        (tmp_path / "page" / "other.txt").write_text("private")
        for path, headers, status in (
            ("/other.txt", {}, 404),
            ("/", {"Host": f"evil.example:{port}"}, 403),
        ):
            request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=5)
            assert refused.value.code == status
    finally:
        server.shutdown()
        server.server_close()


def test_serve_starts_and_stops(finished, tmp_path, capsys):
    sweep, _ = finished
    stop = threading.Event()
    stop.set()  # stop at the first tick: no waiting on the clock
    assert serve(str(sweep.path), tmp_path / "page", port=0, interval_s=0.01, stop=stop) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        f"dashboard: {tmp_path / 'page' / 'index.html'}\nserving http://127.0.0.1:"
    )
    assert "finished sweep" in out and (tmp_path / "page" / "version.json").exists()


# --- readable trial names ----------------------------------------------------------------------


class _Trial:
    def __init__(self, point):
        self.config = {"trial": point.to_config()}


def test_trial_names_are_task_group_sample():
    from ray_jobs.sweep import trial_name

    groups = signature_groups([SIG, WEAK], 1)
    points = plan_trials(["Q1", "Q3"], groups, [{}, {}])
    assert [trial_name(_Trial(p)) for p in points] == [
        f"{task}-{sig}-{sample}"
        for sample in (0, 1)
        for task in ("Q1", "Q3")
        for sig in (SIG, WEAK)
    ]
    all_in_one = plan_trials(["Q2"], signature_groups([SIG, WEAK], 0), [{}])
    assert trial_name(_Trial(all_in_one[0])) == "Q2-all-0"


def test_the_synthetic_sweep_numbers_trials_as_tune_does(finished):
    sweep, _ = finished
    # counter = sample * grid + grid index; trial ids end with the counter (Tune's %05d).
    for trial in sweep.trials:
        counter = int(trial.trial_id.split("_")[1])
        assert (
            counter // 2 == trial.sample
            and Path(trial.folder).name == f"{trial.task}-all-{trial.sample}"
        )


def test_keys_in_a_uri_never_reach_the_page():
    # The page shows its experiment's address as `storage.display` writes it.
    display = storage.display
    assert display(
        "s3://b/p/x?endpoint_override=http://h:1&access_key=AK&secret_key=SK&scheme=http"
    ) == ("s3://b/p/x?endpoint_override=http://h:1&scheme=http")
    assert display("s3://b/p/x?secret_key=SK") == "s3://b/p/x"
    assert display("s3://AK:SK@b/p/x?session_token=T&region=eu") == "s3://b/p/x?region=eu"


@pytest.mark.parametrize("uri", ["s3://AK:SK@b/p/x", "s3://b/p/x?secret_key=SK"])
def test_an_experiment_given_with_credentials_is_refused_before_anything_is_read(uri):
    with pytest.raises(InputError) as err:
        load_experiment(uri)
    message = str(err.value)
    assert message.startswith("EXPERIMENT: the URI holds credentials") and "SK" not in message


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((100, 5, 2.5, 1), [5, 13, 32, 79]),  # ASHA acts at the first epoch >= 12.5, 31.25, 78.125
        ((200, 25, 2.2, 1), [25, 55, 121]),  # 25 * 2.2 is 55.00000000000001 in floating point
        ((8, 2, 2, 2), [2, 4]),
    ],
)
def test_rungs_are_the_epochs_asha_acts_at(args, expected):
    assert list(rungs(*args)) == expected
