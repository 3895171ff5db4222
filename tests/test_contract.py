"""Files that leave a run are typed, versioned contracts, read by one function each that
upgrades older versions (mmse_model/core/contract.py); JSON has one strict writer
(mmse_model/core/jsonio.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pytest

from mmse_model.core import jsonio
from mmse_model.core.contract import Contract, tagged
from mmse_model.core.errors import InputError
from mmse_model.sweeps.summary_schema import Summary, read_summary

OLD_DEMO = Path(__file__).parent / "fixtures" / "demo_3209a5e" / "summary.json"


class Note(Contract):
    """A contract of two versions: 1 called the text `body`, 2 calls it `text`."""

    FORMAT: ClassVar[str] = "test-note"
    FORMAT_VERSION: ClassVar[int] = 2
    format: Literal["test-note"] = "test-note"
    format_version: int = 2
    text: str
    score: float | None = None


Note.UPGRADES = {1: lambda old: tagged(Note, {"text": old["body"]}, 2)}


def test_a_contract_round_trips_and_upgrades_an_older_version_in_one_place():
    note = Note(text="hi", score=math.nan)
    written = note.to_json()
    assert json.loads(written) == {
        "format": "test-note",
        "format_version": 2,
        "not_recorded": [],
        "score": None,  # NaN is written as null, by the one writer
        "text": "hi",
    }
    assert Note.read("n.json", written) == Note(text="hi", score=None)
    old = json.dumps({"format": "test-note", "format_version": 1, "body": "old"})
    assert Note.read("n.json", old) == Note(text="old")


@pytest.mark.parametrize(
    "document, message",
    [
        ("{", "n.json: not JSON"),
        ("[]", "n.json: not a test-note file (expected a mapping)"),
        (
            '{"format": "other", "format_version": 1}',
            "n.json: not a test-note file (format 'other'",
        ),
        (
            '{"format": "test-note", "format_version": 3}',
            (
                "n.json: test-note format version 3 is newer than this code reads (up to 2); "
                "update mmse-model"
            ),
        ),
        (
            '{"format": "test-note", "format_version": 0}',
            "n.json: test-note format version 0 is no longer read (this code reads 1 to 2)",
        ),
        ('{"format": "test-note", "format_version": true}', "n.json: format_version True"),
        ('{"format": "test-note", "format_version": 1}', "n.json: not a readable test-note file"),
        ('{"format": "test-note", "format_version": 2, "txt": "x"}', "n.json: text: missing"),
    ],
)
def test_what_a_reader_cannot_read_is_one_line_naming_the_file(document, message):
    with pytest.raises(InputError) as refused:
        Note.read("n.json", document)
    assert str(refused.value).startswith(message), str(refused.value)
    assert "\n" not in str(refused.value)


def test_the_one_json_writer_is_strict_sorted_and_plain():
    value = {"b": np.float32(1.5), "a": (np.int64(2), math.inf), "c": np.array([1.0, np.nan])}
    assert jsonio.dumps(value) == '{"a": [2, null], "b": 1.5, "c": [1.0, null]}'
    assert jsonio.dumps(value, compact=True) == '{"a":[2,null],"b":1.5,"c":[1.0,null]}'
    assert jsonio.json_text({"x": 1}) == '{\n  "x": 1\n}\n'
    assert jsonio.plain(Note(text="t")) == {
        "format": "test-note",
        "format_version": 2,
        "not_recorded": [],
        "score": None,
        "text": "t",
    }


def test_a_summary_from_before_the_contract_says_what_it_lacks():
    """The oldest summaries: no comparator, no training N, no per-group error, no
    `synthetic` (it is read from the AUC's groups file), a constant's slope written as 0."""
    summary = read_summary("summary.json", OLD_DEMO.read_text())
    assert summary.format_version == Summary.FORMAT_VERSION
    assert {"comparator", "excluded_recordings", "tasks.Q1.training", "tasks.Q1.per_group"} <= set(
        summary.not_recorded
    )
    assert summary.synthetic is True
    assert summary.synthetic_source == "the groups file's folder (SYNTHETIC.txt)"
    # Undeclared: read against Ridge, and said so.
    assert not summary.comparator.declared and summary.comparator.primary.key == "ridge"
    q1 = summary.tasks["Q1"]
    assert q1.verdict.source.endswith("this sweep declared no comparator")
    assert [b.key for b in q1.baselines] == ["train_mean", "ridge", "hist_gradient_boosting"]
    assert q1.comparisons[0].baseline == "ridge"  # the verdict's comparison first
    mean = q1.baseline("train_mean").test
    assert mean.calibration_slope is None and mean.pearson_r is None  # was 0: undefined
    assert q1.nested_estimate.kind == "procedure"
    assert q1.nested_estimate.label.endswith("optimistic)")
    assert summary.subtotal.test.rmse == pytest.approx(2.2052088000716945)
    # Upgraded once, it reads back as itself.
    assert read_summary("summary.json", summary.to_json()) == summary
