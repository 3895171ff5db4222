"""SYNTHETIC cohort simulator: gaze recordings with MMSE labels, for demos and tests.

Nothing here is patient data. The simulator writes

    DIR/recordings/<subject_id>/<Q>.csv   columns t,x,y (s, normalised [0, 1] screen units;
                                          blink gaps are rows with x, y = nan), or with
                                          --format vectors t,dx,dy,dz,valid (unit gaze
                                          directions looking down +z; blinks are zero
                                          vectors with valid 0): the same gaze, converted
                                          from the numbers the t,x,y file would hold
    DIR/labels.csv                        subject_id,Q1,Q2,Q3,Q4,Q5,mmse,group
    DIR/SYNTHETIC.txt                     what this is, the seed, and where it came from

Every number below is either taken from a cited source or marked ASSUMPTION. The
direction of each impairment effect follows the eye-movement literature on MCI and
Alzheimer's disease (reviews: Molitor, Ko & Ally 2015, J Alzheimers Dis 44:1-12; Pereira
et al. 2014, Front Aging Neurosci 6:323): longer fixations, more re-fixations / revisits
of already-inspected regions, less systematic search, hypometric (shorter) saccades. The
*sizes* of the effects are ASSUMPTIONS, chosen so that RQA features carry a real but
partial signal (a cross-validated Ridge R^2 well above 0 and well below 1).

Cohort
- Groups (ADNI-1 enrolment, Petersen et al. 2010, Neurology 74:201-209: 229 CN, 398 MCI,
  192 AD): proportions 0.28 / 0.49 / 0.23.
- MMSE per group, normal, rounded, clipped (same source: CN 29.1 +- 1.0, MCI 27.0 +- 1.8,
  AD 23.3 +- 2.0). ASSUMPTION: the dementia group is widened to 21 +- 4 (clip 10-27) so
  that moderate dementia, excluded by ADNI's 20-26 entry window, is represented.
- Sub-scores: the 30 - MMSE lost points are removed one at a time from the items Q1 time
  orientation (5), Q2 place orientation (5), Q3 registration (3), Q4 attention and
  calculation (5), Q5 delayed recall (3) and the remaining items (language and praxis, 9),
  with probability proportional to (points left in the item) x (item weight) x (subject
  noise). Item weights follow the order in which MMSE items fail in AD (Ashford et al.
  1989, J Gerontol 44:P139-146: recall and time orientation first; registration and
  naming last); their values (LOSS_WEIGHTS) and the lognormal subject noise (sigma 0.5)
  are ASSUMPTIONS. Sub-scores are therefore consistent with the total by construction.

Each number in the gaze model below is a module constant (named in brackets);
tests/test_synth.py reads the numbers back out of this docstring and checks them against
the constants and against what the code draws, so the two cannot drift apart again.

Gaze, per task (TASKS: areas of interest (AOIs) in a VR scene and a canonical scan order)
- Task impairment s_q in [0, 1] mixes the item's own deficit (1 - Q/max, weight 0.55) with
  global impairment ((30 - MMSE)/20, weight 0.45) plus N(0, 0.10) individual noise
  (ASSUMPTION; IMPAIRMENT_WEIGHTS, IMPAIRMENT_NOISE_SD). Each task scales four effects by
  its own `effects` (ASSUMPTION), so tasks differ in which dynamics carry the signal.
- Fixation durations: lognormal, median 250 ms, sigma 0.35 (scene viewing and search,
  Rayner 2009, Q J Exp Psychol 62:1457-1506), x subject trait lognormal(0, 0.15), x
  (1 + 0.8 effects.duration s) (DURATION_EFFECT, ASSUMPTION: at most +80 %, about +20 %
  for a typical dementia s of 0.5 in a task with effects.duration 0.5).
- Next target: a revisit of an AOI already seen with p = 0.10 + 0.45 effects.revisit s
  (REVISIT_P); else the next AOI in the scan order with p = order_trait (0.75 - 0.65
  effects.disorder s) (ORDER_P; order_trait a subject trait uniform 0.8-1.1); else a
  distance-weighted random AOI (length scale 0.35 screen units); refixation inside the
  same AOI with p = 0.15 + 0.30 effects.hypometria s (REFIXATION_P) (ASSUMPTIONS).
- Saccades land short: gain 0.95 - 0.25 effects.hypometria s (SACCADE_GAIN; healthy gain
  ~0.95, Becker 1989 in Wurtz & Goldberg (eds), Rev Oculomot Res 3:13-67); landing scatter
  N(0, 0.5 AOI radius) per axis (LANDING_SD_AOI_RADII: 2 deg, about the endpoint scatter of
  20-30 deg saccades, 5-10 % of their amplitude, and the spread of landing positions on an
  8 deg object; ASSUMPTION). The first fixation's offset from its AOI and a refixation's
  corrective step have the same scatter. Duration from the main sequence, 21 ms +
  2.2 ms/deg (Carpenter 1988, Movements of the Eyes), minimum-jerk profile.
- Screen units to degrees: a 100 deg field of view (typical VR headset; ASSUMPTION).
- Tracker: 90 or 120 Hz per subject (HTC Vive Pro Eye / Pico Neo 3 Eye class devices),
  Gaussian noise 0.05-0.15 deg per subject (VR tracker precision, Sipatchin et al. 2021,
  Clin Ophthalmol 15:875-893, ASSUMPTION for the exact range), fixational drift as a
  random walk of 0.03 deg per sample (ASSUMPTION).
- Blinks: Poisson, 12 per minute during tasks (rest rate ~17/min falls during visual tasks,
  Bentivoglio et al. 1997, Mov Disord 12:1028-1034), 100-300 ms each, written as nan rows.
- Task length: uniform 20-40 s (ASSUMPTION; independent of impairment so that the
  recording length is not itself a label).

Everything is vectorised over subjects (the fixation chain) or over samples (rendering);
300 subjects x 5 tasks take a few seconds.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmse_model.core import csvsafe
from mmse_model.core.atomic import staged_dir
from mmse_model.core.conversion import normalised_to_vectors
from mmse_model.core.domain import FIELD_OF_VIEW_DEG, MMSE_MAX, SCORE_RANGES, SUBTOTAL_RANGE
from mmse_model.core.domain import TASKS as TASK_NAMES
from mmse_model.core.errors import InputError
from mmse_model.core.outputs import check_output_folder

# Q1..Q5, then the other MMSE items (language and praxis) that no task stands for.
ITEM_MAX = np.array(
    [*(int(high) for _, high in SCORE_RANGES.values()), MMSE_MAX - int(SUBTOTAL_RANGE[1])]
)
# Relative propensity of an item's points to be lost (ASSUMPTION, order from Ashford 1989).
LOSS_WEIGHTS = np.array([2.0, 0.8, 0.5, 1.6, 3.0, 0.35])

GROUPS = ("healthy", "mci", "dementia")
GROUP_PROPORTIONS = np.array([0.28, 0.49, 0.23])
MMSE_MEAN = np.array([29.1, 27.0, 21.0])
MMSE_SD = np.array([1.0, 1.8, 4.0])
MMSE_CLIP = np.array([[26, 30], [22, 30], [10, 27]])

SAMPLE_RATES_HZ = (90.0, 120.0)
DURATION_S = (20.0, 40.0)
FIXATION_MEDIAN_S = 0.250
FIXATION_SIGMA = 0.35
BLINKS_PER_S = 12.0 / 60.0
BLINK_S = (0.100, 0.300)
NOISE_DEG = (0.05, 0.15)
DRIFT_DEG_PER_SAMPLE = 0.03
AOI_RADIUS = 0.04
NEAR_SCALE = 0.35

# The gaze model's effect sizes (module docstring; all ASSUMPTIONS). A pair is
# (value for an unimpaired subject, change at s = 1 with the task's effect at 1).
IMPAIRMENT_WEIGHTS = (0.55, 0.45)  # own item deficit, global deficit
IMPAIRMENT_NOISE_SD = 0.10
DURATION_TRAIT_SIGMA = 0.15
DURATION_EFFECT = 0.8
ORDER_TRAIT = (0.8, 1.1)
REVISIT_P = (0.10, 0.45)
ORDER_P = (0.75, -0.65)
REFIXATION_P = (0.15, 0.30)
SACCADE_GAIN = (0.95, -0.25)
LANDING_SD_AOI_RADII = 0.5
LANDING_SD = LANDING_SD_AOI_RADII * AOI_RADIUS


@dataclass(frozen=True)
class Effects:
    """How strongly impairment changes each aspect of gaze in one task (0-1, ASSUMPTION)."""

    duration: float
    revisit: float
    disorder: float
    hypometria: float


@dataclass(frozen=True)
class TaskScene:
    """AOI centres (k, 2) of a task's VR scene, its canonical scan order, its effects."""

    aois: np.ndarray
    order: tuple[int, ...]
    effects: Effects


