"""Where the Theiler window comes from: how long gaze stays trivially recurrent.

    python benchmarks/rqa_theiler.py [--subjects 80] [--seed 0] [--cohort DIR]

On a SYNTHETIC cohort (`mmse data synth`, or `--cohort DIR`), every recording of the first
`--subjects` subjects resampled to RQA_RATE_HZ as the builder does, this prints

- the lag-recurrence curve of each demo signature: RR(k), the fraction of state-vector
  pairs k samples apart that are recurrent, with its plateau (the mean over 1.5-2 s, where
  pairs recur only because gaze came back) and the lags at which the excess over the
  plateau has fallen to 1/2, 1/e and 1/10 of its value at lag 0;
- the durations of I-VT fixations (mmse_model.features.fixations, Olsen 2012's defaults).

docs/rqa.md ("Theiler window") quotes these figures (`--subjects 80 --seed 0`, the demo
cohort).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np

from mmse_model.core.domain import RQA_RATE_HZ, TASKS, parse_signature
from mmse_model.features.build import state_vectors, theiler_window
from mmse_model.features.fixations import fixation_spans
from mmse_model.features.recordings import read_recording, resample
from mmse_model.features.rqa import squared_threshold
from mmse_model.synth import cohort as synth

DEMO_SIGNATURES = ("m2_tau1_eps0.055_lmin2", "m3_tau3_eps0.08_lmin3")
MAX_LAG_S = 2.0
PLATEAU_S = (1.5, 2.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjects", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cohort", type=Path, help="an existing `mmse data synth` folder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        cohort = args.cohort
        if cohort is None:
            cohort = Path(tmp) / "cohort"
            synth.synthesize(cohort, n_subjects=args.subjects, seed=args.seed)
        subjects = sorted(p.name for p in (cohort / "recordings").iterdir())[: args.subjects]
        recordings = [
            resample(read_recording(cohort / "recordings" / s / f"{task}.csv"), RQA_RATE_HZ)
            for s in subjects
            for task in TASKS
        ]

    lags = np.arange(int(MAX_LAG_S * RQA_RATE_HZ) + 1)
    plateau = (lags >= PLATEAU_S[0] * RQA_RATE_HZ) & (lags <= PLATEAU_S[1] * RQA_RATE_HZ)
    print(
        f"{len(recordings)} recordings ({len(subjects)} subjects x {len(TASKS)} tasks) "
        f"at {RQA_RATE_HZ:g} Hz;"
        f" the builder's Theiler window: {theiler_window('trajectory')} samples"
    )
    for name in DEMO_SIGNATURES:
        signature = parse_signature(name)
        threshold = squared_threshold(signature.eps)
        recurrent, pairs = np.zeros(len(lags)), np.zeros(len(lags))
        for recording in recordings:
            vectors = state_vectors(recording, signature, "trajectory")
            for k in lags[lags < len(vectors)]:
                squared = ((vectors[k:] - vectors[: len(vectors) - k]) ** 2).sum(axis=1)
                recurrent[k] += (squared < threshold).sum()
                pairs[k] += len(squared)
        rr = recurrent / pairs
        base = rr[plateau].mean()
        excess = (rr - base) / (rr[0] - base)
        print(f"\n{name}: plateau RR {base:.3f}")
        for seconds in (0.05, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0):
            k = round(seconds * RQA_RATE_HZ)
            print(f"  lag {seconds * 1000:4.0f} ms: RR {rr[k]:.3f}, excess {excess[k]:.2f}")
        for label, level in (("1/2", 0.5), ("1/e", np.exp(-1)), ("1/10", 0.1)):
            k = int(np.argmax(excess < level))
            print(f"  excess below {label:4s} from lag {k} ({k / RQA_RATE_HZ * 1000:.0f} ms)")

    durations = np.concatenate(
        [(ends - starts) / RQA_RATE_HZ for starts, ends in map(fixation_spans, recordings)]
    )
    q25, q50, q75 = np.percentile(durations, [25, 50, 75])
    print(
        f"\nI-VT fixations: {len(durations)}, median {q50 * 1000:.0f} ms"
        f" (quartiles {q25 * 1000:.0f}-{q75 * 1000:.0f} ms), mean {durations.mean() * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
