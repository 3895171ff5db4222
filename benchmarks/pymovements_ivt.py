"""Our I-VT fixation detector against pymovements' on the SYNTHETIC cohort (issue 29).

    python -m venv /tmp/pm-venv && /tmp/pm-venv/bin/pip install pymovements pydantic pyyaml
    PYTHONPATH=. /tmp/pm-venv/bin/python benchmarks/pymovements_ivt.py [--subjects 40]

pymovements is not a dependency of this project: run this from a scratch environment that
has it (never the project's .venv). Every recording of the first `--subjects` subjects of a
SYNTHETIC cohort (`--seed`, or `--cohort DIR`) is read and resampled to RQA_RATE_HZ as the
builder does, then

- ours: `mmse_model.features.fixations.fixation_spans` (Olsen 2012: 30 deg/s over a ~20 ms
  window, 60 ms minimum, a blink anywhere in the window ends a fixation);
- pymovements: normalised coordinates to degrees (linear, as the headset conversion defines
  them: pix2deg assumes a flat screen at a distance and has no place here), `pos2vel`
  (method "neighbors": the same +-1 sample window at 90 Hz) and `ivt` with the same
  threshold and minimum duration, timesteps in ms.

It prints how many fixations each finds, how many are the same sample range, how many match
within +-1 sample at both ends, the largest centroid difference of those, the fixations
only one finds, and the time per recording of each (detection only, best of `--repeat`).
docs/rqa.md ("Fixations: ours or pymovements'") quotes these figures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np

from mmse_model.core.domain import FIELD_OF_VIEW_DEG, RQA_RATE_HZ, TASKS
from mmse_model.features.fixations import (
    MIN_FIXATION_S,
    VELOCITY_THRESHOLD_DEG_S,
    fixation_spans,
)
from mmse_model.features.recordings import read_recording, resample
from mmse_model.synth import cohort as synth


def pymovements_spans(recording) -> tuple[np.ndarray, np.ndarray]:
    """pymovements' I-VT on a resampled recording: (starts, ends exclusive) in samples."""
    from pymovements.events import ivt
    from pymovements.transforms.numpy import pos2vel

    degrees = (recording.xy - 0.5) * FIELD_OF_VIEW_DEG  # (n, 2); NaN where invalid
    velocities = pos2vel(degrees, sampling_rate=RQA_RATE_HZ, method="neighbors")
    t_ms = (recording.t - recording.t[0]) * 1000.0
    events = ivt(
        velocities,
        timesteps=t_ms,
        minimum_duration=MIN_FIXATION_S * 1000.0,
        velocity_threshold=VELOCITY_THRESHOLD_DEG_S,
    )
    frame = events.frame
    onsets = np.rint(frame["onset"].to_numpy() * RQA_RATE_HZ / 1000.0).astype(np.int64)
    offsets = np.rint(frame["offset"].to_numpy() * RQA_RATE_HZ / 1000.0).astype(np.int64)
    return onsets, offsets + 1


def centroids(recording, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    return np.array([np.nanmean(recording.xy[s:e], axis=0) for s, e in zip(starts, ends)])


def compare(recording, ours, theirs) -> dict[str, float]:
    """Fixations matched by their sample ranges: identical, or both ends within one sample."""
    ours_set = set(zip(*map(np.ndarray.tolist, ours)))
    theirs_list = list(zip(*map(np.ndarray.tolist, theirs)))
    identical = sum(1 for span in theirs_list if span in ours_set)
    near, at_edges, centroid_gap, matched_theirs = 0, 0, 0.0, set()
    n = len(recording.t)
    our_centroids = centroids(recording, *ours) if len(ours[0]) else np.empty((0, 2))
    for i, (start, end) in enumerate(zip(*ours)):
        for j, (s, e) in enumerate(theirs_list):
            if j not in matched_theirs and abs(s - start) <= 1 and abs(e - end) <= 1:
                matched_theirs.add(j)
                near += 1
                # a one-sample difference at the recording's first or last sample
                at_edges += (s, e) != (start, end) and (min(s, start) == 0 or max(e, end) == n)
                gap = np.abs(centroids(recording, [s], [e])[0] - our_centroids[i]).max()
                centroid_gap = max(centroid_gap, float(gap) * FIELD_OF_VIEW_DEG)
                break
    return {
        "ours": len(ours[0]),
        "theirs": len(theirs_list),
        "identical": identical,
        "near": near,
        "at_edges": at_edges,
        "only_ours": len(ours[0]) - near,
        "only_theirs": len(theirs_list) - near,
        "centroid_gap_deg": centroid_gap,
    }


def best_time(function, argument, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function(argument)
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjects", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cohort", type=Path, help="an existing cohort (default: synthesise)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        cohort = args.cohort
        if cohort is None:
            cohort = Path(scratch) / "cohort"
            synth.synthesize(cohort, n_subjects=args.subjects, seed=args.seed)
        subjects = sorted(p.name for p in (cohort / "recordings").iterdir())[: args.subjects]
        totals: dict[str, float] = {}
        ours_s, theirs_s, n = 0.0, 0.0, 0
        for subject in subjects:
            for task in TASKS:
                path = cohort / "recordings" / subject / f"{task}.csv"
                recording = resample(read_recording(path), RQA_RATE_HZ)
                ours, theirs = fixation_spans(recording), pymovements_spans(recording)
                for key, value in compare(recording, ours, theirs).items():
                    if key == "centroid_gap_deg":
                        totals[key] = max(totals.get(key, 0.0), value)
                    else:
                        totals[key] = totals.get(key, 0) + value
                ours_s += best_time(fixation_spans, recording, args.repeat)
                theirs_s += best_time(pymovements_spans, recording, args.repeat)
                n += 1
    print(f"SYNTHETIC cohort: {len(subjects)} subjects x {len(TASKS)} tasks = {n} recordings")
    print(f"fixations: ours {totals['ours']:.0f}, pymovements {totals['theirs']:.0f}")
    print(
        f"same sample range: {totals['identical']:.0f} "
        f"({totals['identical'] / max(totals['ours'], 1):.1%} of ours); "
        f"both ends within 1 sample ({1000 / RQA_RATE_HZ:.1f} ms): {totals['near']:.0f} "
        f"({totals['near'] / max(totals['ours'], 1):.1%}), of which "
        f"{totals['near'] - totals['identical']:.0f} differ, "
        f"{totals['at_edges']:.0f} of them at a recording's first or last sample"
    )
    print(
        f"only ours: {totals['only_ours']:.0f}, only pymovements: {totals['only_theirs']:.0f}; "
        f"largest centroid difference of a matched fixation: "
        f"{totals['centroid_gap_deg']:.3f} deg"
    )
    print(
        f"time per recording (detection only, best of {args.repeat}): ours "
        f"{1000 * ours_s / n:.2f} ms, pymovements {1000 * theirs_s / n:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