def _grid(xs: list[float], ys: list[float]) -> np.ndarray:
    return np.array([(x, y) for y in ys for x in xs])


TASKS: dict[str, TaskScene] = {
    # Time orientation: clock, calendar, window, newspaper, wristwatch; re-checking.
    "Q1": TaskScene(
        np.array([(0.5, 0.2), (0.2, 0.45), (0.8, 0.45), (0.35, 0.75), (0.65, 0.78)]),
        (0, 1, 2, 3, 4),
        Effects(duration=0.5, revisit=0.7, disorder=0.4, hypometria=0.3),
    ),
    # Place orientation: survey a room; search order and saccade length carry the signal.
    "Q2": TaskScene(
        np.array(
            [
                (0.15, 0.2),
                (0.5, 0.12),
                (0.85, 0.2),
                (0.88, 0.55),
                (0.75, 0.85),
                (0.4, 0.88),
                (0.12, 0.65),
                (0.5, 0.5),
            ]
        ),
        (0, 1, 2, 3, 4, 5, 6, 7),
        Effects(duration=0.3, revisit=0.3, disorder=0.9, hypometria=0.7),
    ),
    # Registration: three objects in a row; registration is preserved longest, weak effects.
    "Q3": TaskScene(
        np.array([(0.25, 0.5), (0.5, 0.5), (0.75, 0.5)]),
        (0, 1, 2),
        Effects(duration=0.6, revisit=0.2, disorder=0.2, hypometria=0.2),
    ),
    # Serial sevens on a keypad (1-9, *, 0, #): 93, 86, 79, 72, 65 as the orderly sequence.
    "Q4": TaskScene(
        _grid([0.38, 0.5, 0.62], [0.25, 0.43, 0.61, 0.79]),
        (8, 2, 7, 5, 6, 8, 6, 1, 5, 4),
        Effects(duration=0.7, revisit=0.5, disorder=0.6, hypometria=0.3),
    ),
    # Delayed recall: find the three remembered objects among nine; searching = revisits.
    "Q5": TaskScene(
        _grid([0.2, 0.5, 0.8], [0.2, 0.5, 0.8]),
        (0, 1, 2, 3, 4, 5, 6, 7, 8),
        Effects(duration=0.4, revisit=0.9, disorder=0.6, hypometria=0.4),
    ),
}


