"""Writing files and folders so that a reader sees the old version or the new, never half.

Every file this project writes goes through here: a temporary sibling is written in full,
then renamed over the target (a rename within one file system is atomic). Files and folders
are created with the process's umask, as `open` would create them: predictions, checkpoints
and pages hold subject ids, and who may read them is the user's call (`umask 077`).
JSON goes through the one JSON writer, `core/jsonio.py`.

A rename replaces whatever has the target's name: a symbolic link would become a plain file
(the file it pointed at left as it was), a device node or FIFO a plain file. So only a
regular file (or nothing) is ever replaced here, and only a real folder is swapped out by
`staged_dir`; anything else is an InputError naming it. Whether a command may write a
path at all (not an input, not an existing file without `--overwrite`, not a folder that
is not its own) is decided before, in `core/outputs.py`.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import shutil
import stat
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mmse_model.core import jsonio
from mmse_model.core.errors import InputError

_KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def special_kind(path: str | Path) -> str | None:
    """What `path` is when it is there and not a regular file ("a symbolic link", "a
    folder", "a FIFO", ...; a link is not followed); None when it is a regular file or absent."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISREG(mode):
        return None
    return next((word for test, word in _KINDS if test(mode)), "not a regular file")


def _check_replaceable(path: Path) -> None:
    kind = special_kind(path)
    if kind not in (None, "a folder"):  # a rename onto a folder fails by itself (OSError)
        raise InputError(
            f"{path}: is {kind}, not a regular file; not replaced (writing by rename would put "
            "a plain file in its place)"
        )


def write_with(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` to fill a temporary sibling of `path`, then rename it into place.
    `path` must be a regular file or absent (see the module docstring)."""
    path = Path(path)
    _check_replaceable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_sibling(
        path,
        ".tmp",
        lambda name: os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)),
    )
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:  # on disk before it takes the real name
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _new_sibling(path: Path, suffix: str, create: Callable[[Path], None]) -> Path:
    """A new, uniquely named sibling of `path`, made by `create` with mode 0666 (0777 for a
    folder) less the umask; `tempfile.mkstemp`/`mkdtemp` would force 0600/0700."""
    for _ in range(100):
        candidate = path.with_name(f".{path.name}.{secrets.token_hex(6)}{suffix}")
        try:
            create(candidate)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"{path}: no free name for a temporary sibling")


def write_text(path: str | Path, text: str) -> Path:
    return write_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_bytes(path: str | Path, data: bytes) -> Path:
    return write_with(path, lambda tmp: tmp.write_bytes(data))


def write_json(path: str | Path, payload: Any) -> Path:
    """A JSON file, written by the project's one JSON writer (`core/jsonio.py`)."""
    return write_text(path, jsonio.json_text(payload))


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
    new one is in place); otherwise `target` must not exist or be an empty folder. A target
    that is a symbolic link (or anything but a folder) is refused: the swap would replace the
    link, not the folder it points at. On an exception the staging folder is removed and
    `target` is untouched.
    """
    target = Path(target)
    kind = special_kind(target)
    if kind not in (None, "a folder"):
        raise InputError(f"{target}: is {kind}, not a folder; not replaced")
    if kind is None and target.exists():
        raise InputError(f"{target}: is a file, not a folder; not replaced")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _new_sibling(target, ".tmp-dir", lambda name: os.mkdir(name, 0o777))
    old = None
    try:
        yield staging
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
        if old is not None and old.exists() and not target.exists():
            old.rename(target)  # the swap failed half-way: the old folder goes back
        raise


def copy_dir(source: str | Path, target: str | Path) -> Path:
    """Copy a folder over `target` so that `target` is never seen half-written."""
    with staged_dir(target, replace=True) as staging:
        shutil.copytree(source, staging, dirs_exist_ok=True)
    return Path(target)
