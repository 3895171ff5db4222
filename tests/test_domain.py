"""The domain's one signature grammar and its facts (no Ray)."""

import pytest

from mmse_model.core.domain import (
    FEATURE_NAMES,
    N_FEATURES,
    SCORE_RANGES,
    SUBTOTAL_RANGE,
    TASKS,
    Signature,
    format_signature,
    parse_signature,
    parse_signatures,
)
from mmse_model.core.errors import InputError


@pytest.mark.parametrize(
    "text",
    [
        "m2_tau1_eps0.055_lmin2",
        "m3_tau3_eps0.08_lmin3",
        "m10_tau12_eps1_lmin2",
        "m1_tau1_eps0.5_lmin1",
        "m2_tau1_eps12.25_lmin4",
        "m4_tau2_eps0.0001_lmin2",
    ],
)
def test_format_of_parse_is_the_text(text):
    signature = parse_signature(text)
    assert format_signature(signature) == signature.name == str(signature) == text


@pytest.mark.parametrize(
    "text, problem",
    [
        ("m2_tau1_eps.05_lmin2", "write it 'm2_tau1_eps0.05_lmin2'"),
        ("m2_tau1_eps5E-2_lmin2", "write it 'm2_tau1_eps0.05_lmin2'"),
        ("m2_tau1_eps0.050_lmin2", "write it 'm2_tau1_eps0.05_lmin2'"),
        ("m02_tau1_eps0.05_lmin2", "write it 'm2_tau1_eps0.05_lmin2'"),
        ("m2_tau1_eps1.0_lmin2", "write it 'm2_tau1_eps1_lmin2'"),
        ("m0_tau1_eps0.05_lmin2", "needs m >= 1"),
        ("m2_tau0_eps0.05_lmin2", "needs m >= 1, tau >= 1"),
        ("m2_tau1_eps0_lmin2", "eps > 0"),
        ("m2_tau1_eps0.05_lmin0", "lmin >= 1"),
        ("m2_tau1_eps1.2.3_lmin2", "is not a number"),
        ("m2_tau1_epsinf_lmin2", "expected m<int>_tau<int>_eps<decimal>_lmin<int>"),
        ("m2-tau1-eps0.05-lmin2", "expected m<int>_tau<int>_eps<decimal>_lmin<int>"),
        (" m2_tau1_eps0.05_lmin2", "expected"),
        ("", "expected"),
    ],
)
def test_every_other_spelling_is_refused_with_the_reason(text, problem):
    with pytest.raises(InputError) as info:
        parse_signature(text)
    assert problem in str(info.value) and repr(text) in str(info.value)


def test_signature_fields_and_window():
    signature = parse_signature("m3_tau2_eps0.07_lmin3")
    assert signature == Signature(3, 2, 0.07, 3) and signature.window == 5


def test_parse_signatures_keeps_order_drops_repeats_and_needs_one():
    names = [
        s.name
        for s in parse_signatures(
            ["m3_tau1_eps0.1_lmin2", "m2_tau1_eps0.1_lmin2", "m3_tau1_eps0.1_lmin2"]
        )
    ]
    assert names == ["m3_tau1_eps0.1_lmin2", "m2_tau1_eps0.1_lmin2"]
    with pytest.raises(InputError, match="no signature given"):
        parse_signatures([])


def test_the_facts_agree_with_each_other():
    assert TASKS == ("Q1", "Q2", "Q3", "Q4", "Q5") and set(SCORE_RANGES) == set(TASKS)
    assert SUBTOTAL_RANGE == (0.0, 21.0) and N_FEATURES == len(FEATURE_NAMES) == 10