@dataclass(frozen=True)
class Cohort:
    subject_ids: list[str]
    group: np.ndarray  # (S,) index into GROUPS
    mmse: np.ndarray  # (S,) int
    items: np.ndarray  # (S, 6) int: Q1..Q5, other items


def simulate_cohort(n_subjects: int, rng: np.random.Generator) -> Cohort:
    """Groups, MMSE totals and item scores that sum to the total."""
    group = rng.choice(len(GROUPS), size=n_subjects, p=GROUP_PROPORTIONS)
    mmse = np.rint(rng.normal(MMSE_MEAN[group], MMSE_SD[group]))
    mmse = np.clip(mmse, MMSE_CLIP[group, 0], MMSE_CLIP[group, 1]).astype(int)
    items = np.tile(ITEM_MAX, (n_subjects, 1))
    weights = LOSS_WEIGHTS * rng.lognormal(0.0, 0.5, size=(n_subjects, len(ITEM_MAX)))
    to_lose = 30 - mmse
    for _ in range(int(to_lose.max(initial=0))):
        losing = to_lose > 0
        propensity = weights * items * losing[:, None]
        cumulative = np.cumsum(propensity, axis=1)
        pick = (rng.random(n_subjects)[:, None] * cumulative[:, -1:] < cumulative).argmax(axis=1)
        items[np.flatnonzero(losing), pick[losing]] -= 1
        to_lose -= losing
    ids = [f"synth{i:04d}" for i in range(n_subjects)]
    return Cohort(ids, group, mmse, items)


