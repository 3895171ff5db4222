"""Where a command may write: the one check of every output path (docs/design.md, "Files").

Every command that writes (`mmse predict`, `data build`, `data synth`, `bundle`, `train`,
`dashboard`, the demo) checks its outputs here before it does any work, and refuses with
an InputError (exit status 2, one line naming the path and the reason, nothing written):

- an output that is an input of the command, resolves to one (symbolic links followed, or
  a hard link to it), or lies inside one (a bundle, a data root, a checkpoint folder);
- a folder the command replaces whole that holds one of its inputs;
- an output file that exists, unless the command was given `--overwrite`;
- an output that is not a regular file (a symbolic link, a device node, a FIFO, a socket,
  a folder), even with `--overwrite`: writing by rename would put a plain file in its place;
- a folder the command replaces whole (a data root, a bundle, a cohort) that is not empty
  and is not one this project provably wrote: its marker file parses as this tool's marker
  of that kind of folder and lists every file in it (`owner`, supplied by the package that
  owns the marker: `data/manifest.py`, `bundle/write.py`; `unlisted` walks the folder).

Inputs are given as (label, location) pairs, the label naming the option
(`("--features", "new_data")`); None locations are skipped. Locations in object storage
(`s3://...`) are compared with each other by their path; a local path and a remote one never
overlap.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlsplit

from mmse_model.core import storage
from mmse_model.core.atomic import special_kind

__all__ = [
    "TOOL",
    "check_output_file",
    "check_output_folder",
    "special_kind",
    "unlisted",
]
from mmse_model.core.errors import InputError

# What every folder marker this project writes says in its `tool` field.
TOOL = "mmse"

Location = str | Path
Inputs = Iterable[tuple[str, Location | None]]
# Why a non-empty folder is not one this project wrote (None: it is, and may be replaced).
Owner = Callable[[str], str | None]


def check_output_file(
    path: Location,
    inputs: Inputs = (),
    *,
    overwrite: bool = False,
    flag: str | None = "--overwrite",
) -> Path:
    """Refuse to write the file `path` (see the module docstring); returns it as a Path.
    `flag` is the option that allows replacing an existing file (None: the command has
    none, an existing file is always refused)."""
    shown = str(path)
    _check_inputs(shown, path, inputs, holds=False)
    kind = special_kind(path)
    if kind == "a folder":
        raise InputError(f"{shown}: is a folder; give the name of a file to write")
    if kind is not None:
        raise InputError(
            f"{shown}: is {kind}, not a regular file; never replaced, even with --overwrite "
            "(writing by rename would put a plain file in its place)"
        )
    if os.path.lexists(path) and not overwrite:
        if flag is None:
            raise InputError(f"{shown}: exists; remove it or choose another output folder")
        raise InputError(f"{shown}: exists; give {flag} to replace it, or another --out")
    return Path(path)


def check_output_folder(
    location: Location,
    inputs: Inputs = (),
    *,
    replaces: bool = False,
    owner: Owner | None = None,
    command: str = "this command",
) -> None:
    """Refuse to write into the folder `location` (see the module docstring).

    `replaces`: the command replaces the folder whole (a staged build swapped in). Then it
    must not be a symbolic link, must not hold an input, and must be new, empty, or a folder
    `owner` accepts (without `owner`: new or empty only). A folder written into (`replaces`
    false) may be an existing folder or a link to one; it must not be or lie inside an input.
    """
    shown = storage.redact(str(location))
    if storage.is_remote(str(location)):
        _check_inputs(shown, location, inputs, holds=replaces)
        if replaces and storage.exists(str(location)):
            if not storage.is_dir(str(location)):
                raise InputError(f"{shown}: exists and is not a folder; give a new or empty one")
            if storage.list_dir(str(location)):
                _check_owner(shown, str(location), owner, command)
        return
    path = Path(location)
    kind = special_kind(path)
    if kind == "a symbolic link" and replaces:
        raise InputError(
            f"{shown}: is a symbolic link; {command} replaces its output folder whole, which "
            "would replace the link, not the folder it points at: give the folder itself"
        )
    if kind not in (None, "a folder", "a symbolic link") or (
        os.path.lexists(path) and not path.is_dir()
    ):
        raise InputError(
            f"{shown}: exists and is {kind or 'a file'}, not a folder; give a new or empty folder"
        )
    _check_inputs(shown, path, inputs, holds=replaces)
    if replaces and path.is_dir() and any(path.iterdir()):
        _check_owner(shown, str(path), owner, command)


def _check_owner(shown: str, location: str, owner: Owner | None, command: str) -> None:
    reason = "already exists and is not empty" if owner is None else owner(location)
    if reason is not None:
        raise InputError(
            f"{shown}: {reason}; {command} would replace it whole, so it is left as it is: "
            "give a new or empty folder"
        )


def unlisted(folder: Path, listed: Iterable[str]) -> str | None:
    """The first entry under `folder` that is not a regular file `listed` names (relative
    paths with "/") or a folder on the way to one, as a relative path (a folder's ending in
    "/", anything but a file or folder followed by what it is); None when every entry is.
    Links are not followed: a link is never a listed file."""
    listed = set(listed)
    parents = {p.as_posix() for rel in listed for p in Path(rel).parents} - {"."}
    for here, folders, files in os.walk(folder):
        rel_here = Path(here).relative_to(folder)
        for name in sorted(folders):
            rel = (rel_here / name).as_posix()
            if os.path.islink(os.path.join(here, name)):
                return f"{rel} (a symbolic link)"
            if rel not in parents:
                return rel + "/"
        folders.sort()
        for name in sorted(files):
            rel = (rel_here / name).as_posix()
            kind = special_kind(os.path.join(here, name))
            if kind is not None:
                return f"{rel} ({kind})"
            if rel not in listed:
                return rel
    return None


def _check_inputs(shown: str, output: Location, inputs: Inputs, holds: bool) -> None:
    for label, location in inputs:
        if location is None:
            continue
        relation = _relation(output, location)
        if relation == "is":
            raise InputError(
                f"{shown}: is the input {storage.redact(str(location))} ({label}), symbolic "
                "links followed; an output never replaces an input: give another output"
            )
        if relation == "inside":
            raise InputError(
                f"{shown}: lies inside the input {storage.redact(str(location))} ({label}); "
                "an output never goes into an input: give another output"
            )
        if relation == "holds" and holds:
            raise InputError(
                f"{shown}: holds the input {storage.redact(str(location))} ({label}), and "
                "this output folder is replaced whole: give another output"
            )


def _relation(output: Location, location: Location) -> str | None:
    """ "is", "inside" or "holds" (`output` relative to the input `location`), or None."""
    a, b = str(output), str(location)
    if storage.is_remote(a) or storage.is_remote(b):
        if not (storage.is_remote(a) and storage.is_remote(b)):
            return None
        mine, theirs = _remote_parts(a), _remote_parts(b)
    else:
        out, inp = storage.local_path(a), storage.local_path(b)
        if out == inp or _same_file(out, inp):
            return "is"
        mine, theirs = out.parts, inp.parts
    if mine == theirs:
        return "is"
    if mine[: len(theirs)] == theirs:
        return "inside"
    if theirs[: len(mine)] == mine:
        return "holds"
    return None


def _remote_parts(location: str) -> tuple[str, ...]:
    parts = urlsplit(location)
    return (parts.scheme.lower(), parts.netloc, *(p for p in parts.path.split("/") if p))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
