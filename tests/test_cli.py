"""The `mmse` front: help without torch or Ray, and the one map from error to exit status."""

import json
import subprocess
import sys

import pytest

from mmse_model.core.errors import (
    CheckpointError,
    DataError,
    InputError,
    RunFailure,
    exit_status,
    first_line,
    run_command,
)

HELP_OF_EVERY_COMMAND = """
import argparse, contextlib, io, json, sys
from mmse_app.cli import build_parser, main

def commands(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from commands(sub, (*prefix, name))

helps = {}
for argv in [(), *commands(build_parser())]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main([*argv, "--help"])
        except SystemExit as exc:
            assert exc.code == 0, (argv, exc.code)
    helps[" ".join(argv)] = out.getvalue()
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "ray", "pyarrow"))
print(json.dumps({"helps": helps, "heavy": heavy}))
"""


def test_help_of_every_command_imports_neither_torch_nor_ray():
    done = subprocess.run(
        [sys.executable, "-c", HELP_OF_EVERY_COMMAND], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["heavy"] == []
    helps = report["helps"]
    assert {
        "",
        "train",
        "sweep",
        "predict",
        "bundle",
        "dashboard",
        "demo",
        "data",
        "data synth",
        "data build",
    } <= set(helps)
    assert (
        "--bundle" in helps["predict"]
        and "--recordings" in helps["predict"]
        and "--features" in helps["predict"]
    )
    # Each help is that command's, with its options (they come from ray_jobs/options.py and
    # build_datasets.py without importing the modules that run them).
    assert (
        "--no-ray" in helps["train"] and "--sig" in helps["train"] and "--storage" in helps["train"]
    )
    assert "--resume" in helps["sweep"] and "--config" in helps["sweep"]
    assert "--recordings" in helps["data build"] and "--mode" in helps["data build"]
    assert "usage: mmse [-h]" in helps[""]


def test_the_console_script_prints_help_without_torch_or_ray():
    code = (
        "import runpy, sys\nsys.argv = ['mmse', 'sweep', '--help']\n"
        "try:\n    runpy.run_module('mmse_app', run_name='__main__')\nexcept SystemExit as exc:\n"
        "    assert exc.code == 0\n"
        "print('torch' in sys.modules, 'ray' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage: mmse sweep" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "False False"


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InputError("a.npz: bad"), 2),
        (DataError("a.npz: bad"), 2),
        (CheckpointError("m.pt: bad"), 2),
        (RunFailure("storage s3://b: reading failed"), 1),
        (ValueError("a bug"), None),
    ],
)
def test_one_map_from_error_to_exit_status(error, status, capsys):
    assert exit_status(error) == status

    def body():
        raise error

    if status is None:  # a bug keeps its traceback
        with pytest.raises(type(error)):
            run_command("prog", body)
        return
    assert run_command("prog", body) == status
    assert capsys.readouterr().err == f"prog: error: {error}\n"


def test_run_command_passes_the_bodys_status():
    assert run_command("prog", lambda: None) == 0
    assert run_command("prog", lambda: 3) == 3


def test_first_line_quotes_one_line_of_a_reason():
    assert first_line(OSError("line one\nline two")) == "line one"
    assert first_line(KeyError()) == "KeyError"
    assert first_line(ValueError("x" * 500)) == "x" * 300


def test_cli_usage_error_and_bad_input_exit_2_with_one_line(capsys):
    from mmse_app.cli import main

    assert main(["train", "--no-ray"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("mmse: error: mmse train: the following arguments are required")
        and err.count("\n") == 1
    )
    assert main(["dashboard", "somewhere", "--port", "70000"]) == 2
    assert capsys.readouterr().err == "mmse: error: --port 70000: expected 0..65535\n"
