"""The synthetic cohort: file layout, label consistency, reproducibility, speed."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

from mmse_app.cli import main
from mmse_model.synth import cohort as synth


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "cohort"
    synth.synthesize(out, n_subjects=6, seed=3)
    return out


def test_layout_rates_durations_and_blinks(cohort_dir: Path) -> None:
    subjects = sorted(p.name for p in (cohort_dir / "recordings").iterdir())
    assert len(subjects) == 6 and (cohort_dir / "SYNTHETIC.txt").exists()
    saw_blink = False
    for subject in subjects:
        for task in synth.TASK_NAMES:
            path = cohort_dir / "recordings" / subject / f"{task}.csv"
            assert path.read_text().startswith("t,x,y\n")
            data = np.loadtxt(path, delimiter=",", skiprows=1)
            rate = 1.0 / np.median(np.diff(data[:, 0]))
            assert 89 <= rate <= 121
            assert 19.9 <= data[-1, 0] <= 40.0
            xy = data[:, 1:]
            gaps = np.isnan(xy).all(axis=1)
            saw_blink |= bool(gaps.any())
            assert np.array_equal(np.isnan(xy).any(axis=1), gaps)  # blink rows: x and y nan
            assert ((xy[~gaps] >= 0) & (xy[~gaps] <= 1)).all()
    assert saw_blink


def test_labels_consistent_with_mmse(cohort_dir: Path) -> None:
    rows = list(csv.DictReader((cohort_dir / "labels.csv").open()))
    assert list(rows[0]) == ["subject_id", "Q1", "Q2", "Q3", "Q4", "Q5", "mmse", "group"]
    for row in rows:
        assert row["group"] in synth.GROUPS
        scores = [int(row[q]) for q in synth.TASK_NAMES]
        assert all(0 <= s <= hi for s, hi in zip(scores, (5, 5, 3, 5, 3)))
        assert 0 <= int(row["mmse"]) - sum(scores) <= 9


def test_cohort_distribution_is_clinical() -> None:
    cohort = synth.simulate_cohort(6000, np.random.default_rng(0))
    np.testing.assert_allclose(np.bincount(cohort.group) / 6000, synth.GROUP_PROPORTIONS, atol=0.02)
    means = [cohort.mmse[cohort.group == g].mean() for g in range(3)]
    assert means[0] > means[1] > means[2]
    assert 28 < means[0] <= 30 and 25.5 < means[1] < 28 and 18 < means[2] < 23
    assert (cohort.items.sum(axis=1) == cohort.mmse).all()
    # Impairment costs recall (Q5) more than registration (Q3), in proportion to the range.
    lost = 1 - cohort.items[:, :5] / synth.ITEM_MAX[:5]
    assert lost[:, 4].mean() > lost[:, 2].mean()


def test_reproducible_by_seed(tmp_path: Path) -> None:
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        synth.synthesize(tmp_path / name, n_subjects=2, seed=seed, duration_s=(2.0, 3.0))
    q3 = Path("recordings/synth0001/Q3.csv")
    assert (tmp_path / "a" / q3).read_bytes() == (tmp_path / "b" / q3).read_bytes()
    assert (tmp_path / "a" / q3).read_bytes() != (tmp_path / "c" / q3).read_bytes()


def test_cli_refuses_existing_output(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    assert main(["data", "synth", "--out", str(tmp_path / "taken"), "--subjects", "2"]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"
    assert main(["data", "synth", "--out", str(tmp_path / "new"), "--subjects", "0"]) == 2
    assert not (tmp_path / "new").exists()


# --- The documented parameters: docstring, constants and code agree ------------------------

DOC = " ".join(synth.__doc__.split())  # one line: numbers may wrap anywhere in the source
NUMBER = r"(-?\d+(?:\.\d+)?)"


def documented(pattern: str) -> tuple[float, ...]:
    """The numbers that `pattern` (with NUMBER groups) captures in the module docstring."""
    match = re.search(pattern.replace("NUMBER", NUMBER), DOC)
    assert match, f"not in mmse_model/synth/cohort.py's docstring: {pattern}"
    return tuple(float(g) for g in match.groups())


# (what, pattern in the docstring, the constant(s) the code uses)
DOCUMENTED = [
    ("group proportions", r"proportions NUMBER / NUMBER / NUMBER", tuple(synth.GROUP_PROPORTIONS)),
    ("healthy MMSE", r"CN NUMBER \+- NUMBER", (synth.MMSE_MEAN[0], synth.MMSE_SD[0])),
    ("MCI MMSE", r"MCI NUMBER \+- NUMBER", (synth.MMSE_MEAN[1], synth.MMSE_SD[1])),
    (
        "dementia MMSE",
        r"widened to NUMBER \+- NUMBER \(clip NUMBER-NUMBER\)",
        (synth.MMSE_MEAN[2], synth.MMSE_SD[2], *synth.MMSE_CLIP[2]),
    ),
    (
        "impairment weights",
        (
            r"\(1 - Q/max, weight NUMBER\) with global impairment "
            r"\(\(30 - MMSE\)/20, weight NUMBER\)"
        ),
        synth.IMPAIRMENT_WEIGHTS,
    ),
    ("impairment noise", r"plus N\(0, NUMBER\) individual noise", (synth.IMPAIRMENT_NOISE_SD,)),
    (
        "fixation duration",
        r"median NUMBER ms, sigma NUMBER",
        (synth.FIXATION_MEDIAN_S * 1000, synth.FIXATION_SIGMA),
    ),
    ("duration trait", r"subject trait lognormal\(0, NUMBER\)", (synth.DURATION_TRAIT_SIGMA,)),
    ("duration effect", r"\(1 \+ NUMBER effects.duration s\)", (synth.DURATION_EFFECT,)),
    (
        "revisit",
        r"revisit of an AOI already seen with p = NUMBER \+ NUMBER effects.revisit s",
        synth.REVISIT_P,
    ),
    (
        "scan order",
        r"p = order_trait \(NUMBER - NUMBER effects.disorder s\)",
        (synth.ORDER_P[0], -synth.ORDER_P[1]),
    ),
    ("order trait", r"order_trait a subject trait uniform NUMBER-NUMBER", synth.ORDER_TRAIT),
    ("roaming", r"length scale NUMBER screen units", (synth.NEAR_SCALE,)),
    (
        "refixation",
        r"refixation inside the same AOI with p = NUMBER \+ NUMBER effects.hypometria s",
        synth.REFIXATION_P,
    ),
    (
        "saccade gain",
        r"gain NUMBER - NUMBER effects.hypometria s",
        (synth.SACCADE_GAIN[0], -synth.SACCADE_GAIN[1]),
    ),
    (
        "landing scatter",
        r"landing scatter N\(0, NUMBER AOI radius\)",
        (synth.LANDING_SD_AOI_RADII,),
    ),
    ("field of view", r"a NUMBER deg field of view", (synth.FIELD_OF_VIEW_DEG,)),
    ("sampling rates", r"Tracker: NUMBER or NUMBER Hz", synth.SAMPLE_RATES_HZ),
    ("tracker noise", r"Gaussian noise NUMBER-NUMBER deg", synth.NOISE_DEG),
    ("drift", r"random walk of NUMBER deg per sample", (synth.DRIFT_DEG_PER_SAMPLE,)),
    ("blink rate", r"Poisson, NUMBER per minute", (synth.BLINKS_PER_S * 60,)),
    ("blink length", r"NUMBER-NUMBER ms each", tuple(1000 * b for b in synth.BLINK_S)),
    ("task length", r"Task length: uniform NUMBER-NUMBER s", synth.DURATION_S),
]


@pytest.mark.parametrize("what, pattern, constants", DOCUMENTED, ids=[d[0] for d in DOCUMENTED])
def test_docstring_states_the_constants(what: str, pattern: str, constants: tuple) -> None:
    np.testing.assert_allclose(documented(pattern), constants, rtol=1e-12, err_msg=what)


def test_the_pinned_values() -> None:
    # The four that once disagreed between docstring and code, as the docstring now states them.
    assert documented(r"plus N\(0, NUMBER\) individual noise") == (0.10,)
    assert documented(r"\(1 \+ NUMBER effects.duration s\)") == (0.8,)
    assert documented(r"already seen with p = NUMBER \+ NUMBER effects.revisit s") == (0.10, 0.45)
    assert documented(r"landing scatter N\(0, NUMBER AOI radius\)") == (0.5,)
    assert synth.LANDING_SD == 0.5 * synth.AOI_RADIUS == 0.02


def test_gaze_parameters_follow_the_documented_formulas() -> None:
    effects = synth.Effects(duration=1.0, revisit=1.0, disorder=1.0, hypometria=1.0)
    s = np.array([0.0, 0.5, 1.0])
    traits = {"duration": np.ones(3), "order": np.ones(3)}
    p = synth.gaze_parameters(effects, s, traits)
    revisit = documented(r"already seen with p = NUMBER \+ NUMBER effects.revisit s")
    order = documented(r"p = order_trait \(NUMBER - NUMBER effects.disorder s\)")
    refix = documented(r"same AOI with p = NUMBER \+ NUMBER effects.hypometria s")
    gain = documented(r"gain NUMBER - NUMBER effects.hypometria s")
    (duration,) = documented(r"\(1 \+ NUMBER effects.duration s\)")
    (median_ms, _) = documented(r"median NUMBER ms, sigma NUMBER")
    np.testing.assert_allclose(p.p_revisit, revisit[0] + revisit[1] * s)
    np.testing.assert_allclose(p.p_order, order[0] - order[1] * s)
    np.testing.assert_allclose(p.p_refixation, refix[0] + refix[1] * s)
    np.testing.assert_allclose(p.gain, gain[0] - gain[1] * s)
    np.testing.assert_allclose(p.median_duration_s, median_ms / 1000 * (1 + duration * s))


def test_drawn_durations_scale_as_documented() -> None:
    # simulate_fixations draws with gaze_parameters: the median duration at s = 1 is
    # (1 + DURATION_EFFECT x effects.duration) times that at s = 0.
    rng = np.random.default_rng(0)
    scene = synth.TASKS["Q4"]
    traits = {"duration": np.ones(400), "order": np.ones(400)}
    log_median = []
    for s in (0.0, 1.0):
        _, durations = synth.simulate_fixations(scene, np.full(400, s), traits, 50, rng)
        log_median.append(np.log(durations).mean())
    (effect,) = documented(r"\(1 \+ NUMBER effects.duration s\)")
    ratio = np.exp(log_median[1] - log_median[0])
    assert ratio == pytest.approx(1 + effect * scene.effects.duration, rel=0.02)
    (median_ms, _sigma) = documented(r"median NUMBER ms, sigma NUMBER")
    assert np.exp(log_median[0]) == pytest.approx(median_ms / 1000, rel=0.02)


def test_drawn_impairment_noise_and_landing_scatter_are_documented() -> None:
    rng = np.random.default_rng(1)
    cohort = synth.simulate_cohort(4000, rng)
    impairment = synth.task_impairment(cohort, rng)
    own, overall = documented(
        r"\(1 - Q/max, weight NUMBER\) with global impairment "
        r"\(\(30 - MMSE\)/20, weight NUMBER\)"
    )
    expected = (
        own * (1 - cohort.items[:, :5] / synth.ITEM_MAX[:5])
        + overall * np.clip((30 - cohort.mmse) / 20, 0, 1)[:, None]
    )
    inside = (expected > 0.35) & (expected < 0.65)  # where clipping to [0, 1] cannot bite
    (noise,) = documented(r"plus N\(0, NUMBER\) individual noise")
    assert inside.sum() > 1000
    assert (impairment - expected)[inside].std() == pytest.approx(noise, rel=0.06)

    # The first fixation lands on its AOI with the documented scatter (per axis).
    scene = synth.TASKS["Q5"]  # AOIs 0.3 apart: the nearest AOI is the one aimed at
    traits = {"duration": np.ones(4000), "order": np.ones(4000)}
    positions, _ = synth.simulate_fixations(scene, np.zeros(4000), traits, 1, rng)
    first = positions[:, 0]
    nearest = np.linalg.norm(first[:, None] - scene.aois[None], axis=2).argmin(axis=1)
    (radii,) = documented(r"landing scatter N\(0, NUMBER AOI radius\)")
    offsets = first - scene.aois[nearest]
    assert offsets.std() == pytest.approx(radii * synth.AOI_RADIUS, rel=0.04)
