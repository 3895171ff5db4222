"""Files are created with the process's umask; JSON is strict (mmse_model/core/atomic.py)."""

from __future__ import annotations

import json
import math
import os
import stat

import numpy as np
import pytest

from mmse_model.core import atomic
from mmse_model.sweeps.lock import LOCK_NAME, DriverLock


@pytest.fixture
def umask():
    """Set the process's umask for one test (restored after it)."""
    saved = os.umask(0o022)
    os.umask(saved)

    def set_(mask: int) -> None:
        os.umask(mask)

    yield set_
    os.umask(saved)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize(
    ("mask", "file_mode", "dir_mode"),
    [(0o077, 0o600, 0o700), (0o022, 0o644, 0o755), (0o002, 0o664, 0o775)],
)
def test_files_and_folders_follow_the_umask(tmp_path, umask, mask, file_mode, dir_mode):
    umask(mask)
    written = [
        atomic.write_text(tmp_path / "summary.txt", "x"),
        atomic.write_json(tmp_path / "summary.json", {}),
        atomic.write_npz(tmp_path / "Q1.npz", {"X": np.zeros(2)}),
    ]
    assert [mode(p) for p in written] == [file_mode] * 3
    with atomic.staged_dir(tmp_path / "page") as staging:
        (staging / "index.html").write_text("<p>")
    assert mode(tmp_path / "page") == dir_mode
    with DriverLock(str(tmp_path / "exp")):
        assert mode(tmp_path / "exp" / LOCK_NAME) == file_mode
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "Q1.npz",
        "exp",
        "page",
        "summary.json",
        "summary.txt",
    ]


def test_json_is_strict_nan_and_infinities_are_null(tmp_path):
    payload = {
        "rmse": math.nan,
        "r2": -math.inf,
        "n": np.int64(3),
        "mae": np.float32(0.5),
        "bad": np.float64("nan"),
        "ci": (1.0, math.inf),
        "values": np.array([1.0, np.nan]),
        "ok": [None, True, "007"],
    }
    path = atomic.write_json(tmp_path / "summary.json", payload)

    def refuse(token):
        raise ValueError(f"not JSON: {token}")

    assert json.loads(path.read_text(), parse_constant=refuse) == {
        "rmse": None,
        "r2": None,
        "n": 3,
        "mae": 0.5,
        "bad": None,
        "ci": [1.0, None],
        "values": [1.0, None],
        "ok": [None, True, "007"],
    }
