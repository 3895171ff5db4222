"""The per-worker loop on a CUDA device against the same runs on the CPU, without Ray.

For a machine with a GPU and no Ray (the Ray-level CUDA test is tests/ray/test_gpu_cuda.py):
one `mmse train`-style run, one packed run of several signatures (S*K members in one batched
model) and one outer repeat of the nested estimate (two samples), each on `cuda` and on
`cpu`, on planted data. Prints the figures and exits 1 when a CUDA run ends elsewhere than
its CPU twin.

    python scripts/gpu_check.py [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from mmse_model.core.config import Config
from mmse_model.sweeps.nested import NETWORK, OuterRepeat, run_repeat
from mmse_model.training.callbacks import NullReporter
from mmse_model.training.held_out import evaluate_on_test
from mmse_model.training.loop import RunSpec, load_run_data, train_run
from tests.fixtures.toy_data import write_planted_root

SIGNATURES = {
    "m2_tau1_eps0.055_lmin2": 1.0,
    "m3_tau2_eps0.1_lmin2": 0.2,
    "m3_tau3_eps0.08_lmin3": 0.6,
}
OVERRIDES = ["training.epochs=40", "split.folds=5", "training.checkpoint_every=0"]


def one_run(root: Path, signatures: tuple[str, ...], device: str) -> tuple[dict, float]:
    run = RunSpec(str(root), signatures, "Q1", Config().with_overrides(OVERRIDES))
    group, split = load_run_data(run)
    started = time.perf_counter()
    outcome = train_run(run, NullReporter(), device=device)
    seconds = time.perf_counter() - started
    payload = outcome.checkpoint
    figures = {}
    for signature in signatures:
        state = payload.state(signature)
        test = evaluate_on_test(payload, group.task_data(signature), split, signature)
        figures[signature] = (
            state.stop_epoch or payload.epoch,
            state.best_metrics["rmse"],
            test["rmse"],
        )
    return figures, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 1
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
    root = write_planted_root(
        Path(args.out or tempfile.mkdtemp()) / "data", SIGNATURES, n_subjects=300
    )
    failures = 0
    for label, signatures in (
        ("one signature", tuple(SIGNATURES)[:1]),
        ("packed, 3 signatures", tuple(SIGNATURES)),
    ):
        gpu, gpu_s = one_run(root, signatures, "cuda")
        cpu, cpu_s = one_run(root, signatures, "cpu")
        print(f"{label}: cuda {gpu_s:.1f} s, cpu {cpu_s:.1f} s")
        for signature in signatures:
            (ge, gsel, gtest), (ce, csel, ctest) = gpu[signature], cpu[signature]
            same = (
                ge == ce and abs(gtest - ctest) <= 1e-3 * ctest and abs(gsel - csel) <= 1e-3 * csel
            )
            failures += not same
            print(
                f"  {signature}: epochs {ge} vs {ce}; selection RMSE {gsel:.5f} vs {csel:.5f}; "
                f"test RMSE {gtest:.5f} vs {ctest:.5f} {'ok' if same else 'DIFFERENT'}"
            )
    repeat = OuterRepeat(
        str(root),
        "Q1",
        tuple(SIGNATURES),
        Config().with_overrides([*OVERRIDES, "split.seed=7"]),
        ({}, {"training.lr": 0.003}),
    )
    gpu_repeat, cpu_repeat = run_repeat(repeat, "cuda"), run_repeat(repeat, "cpu")
    gpu, cpu = gpu_repeat.models[NETWORK], cpu_repeat.models[NETWORK]
    same = (gpu_repeat.sample, gpu.signature) == (cpu_repeat.sample, cpu.signature) and abs(
        gpu.rmse - cpu.rmse
    ) <= 1e-3 * cpu.rmse
    failures += not same
    print(
        f"outer repeat: cuda chose sample {gpu_repeat.sample}, {gpu.signature} "
        f"(test RMSE {gpu.rmse:.5f}), cpu chose "
        f"sample {cpu_repeat.sample}, {cpu.signature} ({cpu.rmse:.5f}) "
        f"{'ok' if same else 'DIFFERENT'}"
    )
    print("all CUDA runs end where their CPU twins end" if not failures else f"{failures} differ")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
