"""The dashboard's data and page, from small synthetic experiments (no Ray, no browser).

`tests.fixtures.synthetic_sweep` writes what a sweep leaves in its experiment folder and returns the
ground truth (each trial's ending, curve and rows); the page's embedded document must say
exactly that. The s3:// case is in tests/ray/test_dashboard_s3.py (it needs the S3 server),
the real browser in tests/test_dashboard_browser.py.
"""

from __future__ import annotations

import csv
import json
import math
import re
import threading
import urllib.error
import urllib.request
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mmse_app.dashboard import (
    Dashboard,
    embed_json,
    render_page,
    serve,
    start_server,
    write_after_sweep,
)
from mmse_app.dashboard_data import load_experiment, page_data
from mmse_model.core.errors import InputError
from mmse_model.sweeps.rungs import rungs
from tests.fixtures.cli import run_cli
from tests.fixtures.synthetic_sweep import START, many_signatures, write_synthetic_sweep

SIG, WEAK = "m2_tau1_eps0.055_lmin2", "m3_tau2_eps0.1_lmin2"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    sweep = write_synthetic_sweep(
        tmp_path_factory.mktemp("finished") / "sweep_a", samples=4, errored=1
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


def embedded(page: str) -> dict:
    """The JSON document a page embeds, read back as the browser reads it."""
    match = re.search(
        r'<script type="application/json" id="dashboard-data">(.*?)</script>', page, re.S
    )
    assert match, "no data block"
    return json.loads(match.group(1))


# --- a finished sweep ----------------------------------------------------------------------


def test_rows_are_trials_csv_with_readable_names(finished):
    sweep, data = finished
    assert data["meta"]["finished"] and data["meta"]["state"] == "finished"
    assert len(data["rows"]) == len(sweep.rows) == 2 * 2 * 4  # signatures x tasks x samples
    truth = {(r.trial_id, r.signature): r for r in sweep.rows}
    for row in data["rows"]:
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
        assert data["trials"][row["trial"]]["trial_id"] == row["trial_id"]
    # Trial folders are named <task>-<group>-<sample>, and the page calls them so.
    assert sorted(t["folder"] for t in data["trials"]) == sorted(t["name"] for t in data["trials"])
    assert data["meta"]["status_counts"] == {
        s: sum(r.status == s for r in sweep.rows) for s in sorted({r.status for r in sweep.rows})
    }
    assert data["hp_scale"] == {
        "arch.dropout": "linear",
        "arch.h1": "linear",
        "arch.use_batch_norm": "category",
        "training.lr": "log",
    }


def test_heatmap_has_one_cell_per_signature_and_task_with_its_best(finished):
    sweep, data = finished
    cells = data["heatmap"]["cells"]
    assert sorted((c["signature"], c["task"]) for c in cells) == sorted(
        (s, t) for s in (SIG, WEAK) for t in ("Q1", "Q3")
    )
    for cell in cells:
        mine = [
            r for r in sweep.rows if r.signature == cell["signature"] and r.task == cell["task"]
        ]
        best = min(mine, key=lambda r: r.validation["loss"])
        assert cell["n"] == len(mine)
        assert (
            cell["best_val_rmse"] == best.validation["rmse"]
            and cell["best_trial_id"] == best.trial_id
        )
        assert cell["winner"] == (
            sweep.summary["tasks"][cell["task"]]["winner"]["signature"] == cell["signature"]
        )
        # Only the winner's cell carries a verdict (no other signature was tested against a
        # baseline); Q3's Ridge was made better than its winner.
        assert cell["verdict"] == (
            {"Q1": "better", "Q3": "worse"}[cell["task"]] if cell["winner"] else None
        )
    assert sum(c["winner"] for c in cells) == 2


def test_winner_against_baselines_with_intervals_and_paired_comparisons(finished):
    sweep, data = finished
    for task, entry in sweep.summary["tasks"].items():
        cmp = data["comparison"][task]
        assert [m["key"] for m in cmp["models"]] == [
            "winner",
            "train_mean",
            "ridge",
            "hist_gradient_boosting",
        ]
        assert cmp["models"][0]["metrics"]["rmse"] == entry["test"]["rmse"]
        assert cmp["models"][0]["metrics"]["rmse_ci"] == entry["test"]["rmse_ci"]
        assert cmp["models"][2]["metrics"]["rmse_ci"] == entry["baselines"]["ridge"]["rmse_ci"]
        # No comparator declared: Ridge's comparison, said to be undeclared.
        assert (
            cmp["verdict_detail"]["baseline"] == "ridge"
            and "declared no comparator" in cmp["verdict_detail"]["source"]
        )
        paired = entry["comparisons"]["ridge"]
        assert cmp["verdict"] == (
            "better" if paired["better"] else "worse" if paired["worse"] else "level"
        )
        assert (
            cmp["comparisons"]["ridge"]["rmse_diff_ci"]
            == entry["comparisons"]["ridge"]["rmse_diff_ci"]
        )
        assert cmp["winner"]["signature"] == entry["winner"]["signature"]
        assert cmp["winner"]["name"] == next(
            t["name"] for t in data["trials"] if t["trial_id"] == entry["winner"]["trial_id"]
        )
    assert (
        data["comparison"]["Q1"]["verdict"] == "better"
        and data["comparison"]["Q3"]["verdict"] == "worse"
    )


def test_curves_stop_at_asha_rungs_and_rung_counts(finished):
    sweep, data = finished
    assert data["asha"]["rungs"] == list(sweep.rungs) == list(rungs(8, 2, 2)) == [2, 4]
    assert data["asha"]["source"].startswith("sweep config")
    truth = {t.trial_id: t for t in sweep.trials}
    assert any(t.status == "asha" for t in sweep.trials), (
        "the synthetic sweep stops some trial at a rung"
    )
    for trial in data["trials"]:
        expected = truth[trial["trial_id"]]
        assert trial["status"] == expected.status
        assert trial["last_epoch"] == expected.last_epoch
        assert len(trial["loss"]) == expected.last_epoch and "epochs" not in trial  # epochs 1..n
        assert trial["loss"] == [
            float(f"{v:.4g}")
            for v in (
                [
                    min(expected.losses[s][e] for s in expected.signatures)
                    for e in range(expected.last_epoch)
                ]
            )
        ]
        if expected.status == "asha":
            assert (
                trial["stop_epoch"] == expected.last_epoch
                and trial["stop_epoch"] in data["asha"]["rungs"]
            )
        else:
            assert trial["stop_epoch"] is None
        assert set(trial["sig_rmse"]) == {SIG, WEAK}
    for task in ("Q1", "Q3"):
        mine = [t for t in sweep.trials if t.task == task]
        assert data["asha"]["reached"][task] == {
            "n_trials": len(mine),
            "counts": [sum(t.last_epoch >= r for t in mine) for r in (2, 4)],
        }


def test_calibration_and_provenance(finished):
    sweep, data = finished
    with open(sweep.path / "test_predictions.csv") as handle:
        predictions = list(csv.DictReader(handle))
    for task, entry in sweep.summary["tasks"].items():
        cal = data["calibration"][task]
        mine = [p for p in predictions if p["task"] == task]
        assert cal["n"] == len(mine) == entry["test"]["n"]
        assert cal["predicted"] == [float(p["predicted"]) for p in mine]
        assert cal["true"] == [float(p["true"]) for p in mine]
        assert (cal["slope"], cal["intercept"]) == (
            entry["test"]["calibration_slope"],
            entry["test"]["calibration_intercept"],
        )
        assert cal["signature"] == entry["winner"]["signature"]
    prov = data["provenance"]
    assert (
        prov["recorded"] is True and prov["git_commit"] == sweep.summary["provenance"]["git_commit"]
    )
    assert prov["versions"] == {"ray": "2.60.0", "torch": "2.13.0+cpu", "python": "3.11.7"}
    assert prov["sweep_config"]["asha"]["grace_period"] == 2


# --- a sweep still running ------------------------------------------------------------------


def test_running_sweep_from_result_lines(running):
    sweep, data = running
    assert not (sweep.path / "trials.csv").exists()
    assert data["meta"]["finished"] is False and data["meta"]["has_trials_csv"] is False
    truth = {t.trial_id: t for t in sweep.trials}
    assert len(data["rows"]) == sum(len(t.signatures) for t in sweep.trials)
    for row in data["rows"]:
        trial = truth[row["trial_id"]]
        losses = trial.losses[row["signature"]]
        best = min(range(len(losses)), key=losses.__getitem__)
        assert row["status"] == trial.status  # running, error, asha, early_stopping, completed
        assert row["best_epoch"] == best + 1 and row["epochs_run"] == trial.last_epoch
        assert math.isclose(row["val/loss"], losses[best]) and math.isclose(
            row["val/rmse"], trial.rmses[row["signature"]][best]
        )
        assert row["sample"] == trial.sample and row["name"] == trial.folder
        assert row["checkpoint_uri"] == ""
    assert [t["status"] for t in data["trials"]][-2:] == ["running", "running"]
    assert {t["status"] for t in data["trials"]} >= {"running", "error", "completed"}
    # No test numbers yet: no comparison, no calibration, no verdict; winners so far.
    assert data["comparison"] == {} and data["calibration"] == {}
    assert all(c["verdict"] is None for c in data["heatmap"]["cells"])
    assert all(w["provisional"] for w in data["winners"].values())
    assert data["asha"]["rungs"] == [2, 4] and data["asha"]["source"] == "the trials' config"
    prov = data["provenance"]
    assert prov["recorded"] is False and prov["data_root"] == "/data/synthetic"
    assert prov["started"] == datetime.fromtimestamp(START, timezone.utc).isoformat(
        timespec="seconds"
    )
    assert prov["ended"] is None


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
    assert len(data["heatmap"]["cells"]) == 3 * 2 and len(data["trials"]) == 3 * 2 * 2
    for trial in data["trials"]:
        assert trial["group"] == trial["signatures"][0] and "sig_rmse" not in trial
        assert (
            trial["name"]
            == f"{trial['task']}-{trial['group']}-{trial['sample']}"
            == trial["folder"]
        )


def test_an_older_sweep_without_the_newer_fields(tmp_path):
    """trials.csv without group or sample columns, Tune's default folder names, no intervals,
    comparisons, provenance, predictions, nor rungs in the trials' config."""
    sweep = write_synthetic_sweep(tmp_path / "old", extras=False, readable_names=False)
    with open(sweep.path / "trials.csv") as handle:
        rows = list(csv.DictReader(handle))
    keep = [c for c in rows[0] if c not in ("group", "sample")]
    with open(sweep.path / "trials.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, keep, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    for result in sweep.path.glob("*/result.json"):
        lines = [json.loads(line) for line in result.read_text().splitlines()]
        for line in lines:
            del line["config"]["rungs"]
        result.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    data = page_data(load_experiment(str(sweep.path)))
    truth = {(r.trial_id, r.signature): r for r in sweep.rows}
    for row in data["rows"]:
        assert (
            row["group"] == "all"
            and row["sample"] == truth[(row["trial_id"], row["signature"])].sample
        )
    assert all(
        t["folder"].startswith("run_trial_") and t["name"].endswith(f"-all-{t['sample']}")
        for t in data["trials"]
    )
    assert data["asha"] == {
        "rungs": [],
        "source": None,
        "max_t": None,
        "reached": {"Q1": {"n_trials": 3, "counts": []}, "Q3": {"n_trials": 3, "counts": []}},
    }
    for task, cmp in data["comparison"].items():
        # Test RMSEs without a paired interval: no verdict, whichever RMSE is lower.
        assert cmp["verdict"] is None and cmp["comparisons"] == {}
        assert "rmse_ci" not in cmp["models"][0]["metrics"]
    assert data["calibration"] == {} and data["provenance"]["recorded"] is False
    assert data["provenance"]["ended"] is not None  # finished: the last report's time
    render_page(data)  # and it renders


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
    external = [r for r in refs.refs if re.match(r"\s*(https?:)?//", r[2], re.I)]
    assert external == [] and all(r[2].startswith("#") for r in refs.refs)
    assert "window.Plotly = Plotly" in page  # plotly.js inlined from the installed package
    document = embedded(page)
    assert len(document["meta"].pop("version")) == 16
    assert {k: v for k, v in document.items() if k not in ("builder", "refresh_s")} == data


def test_embedded_json_cannot_end_its_script_block():
    nasty = "x</script><script>alert(1)</script><!-- </SCRIPT"
    data = {"meta": {"name": nasty}, "rows": [{"hp/note": nasty}]}
    text = embed_json(data)
    assert "<" not in text and json.loads(text) == data
    page = render_page({**data, "tasks": [], "signatures": []})
    assert embedded(page)["rows"] == [{"hp/note": nasty}]
    assert page.lower().count("</script") == page.lower().count("<script")  # one end per script
    assert "<title>mmse sweep x&lt;/script&gt;" in page


def test_default_out_is_the_experiment_folder(finished):
    sweep, _ = finished
    code, out, _ = run_cli("dashboard", str(sweep.path))
    assert code == 0 and out.strip() == f"dashboard: {sweep.path / 'dashboard' / 'index.html'}"
    # The page's own folder is not taken for a trial folder afterwards.
    assert len(page_data(load_experiment(str(sweep.path)))["trials"]) == len(sweep.trials)


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


def test_a_corrupt_summary_is_a_one_line_error(tmp_path):
    sweep = write_synthetic_sweep(tmp_path / "s")
    (sweep.path / "summary.json").write_text("{not json")
    code, _, err = run_cli("dashboard", str(sweep.path))
    assert (
        code == 2
        and err.startswith(f"mmse: error: {sweep.path}/summary.json: not JSON")
        and err.count("\n") == 1
    )


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
    assert embedded(board.page.read_text())["meta"]["version"] == board.version
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
        next(t for t in data["trials"] if t["trial_id"] == trial.trial_id)["last_epoch"]
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
            assert embedded(response.read().decode())["meta"]["version"] == second
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
    def __init__(self, counter: int, task: str, label: str):
        self.experiment_tag = f"{counter}_group=label_{label},task={task}"
        self.config = {"task": task, "group": {"label": label, "signatures": []}}


def test_trial_names_are_task_group_sample():
    from ray_jobs.sweep import TrialName

    name = TrialName(grid_size=4)  # 2 tasks x 2 signature groups
    assert [
        name(_Trial(c, t, g))
        for c, t, g in [(0, "Q1", "g0"), (3, "Q3", "g1"), (4, "Q1", "g0"), (11, "Q3", "g1")]
    ] == ["Q1-g0-0", "Q3-g1-0", "Q1-g0-1", "Q3-g1-2"]
    assert TrialName(1)(_Trial(7, "Q2", "m2_tau1_eps0.055_lmin2")) == "Q2-m2_tau1_eps0.055_lmin2-7"


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
    from mmse_app.dashboard_data import _display_uri

    assert _display_uri(
        "s3://b/p/x?endpoint_override=http://h:1&access_key=AK&secret_key=SK&scheme=http"
    ) == ("s3://b/p/x?endpoint_override=http://h:1&scheme=http")
    assert _display_uri("s3://b/p/x?secret_key=SK") == "s3://b/p/x"
    assert _display_uri("s3://AK:SK@b/p/x?session_token=T&region=eu") == "s3://b/p/x?region=eu"


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
