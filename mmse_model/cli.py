"""`mmse`: the command-line front of the trainer (DESIGN.md section 8).

Exit status: 0 done; 2 bad input or usage (one line on stderr, no traceback); 1 anything
else. Heavy imports happen inside the commands so `--help` stays quick.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from mmse_model.errors import InputError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for any bad input
        raise InputError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mmse", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="train one (signature, task): K-fold CV, in-process or on Ray")
    train.add_argument("--data", required=True, help="data root holding <sig>/<Q>.npz")
    train.add_argument("--sig", required=True, help="RQA signature, e.g. m2_tau1_eps0.055_lmin2")
    train.add_argument("--q", required=True, help="task, Q1..Q5")
    train.add_argument("--config", help="YAML config (default: built-in defaults, configs/default.yaml)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override one config key, e.g. training.lr=0.01 (repeatable)")
    train.add_argument("--out", required=True, help="output folder (must not hold a run yet)")
    train.add_argument("--no-ray", action="store_true", help="run the loop in this process")
    train.add_argument("--storage", help="Ray storage path or URI for checkpoints (default: --out)")
    train.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local instance)")
    train.add_argument("--device", default="cpu", help="torch device for --no-ray (cpu, cuda, cuda:1)")
    train.set_defaults(func=_train)

    sweep = commands.add_parser("sweep", help="ASHA sweep over every signature and task on Ray Tune")
    sweep.add_argument("--config", required=True, help="sweep YAML (configs/sweep.yaml, configs/demo.yaml)")
    sweep.add_argument("--data", help="data root (overrides the sweep config's data_root)")
    sweep.add_argument("--storage", help="storage path or URI (overrides the sweep config's storage)")
    sweep.add_argument("--resume", action="store_true", help="continue an interrupted sweep")
    sweep.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local instance)")
    sweep.set_defaults(func=_sweep)

    predict = commands.add_parser("predict", help="predict sub-scores for new subjects with a trained model")
    predict.add_argument("--model", required=True, help="checkpoint folder or model.pt (e.g. RUN/model)")
    predict.add_argument("--input", required=True, help="features: .npz with X (N, 10) or .csv with subject_id + 10 columns")
    predict.add_argument("--out", required=True, help="CSV to write: subject_id, prediction, fold_sd")
    predict.set_defaults(func=_predict)

    demo = commands.add_parser(
        "demo", help="the whole pipeline on a synthetic cohort: synth, RQA build, ASHA sweep (local Ray)"
    )
    demo.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    demo.add_argument("--subjects", type=int, default=300, help="synthetic cohort size (default 300)")
    demo.set_defaults(func=_demo)

    from mmse_model.features.cli import add_data_commands

    add_data_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"mmse: error: {exc}", file=sys.stderr)
        return 2


def _refuse_existing_run(out: Path) -> None:
    if (out / "result.json").exists():
        raise InputError(f"{out}: already holds a run (result.json); choose another --out")


def _train(args: argparse.Namespace) -> int:
    from mmse_model.config import load_config

    config = load_config(args.config, args.set)
    out = Path(args.out)
    _refuse_existing_run(out)
    if args.no_ray:
        return _train_in_process(args.data, args.sig, args.q, config, out, args.device)
    from ray_jobs.train import run_one

    result = run_one(args.data, args.sig, args.q, config, out, args.storage, args.address)
    _write_json(out / "result.json", result)
    test = result["test"]
    print(f"{args.q} on {args.sig} (Ray): best epoch {result['best_epoch']}, "
          f"val RMSE {result['cv']['val/rmse']:.3f}; test RMSE {test['rmse']:.3f}, R^2 {test['r2']:.3f}, "
          f"calibration slope {test['calibration_slope']:.2f} (n = {test['n']})")
    print(f"wrote {out}/model (checkpoint), {out}/result.json; Ray checkpoints in {result['checkpoint_uri']}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from mmse_model.sweep_config import load_sweep_config

    sweep = load_sweep_config(args.config, args.data, args.storage)
    from ray_jobs.guard import SweepStalled
    from ray_jobs.sweep import run_sweep  # imports Ray: only once the config is known good

    try:
        run_sweep(sweep, resume=args.resume, address=args.address)
    except SweepStalled as exc:
        print(f"mmse: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _train_in_process(data_root, signature, task, config, out: Path, device: str) -> int:
    from mmse_model import checkpoint as ckpt
    from mmse_model.callbacks import DirectoryReporter, FileLogger, TensorBoardLogger
    from mmse_model.evaluate import evaluate_on_test
    from mmse_model.report_text import format_metrics_table
    from mmse_model.trainer import RunSpec, train_task

    run = RunSpec(str(data_root), signature, task, config)
    outcome = train_task(
        run,
        DirectoryReporter(out),
        device=device,
        extra_callbacks=[TensorBoardLogger(out / "tensorboard"), FileLogger(out / "train.log")],
    )
    ckpt.save_checkpoint(out / "model", outcome.checkpoint)
    test = evaluate_on_test(outcome.checkpoint, outcome.data, outcome.split)
    result = {
        "signature": signature,
        "task": task,
        "score_range": list(config.score_range(task)),
        "epochs_run": outcome.fit.final_epoch,
        "best_epoch": outcome.fit.best_epoch,
        "stop_reason": outcome.fit.stop_reason,
        "train_seconds": outcome.fit.total_time,
        "cv": outcome.final_metrics,
        "test": test,
        "test_subjects": list(outcome.split.test_subjects),
        "n_subjects": int(len(outcome.data.subjects)),
        "config": config.to_dict(),
    }
    _write_json(out / "result.json", result)
    print(format_metrics_table(signature, task, outcome.final_metrics, test, outcome.fit))
    print(f"wrote {out}/model (checkpoint), {out}/tensorboard, {out}/result.json")
    return 0


DEMO_SIGNATURES = ("m2_tau1_eps0.055_lmin2", "m3_tau3_eps0.08_lmin3")
DEMO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"


def _demo(args: argparse.Namespace) -> int:
    """Synthetic cohort -> RQA datasets (Ray tasks) -> ASHA sweep (Ray Tune + Train) -> summary."""
    from mmse_model.sweep_config import load_sweep_config

    out = Path(args.out).resolve()
    sweep = load_sweep_config(str(DEMO_CONFIG), str(out / "data"), str(out / "runs"))
    experiment = out / "runs" / sweep.name
    if (experiment / "summary.json").exists():
        raise InputError(f"{out}: already holds a finished demo ({experiment}); choose another --out")
    if args.subjects < 1:
        raise InputError(f"--subjects {args.subjects}: expected a positive number")

    import warnings

    from mmse_model.features.build import BuildWarning, build_datasets
    from mmse_model.synth import synthesize
    from ray_jobs.build_datasets import run_on_ray
    from ray_jobs.sweep import run_sweep
    from ray_jobs.train import connect

    cohort = out / "cohort"
    if not (cohort / "labels.csv").exists():
        synthesize(cohort, n_subjects=args.subjects, seed=0)
    print(f"demo 1/3: SYNTHETIC cohort of {args.subjects} subjects in {cohort}", flush=True)
    connect(None, sweep.base_config())  # one local Ray instance for the build and the sweep
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BuildWarning)  # skips are listed in build_report.csv
        report = build_datasets(cohort / "recordings", cohort / "labels.csv", list(DEMO_SIGNATURES),
                                out / "data", "trajectory", run_on_ray)
    print(f"demo 2/3: {len(report.written)} RQA datasets in {out / 'data'} "
          f"({len(report.skips)} recordings skipped, see {report.report_path})", flush=True)
    print(f"demo 3/3: ASHA sweep ({sweep.samples} samples per signature and task)", flush=True)
    run_sweep(sweep)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from mmse_model.predict import predict_file

    n = predict_file(args.model, args.input, args.out)
    print(f"wrote predictions for {n} subjects to {args.out}")
    return 0


def _write_json(path: Path, payload: dict) -> None:
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True))
    os.replace(tmp, path)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
