"""Reading and writing a bundle or an experiment folder at a local path or a storage URI
(`s3://bucket/prefix`, endpoint and credentials from the environment)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mmse_model.core.errors import InputError, RunFailure, first_line
from mmse_model.core.locations import check_location, is_uri, redact


def join(location: str, *parts: str) -> str:
    """Path parts appended to a path or URI, before any `?query` of the URI."""
    base, sep, query = str(location).partition("?")
    return "/".join([base.rstrip("/"), *parts]) + (sep + query if sep else "")


def _filesystem(location: str):
    import pyarrow.fs

    check_location(location, "location")
    try:
        fs, path = pyarrow.fs.FileSystem.from_uri(location)
    except (ValueError, OSError) as exc:
        raise InputError(f"{redact(location)}: not a storage location pyarrow reads ({first_line(exc)})") from None
    return fs, path.rstrip("/")


@contextlib.contextmanager
def storage_errors(location: str, what: str) -> Iterator[None]:
    """A missing object is bad input (exit 2); a storage that fails is a RunFailure (exit 1)."""
    try:
        yield
    except FileNotFoundError as exc:
        raise InputError(f"{redact(location)}: {what}: not found ({first_line(exc)})") from None
    except OSError as exc:
        raise RunFailure(f"storage {redact(location).partition('?')[0]}: {what} failed ({first_line(exc)})") from None


def read_text(location: str, name: str) -> str:
    """One file of a folder or URI, as text."""
    if not is_uri(location):
        path = Path(location) / name
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
    fs, base = _filesystem(location)
    with storage_errors(location, f"reading {name}"), fs.open_input_stream(f"{base}/{name}") as stream:
        return stream.read().decode("utf-8")


@contextlib.contextmanager
def local_folder(location: str) -> Iterator[Path]:
    """A folder on local disk: `location` itself, or a temporary copy of the URI's files."""
    if not is_uri(location):
        yield Path(location)
        return
    import pyarrow.fs

    fs, base = _filesystem(location)
    with tempfile.TemporaryDirectory(prefix="mmse-bundle-") as tmp:
        with storage_errors(location, "reading the bundle"):
            info = fs.get_file_info(base)
            if info.type != pyarrow.fs.FileType.Directory:
                raise InputError(f"{redact(location)}: no such folder")
            pyarrow.fs.copy_files(base, tmp, source_filesystem=fs)
        yield Path(tmp)


def upload(folder: Path, location: str, last: str) -> None:
    """Copy a folder's files into a URI, `last` written last (after removing the old one
    first), so a reader sees no `last` or one whose companions are all there."""
    import pyarrow.fs

    fs, base = _filesystem(location)
    with storage_errors(location, "writing the bundle"):
        fs.create_dir(base, recursive=True)
        if fs.get_file_info(f"{base}/{last}").type != pyarrow.fs.FileType.NotFound:
            fs.delete_file(f"{base}/{last}")
        names = sorted(p.name for p in folder.iterdir() if p.name != last) + [last]
        for name in names:
            with fs.open_output_stream(f"{base}/{name}") as stream:
                stream.write((folder / name).read_bytes())
