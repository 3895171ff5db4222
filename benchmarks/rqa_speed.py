"""Recordings per second: our blocked RQA (the builder's path) vs pyunicorn's RecurrencePlot.

    python benchmarks/rqa_speed.py [--repeats 5]

Same process, same recordings (simulated gaze, trajectory mode, m2_tau1_eps0.055_lmin2),
one thread. At 3,000 samples both run, ours without a Theiler window (w = 0, what pyunicorn
computes) and with the builder's; at 36,000 samples (5 min at 120 Hz) only ours does, with
the builder's window: pyunicorn's full float64 distance matrix alone would need n^2 x 8
bytes, which the script prints instead of exhausting the machine. The 36,000-sample run
happens in a child process so that its peak RSS is its own. Last, one 30 s recording at
120 Hz as the builder processes it (read to features: resampled to 90 Hz, windowed).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads: one core, as the issue asks

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np

from mmse_model.core.domain import parse_signature
from mmse_model.features.build import recording_features, state_vectors, theiler_window
from mmse_model.features.recordings import Recording
from mmse_model.features.rqa import rqa_measures
from mmse_model.synth import cohort as synth

SIGNATURE = parse_signature("m2_tau1_eps0.055_lmin2")
THEILER = theiler_window("trajectory")
GIB = 1024**3


def simulated_recordings(n_samples: int, count: int, seed: int = 0) -> list[Recording]:
    """`count` gaze recordings of exactly n_samples at 120 Hz from the cohort simulator."""
    rng = np.random.default_rng(seed)
    cohort = synth.simulate_cohort(count, rng)
    impairment = synth.task_impairment(cohort, rng)
    traits = {"duration": np.ones(count), "order": np.ones(count)}
    length_s = n_samples / 120.0
    n_fix = int(length_s / 0.05) + 1
    positions, durations = synth.simulate_fixations(
        synth.TASKS["Q5"], impairment[:, 4], traits, n_fix, rng
    )
    recordings = []
    for s in range(count):
        samples = synth.render_recording(positions[s], durations[s], 120.0, length_s + 1, 0.25, rng)
        samples = samples[:n_samples]
        t, xy = samples[:, 0], samples[:, 1:]
        recordings.append(Recording(t, xy, np.isfinite(xy).all(axis=1)))
    return recordings


def ours(recording: Recording, theiler: int = 0) -> np.ndarray:
    vectors = state_vectors(recording, SIGNATURE, "trajectory")
    return rqa_measures(vectors, SIGNATURE.eps, SIGNATURE.lmin, theiler=theiler)


def ours_windowed(recording: Recording) -> np.ndarray:
    return ours(recording, THEILER)


def as_built(recording: Recording) -> np.ndarray:
    return recording_features(recording, [SIGNATURE], "trajectory")


def theirs(recording: Recording) -> np.ndarray:
    from pyunicorn.timeseries import RecurrencePlot

    vectors = state_vectors(recording, SIGNATURE, "trajectory")
    rp = RecurrencePlot(vectors, metric="euclidean", threshold=SIGNATURE.eps, silence_level=3)
    lmin = SIGNATURE.lmin
    return np.array(
        [
            rp.recurrence_rate(),
            rp.determinism(lmin),
            rp.average_diaglength(lmin),
            rp.max_diaglength(),
            rp.diag_entropy(lmin),
            rp.laminarity(lmin),
            rp.trapping_time(lmin),
            rp.max_vertlength(),
            rp.vert_entropy(lmin),
            rp.mean_recurrence_time(),
        ],
        dtype=float,
    )


def rate(fn, recordings: list[Recording]) -> tuple[float, list[np.ndarray]]:
    start = time.perf_counter()
    outputs = [fn(r) for r in recordings]
    return len(recordings) / (time.perf_counter() - start), outputs


def long_run() -> None:
    """Child process: one 36,000-sample recording; prints JSON with time and peak RSS."""
    recording = simulated_recordings(36_000, 1, seed=1)[0]
    start = time.perf_counter()
    ours(recording, THEILER)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_rss_bytes": peak_rss_bytes()}))


def peak_rss_bytes() -> int:
    """This process's peak RSS. VmHWM, not getrusage: ru_maxrss survives fork and exec, so
    a child would report its parent's peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="recordings per size")
    parser.add_argument("--long-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.long_child:
        long_run()
        return

    recordings = simulated_recordings(3_000, args.repeats)
    ours(recordings[0]), ours_windowed(recordings[0]), theirs(recordings[0])  # warm up
    ours_rate, ours_out = rate(ours, recordings)
    windowed_rate, _ = rate(ours_windowed, recordings)
    theirs_rate, theirs_out = rate(theirs, recordings)
    worst = max(
        float(np.max(np.abs(a - b)[[0, 1, 2, 4, 5, 6, 8, 9]])) for a, b in zip(ours_out, theirs_out)
    )
    print(f"3,000 samples, {args.repeats} recordings, 1 thread")
    print(f"  ours       {ours_rate:8.2f} recordings/s (w = 0)")
    print(f"  ours       {windowed_rate:8.2f} recordings/s (w = {THEILER}, the builder's window)")
    print(f"  pyunicorn  {theirs_rate:8.2f} recordings/s")
    print(f"  ratio      {ours_rate / theirs_rate:8.2f} x  at w = 0 (max |difference| {worst:.1e})")

    child = subprocess.run(
        [sys.executable, __file__, "--long-child"], capture_output=True, text=True, check=True
    )
    long = json.loads(child.stdout.strip().splitlines()[-1])
    n = 36_000 - (SIGNATURE.m - 1) * SIGNATURE.tau
    print(f"36,000 samples, 1 recording, 1 thread, w = {THEILER}")
    print(
        f"  ours       {1 / long['seconds']:8.3f} recordings/s ({long['seconds']:.1f} s),"
        f" peak RSS {long['peak_rss_bytes'] / GIB:.3f} GiB (bound 1 GiB)"
    )
    print(
        f"  pyunicorn  not run: its float64 distance matrix alone is {n * n * 8 / GIB:.1f} GiB,"
        f" plus {n * n / GIB:.1f} GiB for the int8 recurrence matrix"
    )

    built = simulated_recordings(3_600, args.repeats, seed=2)
    as_built(built[0])
    raw_rate, _ = rate(ours, built)
    built_rate, _ = rate(as_built, built)
    print(f"30 s at 120 Hz (3,600 samples), {args.repeats} recordings, 1 thread")
    print(
        f"  as recorded, w = 0        {raw_rate:8.2f} recordings/s (the builder before docs/rqa.md)"
    )
    print(f"  resampled to 90 Hz, w = {THEILER} {built_rate:8.2f} recordings/s (the builder now)")


if __name__ == "__main__":
    main()
