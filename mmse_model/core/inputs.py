"""Input files, bounded and of the right kind, checked before anything reads them.

Every file a command reads on the user's word (a features file, a recording) must be a
regular file (symlinks followed): a directory, a FIFO (reading it would block) or a device
(`/dev/zero` never ends) is refused or skipped with a reason, never opened for reading. Its
size is capped by `--max-file-mb` (default `MAX_FILE_MB`), checked before it is read, so
memory stays bounded whatever the file. Torch-free: the command-line options use it.
"""

from __future__ import annotations

import stat
from pathlib import Path

# The largest input file read unless the user raises it (`--max-file-mb`; 1 MB = 10^6 bytes):
# features files for prediction (mmse_model/data/dataset.py), recordings
# (mmse_model/features/recordings.py).
MAX_FILE_MB = 100.0


def file_kind(mode: int) -> str:
    """What a file's mode says it is, in a few words."""
    for test, kind in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISREG, "a regular file"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def too_big(size: int, max_file_mb: float) -> str:
    """The reason a file of `size` bytes is not read, or '' when it is within the cap."""
    if size <= int(max_file_mb * 1_000_000):
        return ""
    return f"file of {size / 1e6:.1f} MB above --max-file-mb {max_file_mb:g} (not read)"


def regular_file_problem(path: Path) -> str | None:
    """Why `path` is not a regular file to read (symlinks followed), or None."""
    try:
        mode = Path(path).stat().st_mode
    except FileNotFoundError:
        return "a symlink to a missing file" if Path(path).is_symlink() else "no such file"
    except OSError as exc:
        return f"unreadable ({exc.__class__.__name__})"
    if stat.S_ISDIR(mode):
        return "a directory, not a file"
    if not stat.S_ISREG(mode):
        return f"not a regular file ({file_kind(mode)})"
    return None
