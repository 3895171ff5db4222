"""`mmse`: the command-line front of the trainer.

Exit status: 0 done; 2 bad input or usage, 1 a run that could not finish (a sweep that
stalled, a storage that does not answer): one line on stderr, no traceback, mapped once by
`mmse_model.core.errors.run_command`. The parser imports neither torch nor Ray (the
options live in `mmse_app/options.py`); each command imports what it needs when it runs,
so `mmse --help` stays quick.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mmse_model.core.errors import InputError, run_command
from mmse_model.core.inputs import MAX_FILE_MB


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for any bad input
        raise InputError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    from mmse_app import options

    parser = _Parser(prog="mmse", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train_cmd = commands.add_parser(
        "train", help="train one (signature, task): K-fold CV, in-process or on Ray"
    )
    options.add_train_arguments(train_cmd)
    train_cmd.add_argument("--no-ray", action="store_true", help="run the loop in this process")
    train_cmd.add_argument(
        "--device", default="cpu", help="torch device for --no-ray (cpu, cuda, cuda:1)"
    )
    train_cmd.set_defaults(func=_train)

    sweep_cmd = commands.add_parser(
        "sweep", help="ASHA sweep over every signature and task on Ray Tune"
    )
    options.add_sweep_arguments(sweep_cmd)
    sweep_cmd.set_defaults(func=_sweep)

    predict = commands.add_parser(
        "predict",
        help=(
            "predict sub-scores for new subjects: "
            "a sweep's bundle (all tasks, intervals) or one model"
        ),
    )
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--bundle",
        help="a model bundle folder or URI (<experiment>/bundle, or `mmse bundle --out`)",
    )
    source.add_argument(
        "--model",
        help="one checkpoint folder or model.pt (e.g. RUN/model), or its storage URI (s3://.../checkpoint_000004)",
    )
    predict.add_argument(
        "--features",
        help="with --bundle: a data root (<signature>/<task>.npz) or one features file",
    )
    predict.add_argument(
        "--recordings",
        help=(
            "with --bundle: gaze recordings <subject>/<task>.csv; "
            "the bundle's features are built from them"
        ),
    )
    predict.add_argument(
        "--input", help="with --model: .npz with X (N, 10) or .csv with subject_id + 10 columns"
    )
    predict.add_argument(
        "--out",
        required=True,
        help=(
            "CSV to write: subject_id, each task's prediction and interval (Q1, Q1_lo, Q1_hi, "
            "...), subtotal, out_of_range (--bundle); or prediction and fold_sd (--model). "
            "Not an input, nor inside one; an existing file only with --overwrite"
        ),
    )
    predict.add_argument(
        "--signature",
        help="the features' signature, for a file that records none (and which "
        "signature, for a --model checkpoint of several)",
    )
    predict.add_argument("--task", help="the features' task, for a file that records none")
    predict.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out file (never an input of the command, a symbolic link, "
        "a device or a FIFO)",
    )
    predict.add_argument(
        "--max-file-mb",
        type=float,
        default=MAX_FILE_MB,
        metavar="MB",
        help=(
            "refuse a features file (--features, --input; an npz's arrays also unpacked) larger "
            "than this, before reading it, and skip such a recording (default %(default)g MB)"
        ),
    )
    # With --recordings: default, the layout the bundle's training recordings were read with.
    options.add_format_arguments(predict, default=None)
    predict.set_defaults(func=_predict)

    bundle = commands.add_parser(
        "bundle", help="write a finished sweep's model bundle (weights, manifest, model card)"
    )
    bundle.add_argument(
        "experiment", help="the sweep's experiment folder or s3:// URI (<storage>/<name>)"
    )
    bundle.add_argument(
        "--out",
        help="folder or URI for the bundle (default: EXPERIMENT/bundle); replaced whole, so it "
        "must be new, empty or a bundle mmse wrote (its manifest lists every file there)",
    )
    bundle.add_argument(
        "--data", help="the sweep's data root (default: the one its summary.json records)"
    )
    bundle.set_defaults(func=_bundle)

    dashboard = commands.add_parser(
        "dashboard",
        help=(
            "write a sweep's results page: one self-contained index.html "
            "(finished or running sweep)"
        ),
    )
    dashboard.add_argument(
        "experiment", help="the sweep's experiment folder or s3:// URI (<storage>/<name>)"
    )
    dashboard.add_argument(
        "--out",
        type=Path,
        help="folder for index.html (default: EXPERIMENT/dashboard; for a URI, ./dashboard-<name>)",
    )
    dashboard.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an index.html (or version.json) in --out that is not a page mmse wrote "
        "(never a symbolic link, a device or a FIFO)",
    )
    dashboard.add_argument(
        "--serve",
        action="store_true",
        help="serve the page on 127.0.0.1 and rebuild it while the sweep runs (Ctrl-C stops)",
    )
    dashboard.add_argument(
        "--port", type=int, default=8000, help="port for --serve (default 8000; 0: any free one)"
    )
    dashboard.add_argument(
        "--interval",
        type=float,
        default=5.0,
        help="seconds between rebuilds with --serve (default 5)",
    )
    dashboard.set_defaults(func=_dashboard)

    demo = commands.add_parser(
        "demo",
        help="the whole pipeline on a synthetic cohort: synth, RQA build, ASHA sweep (local Ray)",
    )
    demo.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    demo.add_argument(
        "--subjects", type=int, default=300, help="synthetic cohort size (default 300)"
    )
    demo.set_defaults(func=_demo)

    data = commands.add_parser("data", help="synthesise recordings; build RQA datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    synth = data_commands.add_parser(
        "synth", help="write a SYNTHETIC cohort: recordings/<subject>/<Q>.csv, labels.csv"
    )
    synth.add_argument(
        "--out", required=True, type=Path, help="new or empty directory (not a symbolic link)"
    )
    synth.add_argument("--subjects", type=int, default=300, help="cohort size (default 300)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument(
        "--format",
        choices=("txy", "vectors"),
        default="txy",
        help="txy: t,x,y (default); vectors: t,dx,dy,dz,valid, unit gaze direction vectors "
        "looking down +z over a 100 degree field of view, blinks as zero vectors with valid 0",
    )
    synth.set_defaults(func=_synth)
    build = data_commands.add_parser(
        "build", help="recordings -> <out>/<sig>/<Q>.npz RQA datasets (Ray tasks or --no-ray)"
    )
    options.add_build_arguments(build)
    build.add_argument("--no-ray", action="store_true", help="compute in this process")
    build.set_defaults(func=_build)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    def body() -> int:
        from mmse_app.options import join_forward

        given = list(sys.argv[1:] if argv is None else argv)
        args = build_parser().parse_args(join_forward(given))
        return args.func(args)

    return run_command("mmse", body)


def _train(args: argparse.Namespace) -> int:
    from mmse_app.report import format_run
    from mmse_model.training.runs import train_and_report, train_in_process
    from ray_jobs import train

    run = train.run_spec(args)
    if args.no_ray:
        runner, name = train_in_process(args.device), "in-process"
    else:
        runner, name = train.ray_runner(args.storage, args.address), "ray"
    result = train_and_report(run, Path(args.out), runner, name)
    print(format_run(result))
    print(
        f"wrote {args.out}/model (the fold-models), "
        f"{args.out}/result.json; checkpoints in {result.checkpoints}"
    )
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from mmse_app.dashboard import write_after_sweep
    from ray_jobs.sweep import run_sweep_command

    run_sweep_command(args, after=write_after_sweep)  # the page also when some trials failed
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    from mmse_app.dashboard import serve, write_dashboard

    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port}: expected 0..65535")
    if not args.interval > 0:
        raise InputError(f"--interval {args.interval}: expected a positive number of seconds")
    if args.serve:
        return serve(args.experiment, args.out, args.port, args.interval, overwrite=args.overwrite)
    print(f"dashboard: {write_dashboard(args.experiment, args.out, overwrite=args.overwrite)}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from mmse_app.demo import run_demo

    run_demo(Path(args.out), args.subjects)
    return 0


def _predict(args: argparse.Namespace) -> int:
    if not 0 < args.max_file_mb < float("inf"):
        raise InputError(f"--max-file-mb {args.max_file_mb:g}: expected a finite number > 0")
    if args.model:
        if args.input is None or args.features or args.recordings:
            raise InputError(
                "predict: --model takes --input FILE (--features and --recordings go with --bundle)"
            )
        from mmse_model.bundle.predict import predict_file

        # a URI is read into a temporary copy
        n = predict_file(
            args.model,
            args.input,
            args.out,
            args.signature,
            args.task,
            args.overwrite,
            args.max_file_mb,
        )
        print(f"wrote predictions for {n} subjects to {args.out}")
        return 0
    if args.recordings is None and (
        args.format is not None or args.forward is not None or args.field_of_view is not None
    ):
        raise InputError("predict: --format, --forward and --field-of-view go with --recordings")
    if args.input is not None or (args.features is None) == (args.recordings is None):
        raise InputError(
            "predict: --bundle takes one of --features DATA_ROOT_OR_FILE and --recordings DIR"
        )
    from mmse_model.bundle.run import predict_with_bundle

    print(
        predict_with_bundle(
            args.bundle,
            args.out,
            features=args.features,
            recordings=args.recordings,
            signature=args.signature,
            task=args.task,
            overwrite=args.overwrite,
            max_file_mb=args.max_file_mb,
            layout=_layout(args),
        )
    )
    return 0


def _layout(args: argparse.Namespace):
    """The recordings' layout from `--format`, `--forward`, `--field-of-view`, or None when
    `--format` is not given (predict: the bundle's); a bad mapping file is an InputError of
    one line, raised before any recording is read."""
    from mmse_model.features.gaze_formats import read_layout

    if args.format is None:
        if args.forward is not None or args.field_of_view is not None:
            raise InputError("--forward and --field-of-view go with --format")
        return None
    return read_layout(args.format, args.forward, args.field_of_view)


def _bundle(args: argparse.Namespace) -> int:
    from mmse_model.bundle.run import bundle_experiment
    from mmse_model.training.checkpoint import load_checkpoint

    print(bundle_experiment(args.experiment, args.out, args.data, load_checkpoint))
    return 0


def _synth(args: argparse.Namespace) -> int:
    from mmse_model.synth.cohort import synthesize

    synthesize(args.out, n_subjects=args.subjects, seed=args.seed, gaze_format=args.format)
    print(
        f"wrote a SYNTHETIC cohort of {args.subjects} subjects to {args.out} "
        f"(recordings as {args.format})"
    )
    return 0


def _build(args: argparse.Namespace) -> int:
    """Build the datasets (Ray tasks, or this process with --no-ray), list the skipped
    recordings as warnings, summarise."""
    import warnings

    from mmse_model.features.build import BuildWarning, build_datasets, run_in_process
    from mmse_model.features.recordings import RecordingLimits

    if args.no_ray:
        runner = run_in_process
    else:
        from ray_jobs.build_datasets import run_on_ray as runner
    layout = _layout(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BuildWarning)
        limits = RecordingLimits(max_duration_s=args.max_duration_s, max_file_mb=args.max_file_mb)
        report = build_datasets(
            args.recordings,
            args.labels,
            args.signatures,
            args.out,
            args.mode,
            runner,
            limits,
            args.strict,
            layout,
        )
    for warning in caught:
        if issubclass(warning.category, BuildWarning):
            print(f"mmse: warning: {warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    counts = ", ".join(f"{task} {n}" for task, n in report.subjects_per_task.items())
    print(f"wrote {len(report.written)} dataset files (subjects per task: {counts})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
