"""Writing files and folders so that a reader sees the old version or the new, never half.

Every file this project writes goes through here: a temporary sibling is written in full,
then renamed over the target (a rename within one file system is atomic).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np


def write_with(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` to fill a temporary sibling of `path`, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:  # on disk before it takes the real name
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return write_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_bytes(path: str | Path, data: bytes) -> Path:
    return write_with(path, lambda tmp: tmp.write_bytes(data))


def write_json(path: str | Path, payload: Any) -> Path:
    return write_text(path, json_text(payload))


def json_text(payload: Any) -> str:
    """The project's JSON files: indented, keys sorted, numpy scalars as numbers."""
    return json.dumps(payload, indent=2, sort_keys=True, default=_plain) + "\n"


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)


# The zip entries' timestamp: fixed, so that equal arrays give equal bytes (np.savez stamps
# the current time).
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """An `.npz` that np.load reads with allow_pickle=False, byte-identical for equal input."""
    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w", compression=zipfile.ZIP_STORED) as archive:
        for key, array in arrays.items():
            entry = io.BytesIO()
            np.lib.format.write_array(entry, np.asanyarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            archive.writestr(info, entry.getvalue())
    return write_bytes(path, payload.getvalue())


@contextlib.contextmanager
def staged_dir(target: str | Path, replace: bool = False) -> Iterator[Path]:
    """A temporary sibling folder to fill; on success it becomes `target`.

    With `replace`, an existing `target` is swapped out (the old one removed after the
    new one is in place); otherwise `target` must not exist or be an empty folder. On an
    exception the staging folder is removed and `target` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        yield staging
        old = None
        if target.exists():
            if replace:
                old = target.with_name(f".{target.name}.old-{os.getpid()}")
                shutil.rmtree(old, ignore_errors=True)
                target.rename(old)
            else:
                target.rmdir()  # an empty folder; a full one raises and keeps its content
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def copy_dir(source: str | Path, target: str | Path) -> Path:
    """Copy a folder over `target` so that `target` is never seen half-written."""
    with staged_dir(target, replace=True) as staging:
        shutil.copytree(source, staging, dirs_exist_ok=True)
    return Path(target)
