"""The whole repository passes `ruff check` and `ruff format --check` (pyproject's settings)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ruff") is None,
    reason="ruff is not installed (it comes with the `test` extra: pip install -e '.[test]')",
)


def ruff(*args: str) -> subprocess.CompletedProcess:
    # --no-cache: the test writes nothing into the repository.
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--no-cache", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )


def test_ruff_check_is_clean():
    done = ruff("check")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


def test_ruff_format_is_clean():
    done = ruff("format", "--check")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
