"""How fast the SYNTHETIC cohort is written: 300 subjects x 5 tasks, as `mmse data synth`.

Prints recordings per second for the simulator as shipped and for a baseline that formats
the CSV text with `np.savetxt` (row by row in Python) instead of one `%`-format over the
whole array, both in this process, best of `--repeat` runs each.

    python benchmarks/synth_speed.py [--subjects 300] [--repeat 2]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

from mmse_model.synth import cohort as synth


def savetxt_csv(samples: np.ndarray) -> str:
    buffer = io.StringIO()
    np.savetxt(
        buffer, samples, fmt=("%.4f", "%.5f", "%.5f"), delimiter=",", header="t,x,y", comments=""
    )
    return buffer.getvalue()


def timed(n_subjects: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            synth.synthesize(Path(tmp) / "cohort", n_subjects=n_subjects, seed=0)
            best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    recordings = 5 * args.subjects
    shipped = timed(args.subjects, args.repeat)
    with mock.patch.object(synth, "_csv_text", savetxt_csv):
        baseline = timed(args.subjects, args.repeat)
    print(f"synth {args.subjects} subjects ({recordings} recordings), best of {args.repeat}")
    print(
        "  shipped (one %-format per recording): "
        f"{shipped:6.2f} s  {recordings / shipped:7.1f} rec/s"
    )
    print(
        "  baseline (np.savetxt):"
        f"                 {baseline:6.2f} s  {recordings / baseline:7.1f} rec/s"
    )
    print(f"speed-up: {baseline / shipped:.2f}x")


if __name__ == "__main__":
    main()
