"""The test results the dashboard shows (`mmse_app/dashboard_results.py`), from a summary with
every key the newest sweeps record and from an older demo's summary that has none of them.

The newest keys come from `tests.fixtures.synthetic_sweep.add_contract_keys`; the older
summary is a real `make demo` result (`tests.fixtures.demo_summary`). No Ray, no browser.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from mmse_app.dashboard import render_page
from mmse_app.dashboard_data import load_experiment, page_data
from mmse_app.dashboard_results import PROCEDURE_LABEL, fitted_calibration
from mmse_model.evaluation.metrics import calibration
from tests.fixtures.demo_summary import write_old_demo
from tests.fixtures.synthetic_sweep import add_contract_keys, write_synthetic_sweep


@pytest.fixture(scope="module")
def newest(tmp_path_factory):
    sweep = write_synthetic_sweep(
        tmp_path_factory.mktemp("newest") / "sweep", samples=3, contract=True
    )
    return sweep, page_data(load_experiment(str(sweep.path)))


def _rewrite_summary(sweep, change) -> dict:
    summary = json.loads((sweep.path / "summary.json").read_text())
    change(summary)
    (sweep.path / "summary.json").write_text(json.dumps(summary))
    return page_data(load_experiment(str(sweep.path)))


# --- a summary with the newest keys ---------------------------------------------------------------


def test_the_verdict_is_the_declared_comparators(newest):
    sweep, data = newest
    comp = data["comparator"]
    assert (
        comp["declared"]
        and comp["primary"] == "ridge"
        and comp["adjustment"] == "none"
        and comp["n_tasks"] == 2
    )
    assert comp["secondary"] == ["train_mean", "hist_gradient_boosting"]
    for task, entry in sweep.summary["tasks"].items():
        cmp = data["comparison"][task]
        assert cmp["verdict_detail"]["baseline"] == "ridge"
        assert cmp["verdict_detail"]["rmse_diff_ci"] == entry["verdict"]["rmse_diff_ci"]
        assert (
            cmp["verdict"]
            == {"better": "better", "worse": "worse", "no difference shown": "level"}[
                entry["verdict"]["result"]
            ]
        )
        assert sorted(s["baseline"] for s in cmp["secondary"]) == [
            "hist_gradient_boosting",
            "train_mean",
        ]
        assert [m["primary"] for m in cmp["models"][1:]] == [False, True, False]
        assert {m["key"]: m["signature"] for m in cmp["models"][1:]} == {
            b: entry["baselines"][b]["signature"]
            for b in ("train_mean", "ridge", "hist_gradient_boosting")
        }
    assert (
        data["comparison"]["Q1"]["verdict"] == "better"
        and data["comparison"]["Q3"]["verdict"] == "worse"
    )


def test_a_declared_comparator_other_than_the_lowest_test_rmse_gives_the_verdict(tmp_path):
    # Ridge has the lowest test RMSE of the baselines on both tasks; train mean is declared.
    sweep = write_synthetic_sweep(tmp_path / "s", samples=2)
    data = _rewrite_summary(sweep, lambda s: add_contract_keys(s, primary="train_mean"))
    for task, entry in sweep.summary["tasks"].items():
        lowest = min(entry["baselines"], key=lambda b: entry["baselines"][b]["rmse"])
        assert lowest == "ridge"
        cmp = data["comparison"][task]
        paired = entry["comparisons"]["train_mean"]
        assert (
            cmp["verdict_detail"]["baseline"] == "train_mean"
            and cmp["verdict_detail"]["label"] == "train mean"
        )
        assert cmp["verdict"] == (
            "better" if paired["better"] else "worse" if paired["worse"] else "level"
        )
        assert "ridge" in [s["baseline"] for s in cmp["secondary"]]
    # Q3's Ridge beats its winner, but the declared train mean does not: no "worse" on Q3.
    assert data["comparison"]["Q3"]["verdict"] == "better"
    winners = [c for c in data["heatmap"]["cells"] if c["winner"]]
    assert {c["task"]: c["verdict"] for c in winners} == {"Q1": "better", "Q3": "better"}
    assert all(c["verdict"] is None for c in data["heatmap"]["cells"] if not c["winner"])


def test_holm_adjustment_is_passed_on(tmp_path):
    sweep = write_synthetic_sweep(tmp_path / "s", samples=2, contract=True)
    data = _rewrite_summary(sweep, lambda s: s["comparator"].update(adjustment="holm"))
    assert data["comparator"]["adjustment"] == "holm"


def test_nested_estimate_training_groups_and_coverage(newest):
    sweep, data = newest
    for task, entry in sweep.summary["tasks"].items():
        cmp = data["comparison"][task]
        nested = cmp["nested"]
        assert nested["kind"] == "nested" and nested["label"] == entry["nested_estimate"]["label"]
        assert (
            nested["search"] == {"samples": 2, "signatures": 2, "folds": 3}
            and nested["repeats"] == 3
        )
        assert set(nested["models"]) == {"network", "ridge", "train_mean", "hist_gradient_boosting"}
        assert (
            nested["models"]["ridge"]["rmse_values"]
            == entry["nested_estimate"]["models"]["ridge"]["rmse_values"]
        )
        assert cmp["training"] == entry["training"] and cmp["per_group"] == entry["per_group"]
        assert cmp["intervals"] == entry["intervals"]
    assert data["synthetic"] == {"value": True, "source": "summary.json"}
    assert data["excluded_recordings"] == {"value": 3, "source": "summary.json"}


def test_the_subtotal_with_its_calibration_auc_and_groups(newest):
    sweep, data = newest
    recorded = sweep.summary["subtotal"]
    sub = data["subtotal"]
    assert sub["tasks"] == ["Q1", "Q3"] and sub["range"] == [
        0.0,
        8.0,
    ]  # Q1 0-5 plus Q3 0-3, not 0-21
    assert sub["metrics"]["rmse_ci"] == recorded["rmse_ci"] and sub["metrics"]["n"] == 20
    assert (
        sub["calibration"]["slope"],
        sub["calibration"]["intercept"],
        sub["calibration"]["source"],
    ) == (0.875, 0.5, "summary.json")
    assert sub["dementia_auc"]["auc_ci"] == [0.6875, 0.9375]
    assert sub["intervals"]["coverage_ci"] == recorded["intervals"]["coverage_ci"]
    assert sub["per_group"] == recorded["per_group"]
    # Each test subject's summed scores over the tasks, from test_predictions.csv.
    with open(sweep.path / "test_predictions.csv") as handle:
        rows = list(csv.DictReader(handle))
    truth: dict[str, list[float]] = {}
    for row in rows:
        truth.setdefault(row["subject_id"], [0.0, 0.0])
        truth[row["subject_id"]][0] += float(row["true"])
        truth[row["subject_id"]][1] += float(row["predicted"])
    cal = sub["calibration"]
    assert cal["n"] == len(truth) == 20 and cal["subject_id"] == sorted(truth)
    assert cal["true"] == pytest.approx([truth[s][0] for s in cal["subject_id"]])
    assert cal["predicted"] == pytest.approx([truth[s][1] for s in cal["subject_id"]])


def test_a_recorded_null_slope_stays_undefined(tmp_path):
    sweep = write_synthetic_sweep(tmp_path / "s", samples=2, contract=True)
    data = _rewrite_summary(
        sweep, lambda s: s["subtotal"].update(calibration_slope=None, calibration_intercept=None)
    )
    assert (
        data["subtotal"]["calibration"]["slope"],
        data["subtotal"]["calibration"]["source"],
    ) == (None, "summary.json")


def test_excluded_recordings_null_is_not_recorded(tmp_path):
    sweep = write_synthetic_sweep(tmp_path / "s", samples=2, contract=True)
    data = _rewrite_summary(sweep, lambda s: s.update(excluded_recordings=None, synthetic=False))
    assert data["excluded_recordings"] == {"value": None, "source": "summary.json"}
    assert data["synthetic"] == {"value": False, "source": "summary.json"}


def test_a_constant_prediction_has_no_calibration_line():
    assert fitted_calibration([1.0, 2.0, 3.0], [2.0, 2.0, 2.0]) == (None, None)
    slope, intercept = fitted_calibration([1.0, 2.0, 4.0], [1.5, 2.0, 3.5])
    line = calibration(np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.5]))
    assert (slope, intercept) == (line["calibration_slope"], line["calibration_intercept"])


# --- an older demo's summary, without any of them -------------------------------------------------


@pytest.fixture()
def old_demo(tmp_path):
    return tmp_path, write_old_demo(tmp_path)


def test_an_older_demo_reads_ridges_comparison_labelled_as_such(old_demo):
    _, experiment = old_demo
    data = page_data(load_experiment(str(experiment)))
    assert data["comparator"]["declared"] is False and data["comparator"]["primary"] == "ridge"
    summary = json.loads((experiment / "summary.json").read_text())
    q3 = summary["tasks"]["Q3"]
    # Q3: HGB has the lowest test RMSE and beats the winner; Ridge, the default comparator, does not.
    assert (
        min(q3["baselines"], key=lambda b: q3["baselines"][b]["rmse"]) == "hist_gradient_boosting"
    )
    assert q3["comparisons"]["hist_gradient_boosting"]["worse"] is True
    assert {t: c["verdict"] for t, c in data["comparison"].items()} == {
        t: "level" for t in ("Q1", "Q2", "Q3", "Q4", "Q5")
    }
    assert data["comparison"]["Q3"]["verdict_detail"]["source"].startswith(
        "Ridge's paired comparison: this sweep declared no"
    )
    hgb = next(
        s
        for s in data["comparison"]["Q3"]["secondary"]
        if s["baseline"] == "hist_gradient_boosting"
    )
    assert hgb["result"] == "worse"
    winner_cells = [c for c in data["heatmap"]["cells"] if c["winner"]]
    assert len(winner_cells) == 5 and all(c["verdict"] == "level" for c in winner_cells)
    assert all(c["verdict"] is None for c in data["heatmap"]["cells"] if not c["winner"])


def test_an_older_demo_labels_its_procedure_estimate_and_has_no_newer_numbers(old_demo):
    _, experiment = old_demo
    data = page_data(load_experiment(str(experiment)))
    summary = json.loads((experiment / "summary.json").read_text())
    for task, cmp in data["comparison"].items():
        nested = cmp["nested"]
        assert nested["kind"] == "procedure" and nested["label"] == PROCEDURE_LABEL
        assert list(nested["models"]) == ["network"]
        assert (
            nested["models"]["network"]["rmse_mean"]
            == summary["tasks"][task]["procedure_estimate"]["rmse_mean"]
        )
        assert cmp["training"] is None and cmp["per_group"] is None
        assert cmp["intervals"]["coverage_ci"] == summary["tasks"][task]["intervals"]["coverage_ci"]
        # The training mean predicts a constant: its slope is undefined, not 0.
        train_mean = next(m for m in cmp["models"] if m["key"] == "train_mean")
        assert train_mean["metrics"]["calibration_slope"] is None
        assert next(m for m in cmp["models"] if m["key"] == "ridge")["signature"] is None
    assert data["subtotal"]["per_group"] is None and data["subtotal"]["range"] == [0.0, 21.0]
    render_page(data)


def test_an_older_demos_subtotal_calibration_is_fitted_from_its_predictions(old_demo):
    _, experiment = old_demo
    data = page_data(load_experiment(str(experiment)))
    with open(experiment / "test_predictions.csv") as handle:
        rows = list(csv.DictReader(handle))
    sums: dict[str, list[float]] = {}
    for row in rows:
        sums.setdefault(row["subject_id"], [0.0, 0.0])
        sums[row["subject_id"]][0] += float(row["true"])
        sums[row["subject_id"]][1] += float(row["predicted"])
    subjects = sorted(sums)
    line = calibration(
        np.array([sums[s][0] for s in subjects]), np.array([sums[s][1] for s in subjects])
    )
    cal = data["subtotal"]["calibration"]
    assert cal["n"] == 60 and cal["source"] == "fitted here from test_predictions.csv"
    assert cal["slope"] == pytest.approx(line["calibration_slope"]) and cal[
        "intercept"
    ] == pytest.approx(line["calibration_intercept"])
    assert data["calibration"]["Q1"]["n"] == 60  # unique test subjects
    assert data["subtotal"]["dementia_auc"]["auc_ci"] == pytest.approx(
        [0.6919098644307246, 0.9174157873376624]
    )


def test_an_older_demo_says_synthetic_from_its_data_root_or_its_groups_file(old_demo):
    out, experiment = old_demo
    # No data root here (it was another machine's): the AUC's groups file said SYNTHETIC.
    data = page_data(load_experiment(str(experiment)))
    assert data["synthetic"] == {
        "value": True,
        "source": "the groups file's folder (SYNTHETIC.txt)",
    }
    assert data["excluded_recordings"] == {"value": None, "source": None}
    (out / "data").mkdir()
    (out / "data" / "dataset.json").write_text(json.dumps({"format": 1, "synthetic": True}))
    (out / "data" / "build_report.csv").write_text(
        "subject_id,task,reason\ns1,Q1,empty\ns2,*,no labels\n"
    )
    data = page_data(load_experiment(str(experiment)))
    assert data["synthetic"] == {"value": True, "source": "the data root's dataset.json"}
    assert data["excluded_recordings"]["value"] == 2
    assert data["excluded_recordings"]["source"].startswith("the data root's build_report.csv")


def test_no_word_on_synthetic_means_no_banner_data(tmp_path):
    sweep = write_synthetic_sweep(
        tmp_path / "s", samples=2
    )  # no synthetic key, no AUC, no data root here
    data = page_data(load_experiment(str(sweep.path)))
    assert data["synthetic"] == {"value": None, "source": None}
    assert data["subtotal"] is None and data["excluded_recordings"] == {
        "value": None,
        "source": None,
    }
