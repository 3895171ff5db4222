"""`mmse data synth` and `mmse data build`: the data commands of the `mmse` CLI.

`add_data_commands` plugs them into the main parser (mmse_model/cli.py); each handler
returns an exit code and raises InputError for bad input, which the caller prints as one
line and turns into exit status 2. Ray is imported only when `build` runs without
`--no-ray`, so the core stays importable without it.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from mmse_model.features.build import MODES, BuildReport, BuildWarning, build_datasets


def add_data_commands(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `data {synth,build}` to an argparse subparsers object; returns the `data` parser."""
    data = subparsers.add_parser("data", help="synthesise recordings; build RQA datasets")
    commands = data.add_subparsers(dest="data_command", required=True)

    synth = commands.add_parser(
        "synth", help="write a SYNTHETIC cohort: recordings/<subject>/<Q>.csv and labels.csv"
    )
    synth.add_argument("--out", required=True, type=Path, help="new or empty directory")
    synth.add_argument("--subjects", type=int, default=300, help="cohort size (default 300)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.set_defaults(func=run_synth)

    build = commands.add_parser(
        "build", help="recordings -> <out>/<sig>/<Q>.npz RQA datasets (Ray tasks or --no-ray)"
    )
    add_build_arguments(build)
    build.set_defaults(func=run_build)
    return data


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    """The `build` options; shared with `python ray_jobs/build_datasets.py`."""
    parser.add_argument(
        "--recordings",
        required=True,
        type=Path,
        help="directory of <subject_id>/<Q>.csv recordings",
    )
    parser.add_argument(
        "--labels", required=True, type=Path, help="labels.csv: subject_id,Q1,...,Q5[,mmse]"
    )
    parser.add_argument(
        "--signature",
        required=True,
        action="append",
        dest="signatures",
        metavar="SIG",
        help="m<int>_tau<int>_eps<float>_lmin<int> (repeatable)",
    )
    parser.add_argument("--out", required=True, type=Path, help="data root to write")
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="trajectory",
        help="RQA on gaze samples (default) or on I-VT fixation sequences",
    )
    parser.add_argument("--no-ray", action="store_true", help="compute in this process")


def run_synth(args: argparse.Namespace) -> int:
    from mmse_model.synth import synthesize

    synthesize(args.out, n_subjects=args.subjects, seed=args.seed)
    print(f"wrote a synthetic cohort of {args.subjects} subjects to {args.out}")
    return 0


def run_build(args: argparse.Namespace) -> int:
    if args.no_ray:
        from mmse_model.features.build import run_in_process as runner
    else:
        from ray_jobs.build_datasets import run_on_ray as runner
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BuildWarning)
        report = build_datasets(
            args.recordings, args.labels, args.signatures, args.out, args.mode, runner
        )
    for warning in caught:
        if issubclass(warning.category, BuildWarning):
            print(f"mmse: warning: {warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    print(_summary(report))
    return 0


def _summary(report: BuildReport) -> str:
    counts = ", ".join(f"{task} {n}" for task, n in report.subjects_per_task.items())
    return f"wrote {len(report.written)} dataset files (subjects per task: {counts})"
