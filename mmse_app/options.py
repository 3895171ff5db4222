"""The options of `mmse train`, `mmse sweep` and `mmse data build` (which the scripts
`ray_jobs/train.py`, `sweep.py` and `build_datasets.py` take too: they run the same
commands), in a module that imports neither torch nor Ray, so that `mmse --help` stays quick.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mmse_model.features.build import MODES
from mmse_model.features.recordings import DEFAULT_LIMITS

FORWARD_AXES = ("+z", "-z")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="data root holding <sig>/<Q>.npz")
    parser.add_argument("--sig", required=True, help="RQA signature, e.g. m2_tau1_eps0.055_lmin2")
    parser.add_argument("--q", required=True, help="task, Q1..Q5")
    parser.add_argument(
        "--config", help="YAML config (default: built-in defaults, configs/default.yaml)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key, e.g. training.lr=0.01 (repeatable)",
    )
    parser.add_argument(
        "--out",
        required=True,
        help="output folder (must not hold a run yet, nor be or lie inside the data root)",
    )
    parser.add_argument(
        "--storage", help="Ray storage path or URI for checkpoints (default: --out)"
    )
    parser.add_argument(
        "--address", help="Ray cluster address (default: RAY_ADDRESS, else a local instance)"
    )


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", required=True, help="sweep YAML (configs/sweep.yaml, configs/demo.yaml)"
    )
    parser.add_argument("--data", help="data root (overrides the sweep config's data_root)")
    parser.add_argument(
        "--storage", help="storage path or URI (overrides the sweep config's storage)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted sweep, or rerun its failed trials "
        "(only the same sweep: refused when its config, signatures, tasks or data changed)",
    )
    parser.add_argument(
        "--address", help="Ray cluster address (default: RAY_ADDRESS, else a local instance)"
    )


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
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
        help="m<int>_tau<int>_eps<decimal>_lmin<int> (repeatable)",
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        help="data root to write: new, empty, or one this command wrote, its dataset.json "
        "listing every file there (replaced whole); never a folder holding or inside an input",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="trajectory",
        help="RQA on gaze samples (default) or on I-VT fixation sequences",
    )
    parser.add_argument(
        "--max-duration-s",
        type=float,
        default=DEFAULT_LIMITS.max_duration_s,
        metavar="S",
        help="skip a recording longer than this (default %(default)g s)",
    )
    parser.add_argument(
        "--max-file-mb",
        type=float,
        default=DEFAULT_LIMITS.max_file_mb,
        metavar="MB",
        help="skip a recording file larger than this, unread (default %(default)g MB)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="a recording or subject that would be skipped is an error (exit 2, nothing written)",
    )
    add_format_arguments(parser, default="txy")


def add_format_arguments(parser: argparse.ArgumentParser, default: str | None) -> None:
    """`--format`, `--forward`, `--field-of-view`: how the recordings keep their gaze
    (mmse_model/features/gaze_formats.py; docs/rqa.md, "From your headset's export")."""
    parser.add_argument(
        "--format",
        default=default,
        metavar="F",
        help="the recordings' layout: txy (t,x,y: seconds, normalised screen coordinates), "
        "vectors (t,dx,dy,dz[,valid]: seconds, gaze direction vectors, valid 1/0) or a YAML "
        "mapping file of another export's columns"
        + (
            f" (default {default})"
            if default
            else " (default: as the bundle's training recordings were read)"
        ),
    )
    parser.add_argument(
        "--forward",
        choices=FORWARD_AXES,
        help="the axis the headset looks down, for vectors (default +z; OpenXR and Meta: -z)",
    )
    parser.add_argument(
        "--field-of-view",
        type=float,
        metavar="DEG",
        help="degrees of visual angle that span the normalised screen, recorded with the "
        "build and used by the fixation detector (default 100)",
    )


def join_forward(argv: list[str]) -> list[str]:
    """`--forward -z` as `--forward=-z`: argparse takes a value that starts with "-" for an
    option, and -z is how OpenXR's axis is written."""
    joined: list[str] = []
    for arg in argv:
        if joined and joined[-1] == "--forward" and arg in FORWARD_AXES:
            joined[-1] = f"--forward={arg}"
        else:
            joined.append(arg)
    return joined