def task_impairment(cohort: Cohort, rng: np.random.Generator) -> np.ndarray:
    """(S, 5) impairment in [0, 1] per task: own item deficit, global deficit, noise."""
    item_deficit = 1.0 - cohort.items[:, :5] / ITEM_MAX[:5]
    global_deficit = np.clip((30 - cohort.mmse) / 20.0, 0.0, 1.0)[:, None]
    noise = rng.normal(0.0, IMPAIRMENT_NOISE_SD, size=item_deficit.shape)
    own, overall = IMPAIRMENT_WEIGHTS
    return np.clip(own * item_deficit + overall * global_deficit + noise, 0.0, 1.0)


def _gumbel_choice(log_weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One weighted draw per row (Gumbel-max), -inf weights never chosen."""
    return np.argmax(log_weights + rng.gumbel(size=log_weights.shape), axis=1)


@dataclass(frozen=True)
class GazeParameters:
    """Per-subject parameters of one task's fixation chain (arrays over subjects)."""

    p_revisit: np.ndarray
    p_order: np.ndarray
    p_refixation: np.ndarray
    gain: np.ndarray
    median_duration_s: np.ndarray


def gaze_parameters(
    effects: Effects, impairment: np.ndarray, traits: dict[str, np.ndarray]
) -> GazeParameters:
    """The module docstring's formulas for one task, given each subject's impairment s."""
    s = impairment
    return GazeParameters(
        p_revisit=REVISIT_P[0] + REVISIT_P[1] * effects.revisit * s,
        p_order=np.clip(
            traits["order"] * (ORDER_P[0] + ORDER_P[1] * effects.disorder * s), 0.0, 1.0
        ),
        p_refixation=REFIXATION_P[0] + REFIXATION_P[1] * effects.hypometria * s,
        gain=SACCADE_GAIN[0] + SACCADE_GAIN[1] * effects.hypometria * s,
        median_duration_s=FIXATION_MEDIAN_S
        * traits["duration"]
        * (1.0 + DURATION_EFFECT * effects.duration * s),
    )


def simulate_fixations(
    scene: TaskScene,
    impairment: np.ndarray,
    traits: dict[str, np.ndarray],
    n_fixations: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Fixation positions (S, F, 2) and durations (S, F) for all subjects at once."""
    n_subjects = len(impairment)
    aois, order = scene.aois, np.array(scene.order)
    k = len(aois)
    params = gaze_parameters(scene.effects, impairment, traits)
    p_revisit, p_order, p_refix = params.p_revisit, params.p_order, params.p_refixation
    gain, median = params.gain, params.median_duration_s
    aoi_distance = np.linalg.norm(aois[:, None] - aois[None], axis=2)  # (k, k)
    log_near = -aoi_distance / NEAR_SCALE
    np.fill_diagonal(log_near, -np.inf)

    rows = np.arange(n_subjects)
    pointer = rng.integers(0, len(order), size=n_subjects)
    current = order[pointer]
    visited = np.zeros((n_subjects, k), dtype=bool)
    visited[rows, current] = True
    position = aois[current] + rng.normal(0, LANDING_SD, (n_subjects, 2))
    positions = np.empty((n_subjects, n_fixations, 2))
    for f in range(n_fixations):
        positions[:, f] = position
        # Where to look next: refixate, revisit, follow the scan order, or roam nearby.
        u = rng.random(n_subjects)
        refix = u < p_refix
        revisit_options = visited.copy()
        revisit_options[rows, current] = False
        can_revisit = revisit_options.any(axis=1)
        revisit = ~refix & can_revisit & (rng.random(n_subjects) < p_revisit)
        orderly = ~refix & ~revisit & (rng.random(n_subjects) < p_order)
        roam = ~refix & ~revisit & ~orderly
        target = current.copy()
        with np.errstate(divide="ignore"):
            revisit_target = _gumbel_choice(np.log(revisit_options.astype(float)), rng)
        target[revisit] = revisit_target[revisit]
        next_pointer = (pointer + 1) % len(order)
        target[orderly] = order[next_pointer[orderly]]
        pointer = np.where(orderly, next_pointer, pointer)
        roam_target = _gumbel_choice(log_near[current], rng)
        target[roam] = roam_target[roam]
        landing = aois[target] + rng.normal(0, LANDING_SD, (n_subjects, 2))
        # Refixations are small corrective steps; other saccades land short by `gain`.
        step = np.where(
            refix[:, None],
            rng.normal(0, LANDING_SD, (n_subjects, 2)),
            gain[:, None] * (landing - position),
        )
        position = np.clip(position + step, 0.0, 1.0)
        current = target
        visited[rows, current] = True
    durations = median[:, None] * rng.lognormal(0.0, FIXATION_SIGMA, (n_subjects, n_fixations))
    return positions, durations


def render_recording(
    positions: np.ndarray,
    durations: np.ndarray,
    sample_rate: float,
    length_s: float,
    noise_deg: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """One recording (n, 3) of t, x, y from a fixation chain (F, 2), (F,)."""
    amplitude_deg = np.linalg.norm(np.diff(positions, axis=0), axis=1) * FIELD_OF_VIEW_DEG
    saccade_s = 0.021 + 0.0022 * amplitude_deg  # (F-1,) main sequence
    # Events alternate fixation f, saccade f (to fixation f+1); (2F-1,) durations.
    event_s = np.empty(2 * len(durations) - 1)
    event_s[0::2] = durations
    event_s[1::2] = saccade_s
    starts = np.concatenate(([0.0], np.cumsum(event_s)[:-1]))
    n = int(length_s * sample_rate)
    t = np.arange(n) / sample_rate
    event = np.searchsorted(starts, t, side="right") - 1  # events outlast length_s
    fixation = event // 2
    frac = np.clip((t - starts[event]) / event_s[event], 0.0, 1.0)
    jerk = frac**3 * (10 - 15 * frac + 6 * frac**2)  # minimum-jerk position profile
    in_saccade = (event % 2 == 1)[:, None]
    later = positions[np.minimum(fixation + 1, len(positions) - 1)]
    xy = positions[fixation] + np.where(
        in_saccade, jerk[:, None] * (later - positions[fixation]), 0
    )
    # Fixational drift: a random walk that restarts with each event.
    walk = np.cumsum(rng.normal(0, DRIFT_DEG_PER_SAMPLE / FIELD_OF_VIEW_DEG, (n, 2)), axis=0)
    first_sample = np.searchsorted(t, starts)[event]
    xy += walk - walk[np.minimum(first_sample, n - 1)]
    xy += rng.normal(0, noise_deg / FIELD_OF_VIEW_DEG, (n, 2))
    xy = np.clip(xy, 0.0, 1.0)
    # Blinks: Poisson onsets, each blanking 100-300 ms.
    n_blinks = rng.poisson(BLINKS_PER_S * length_s)
    onsets = rng.uniform(0, length_s, n_blinks)
    ends = onsets + rng.uniform(*BLINK_S, n_blinks)
    blink = np.zeros(n + 1, dtype=int)
    np.add.at(blink, np.searchsorted(t, onsets), 1)
    np.add.at(blink, np.searchsorted(t, ends), -1)
    xy[np.cumsum(blink)[:n] > 0] = np.nan
    return np.column_stack((t, xy))


def _csv_text(samples: np.ndarray) -> str:
    # One %-format over the whole array runs in C; np.savetxt formats row by row in Python.
    row = "%.4f,%.5f,%.5f\n"
    return "t,x,y\n" + (row * len(samples)) % tuple(samples.ravel().tolist())


def _vectors_text(samples: np.ndarray) -> str:
    """The recording as t,dx,dy,dz,valid: the gaze of the t,x,y text, read back as the
    builder reads it (so both files hold the same numbers to 1e-10), as unit vectors looking
    down +z over FIELD_OF_VIEW_DEG; a blink is a zero vector flagged invalid, as SRanipal
    writes one."""
    txy = np.loadtxt(io.StringIO(_csv_text(samples)), delimiter=",", skiprows=1, ndmin=2)
    valid = np.all(np.isfinite(txy[:, 1:]), axis=1)
    vectors = np.zeros((len(txy), 3))
    vectors[valid] = normalised_to_vectors(txy[valid, 1:], "+z", FIELD_OF_VIEW_DEG)
    table = np.column_stack((txy[:, 0], vectors, valid))  # (n, 5)
    row = "%.4f,%.10f,%.10f,%.10f,%d\n"
    return "t,dx,dy,dz,valid\n" + (row * len(table)) % tuple(table.ravel().tolist())


RECORDING_WRITERS = {"txy": _csv_text, "vectors": _vectors_text}


def synthesize(
    out: Path,
    n_subjects: int = 300,
    seed: int = 0,
    *,
    duration_s: tuple[float, float] = DURATION_S,
    sample_rates_hz: tuple[float, ...] = SAMPLE_RATES_HZ,
    gaze_format: str = "txy",
) -> Cohort:
    """Write a synthetic cohort to `out` (see the module docstring). Returns the cohort.

    `gaze_format` is "txy" or "vectors"; one seed gives the same gaze in either.

    `duration_s` and `sample_rates_hz` exist for fast tests; the CLI keeps the defaults.
    The directory is assembled in a temporary sibling and moved into place, so an
    interrupted run leaves nothing half-written; an existing non-empty `out` is refused.
    """
    if n_subjects < 1:
        raise InputError(f"--subjects {n_subjects}: expected an integer >= 1")
    if gaze_format not in RECORDING_WRITERS:
        raise InputError(f"--format {gaze_format}: expected one of {', '.join(RECORDING_WRITERS)}")
    write_text = RECORDING_WRITERS[gaze_format]
    check_output_folder(out, replaces=True, command="mmse data synth")  # new or empty
    rng = np.random.default_rng(seed)
    cohort = simulate_cohort(n_subjects, rng)
    impairment = task_impairment(cohort, rng)
    traits = {
        "duration": rng.lognormal(0.0, DURATION_TRAIT_SIGMA, n_subjects),
        "order": rng.uniform(*ORDER_TRAIT, n_subjects),
    }
    sample_rate = rng.choice(np.array(sample_rates_hz, dtype=float), n_subjects)
    noise_deg = rng.uniform(*NOISE_DEG, n_subjects)
    # Enough fixations to outlast the longest task even at the shortest durations.
    n_fixations = int(duration_s[1] / 0.05) + 1

    with staged_dir(out) as staging:
        for q, (task, scene) in enumerate(TASKS.items()):
            positions, durations = simulate_fixations(
                scene, impairment[:, q], traits, n_fixations, rng
            )
            lengths = rng.uniform(*duration_s, n_subjects)
            for s, subject in enumerate(cohort.subject_ids):
                samples = render_recording(
                    positions[s], durations[s], sample_rate[s], lengths[s], noise_deg[s], rng
                )
                path = staging / "recordings" / subject / f"{task}.csv"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(write_text(samples), encoding="utf-8")
        _write_labels(staging / "labels.csv", cohort)
        (staging / "SYNTHETIC.txt").write_text(
            _readme(n_subjects, seed, gaze_format), encoding="utf-8"
        )
    return cohort


def _write_labels(path: Path, cohort: Cohort) -> None:
    rows = (
        [subject, *(int(v) for v in items[:5]), int(mmse), GROUPS[group]]
        for subject, items, mmse, group in zip(
            cohort.subject_ids, cohort.items, cohort.mmse, cohort.group
        )
    )
    text = csvsafe.csv_text(["subject_id", *TASK_NAMES, "mmse", "group"], rows)
    path.write_text(text, encoding="utf-8")


def _readme(n_subjects: int, seed: int, gaze_format: str = "txy") -> str:
    return (
        "SYNTHETIC DATA - not recorded from any person.\n"
        f"Generated by mmse_model.synth.cohort (mmse data synth) with {n_subjects} subjects, "
        f"seed {seed}, recordings as {gaze_format} (build them with --format {gaze_format}).\n"
        "Every parameter and its source is documented in mmse_model/synth/cohort.py.\n"
    )
