"""The command-line options of `ray_jobs/train.py` and `ray_jobs/sweep.py` (and of `mmse
train`, `mmse sweep`), in a module that imports neither torch nor Ray: `mmse --help` builds
every subcommand's parser from here and stays quick. (`ray_jobs/build_datasets.py` imports
numpy only and keeps its own.)
"""

from __future__ import annotations

import argparse


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
    parser.add_argument("--out", required=True, help="output folder (must not hold a run yet)")
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
