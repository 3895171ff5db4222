"""Storage: every file a command reads or writes at a storage or experiment location.

A location is a local (or NFS) path, or a URI that `pyarrow.fs.FileSystem.from_uri` opens
(`s3://bucket/prefix` for AWS S3 and S3-compatible servers: MinIO, SeaweedFS, Ceph; `gs://`,
`file://`). This module is the only place that tells the two apart; everything else joins,
reads, writes and lists through it.

For S3 the endpoint, region and credentials come from the environment of each process
(`AWS_ENDPOINT_URL`, `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` or a
credentials file, an instance role on AWS); `?endpoint_override=...&scheme=http` in the URI
works too. Credentials are refused in a location: a location is written into results, Tune's
experiment state, logs and the Ray dashboard, and a key in it would be too.

Failures: a missing file is `FileNotFoundError`, as for a path. A remote store that fails
(unreachable, refused credentials, a server error) is `StorageUnavailable`, one line that
names the location, exit status 1. Local errors pass as they are.

Writes are whole or absent: a local file is renamed into place (`core/atomic.py`); an
object store shows an object only once its upload has completed. pyarrow is imported when
a file is touched, not with this module (`mmse --help` loads no pyarrow).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from mmse_model.core import atomic
from mmse_model.core.errors import ConfigError, InputError, RunFailure, first_line


class StorageUnavailable(RunFailure):
    """A remote store that failed (unreachable, or it refused): not a missing object. The
    message names the location without its query; a sweep's state is kept for `--resume`."""


# --- locations ------------------------------------------------------------------------------

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# Query parameters (pyarrow's S3 URI options among them) that carry a secret.
_SECRET_WORDS = ("key", "secret", "token", "password", "credential", "sig")


def _scheme(location: str) -> str:
    match = _SCHEME.match(str(location))
    return match.group(1).lower() if match else ""


def is_uri(location: str) -> bool:
    """A URI (`s3://...`, `file://...`) rather than a plain path."""
    return bool(_scheme(location))


def is_remote(location: str) -> bool:
    """A location outside this machine's file system: a URI other than `file://`."""
    return _scheme(location) not in ("", "file")


def local_path(location: str) -> Path:
    """A local location (a path or `file://` URI) as an absolute path."""
    if is_remote(location):
        raise ValueError(f"{redact(location)}: not a local location")
    return Path(_local_text(location)).expanduser().resolve()


def _local_text(location: str) -> str:
    text = str(location)
    return unquote(urlsplit(text).path) if _scheme(text) == "file" else text


def absolute(location: str) -> str:
    """What Ray wants: an absolute path, or the URI unchanged."""
    return str(location) if is_uri(location) else str(local_path(location))


def join(location: str, *parts: str) -> str:
    """Append path parts to a path or URI, before any `?query` of the URI."""
    base, sep, query = str(location).partition("?")
    return "/".join([base.rstrip("/"), *parts]) + (sep + query if sep else "")


def name(location: str) -> str:
    """The last part of a location's path (`runs/mmse_demo` -> `mmse_demo`)."""
    return str(location).partition("?")[0].rstrip("/").rsplit("/", 1)[-1]


def uri_of(storage: str, fs_path: str) -> str:
    """A file-system path that Ray reports under `storage`, as a location a later reader
    opens: the storage's scheme and query (an S3 endpoint) put back on."""
    scheme = _scheme(storage)
    if scheme in ("", "file"):
        return fs_path
    _, sep, query = str(storage).partition("?")
    return f"{scheme}://{fs_path}" + (sep + query if sep else "")


def _secret_names(query: str) -> list[str]:
    return [
        key
        for key, _ in parse_qsl(query, keep_blank_values=True)
        if any(word in key.lower() for word in _SECRET_WORDS)
    ]


def redact(location: str) -> str:
    """`location` without user info or secret query parameters: what may be shown or logged."""
    if not is_uri(location):
        return location
    parts = urlsplit(location)
    secret = set(_secret_names(parts.query))
    if not secret and "@" not in parts.netloc:
        return location
    query = "&".join(
        f"{n}={v}" if v else n
        for n, v in parse_qsl(parts.query, keep_blank_values=True)
        if n not in secret
    )
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return parts._replace(netloc=netloc, query=query).geturl()


def display(location: str) -> str:
    """A location as a page or log shows it: a path made absolute, a URI without credentials."""
    return redact(location) if is_uri(location) else str(local_path(location))


def check_location(location: str, key: str) -> str:
    """`location` unchanged, or a one-line ConfigError naming `key` when it holds
    credentials (user info or a secret query parameter). The value itself is never echoed."""
    if not is_uri(location):
        return location
    parts = urlsplit(location)
    secret = _secret_names(parts.query)
    if "@" in parts.netloc or secret:
        what = f"a {secret[0]!r} parameter" if secret else "user:password@"
        raise ConfigError(
            f"{key}: the URI holds credentials ({what}); they would be written "
            "into results, logs and "
            "the Ray dashboard. Give them in the environment "
            "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "AWS_SHARED_CREDENTIALS_FILE, or an instance role) and keep the URI to s3://bucket/prefix"
        )
    return location


# --- files ----------------------------------------------------------------------------------


@contextlib.contextmanager
def errors(location: str, what: str) -> Iterator[None]:
    """Turn an OSError of a remote location into StorageUnavailable: one line naming the
    location, `what` failed and pyarrow's reason. A missing object (FileNotFoundError) and
    errors of local paths pass as they are."""
    try:
        yield
    except FileNotFoundError:
        raise
    except OSError as exc:
        if not is_remote(location):
            raise
        raise StorageUnavailable(
            f"storage {str(location).partition('?')[0]}: {what} failed ({first_line(exc)})"
        ) from None


def filesystem(location: str):
    """(pyarrow file system, path in it) for a location, from `FileSystem.from_uri`. One file
    system per store (scheme, bucket or host, options), made once: opening one can cost a
    request (S3 looks up the bucket's region). A URI pyarrow cannot read is an InputError, a
    store that does not answer StorageUnavailable."""
    if not is_remote(location):
        # Made absolute, not resolved: resolving costs a system call per folder of the path,
        # and the dashboard opens thousands of files.
        fs, _ = _open_store("file:///", ())
        return fs, os.path.abspath(os.path.expanduser(_local_text(location)))
    parts = urlsplit(str(location))
    fs, root = _store(location, urlunsplit((parts.scheme, parts.netloc, "", parts.query, "")))
    return fs, (root.rstrip("/") + unquote(parts.path)).rstrip("/") or "/"


def _store(location: str, key: str):
    # The environment that configures a store (endpoint, region, credentials) is part of its
    # identity: a process that changes it gets a new file system.
    environment = tuple(
        sorted((k, v) for k, v in os.environ.items() if k.startswith(_STORE_ENVIRONMENT))
    )
    try:
        return _open_store(key, environment)
    except ValueError as exc:  # not a URI pyarrow reads (an unknown scheme, a bad option)
        raise InputError(f"{redact(location)}: cannot open: {first_line(exc)}") from None
    except OSError as exc:
        with errors(location, "opening"):
            raise exc from None


_STORE_ENVIRONMENT = ("AWS_", "GOOGLE_", "GCS_", "ARROW_")


@functools.lru_cache(maxsize=16)
def _open_store(key: str, environment: tuple[tuple[str, str], ...]):
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(key)


def _kind(location: str) -> str:
    fs, path = filesystem(location)
    with errors(location, "looking up"):
        return fs.get_file_info(path).type.name  # "File", "Directory" or "NotFound"


def exists(location: str) -> bool:
    return _kind(location) != "NotFound"


def is_dir(location: str) -> bool:
    return _kind(location) == "Directory"


def modified(location: str) -> float | None:
    """When a file was last written (epoch seconds, the store's clock); None when it is
    absent or the store does not say."""
    fs, path = filesystem(location)
    with errors(location, "looking up"):
        info = fs.get_file_info(path)
    if info.type.name == "NotFound" or info.mtime is None:
        return None
    return info.mtime.timestamp()


def read_bytes(location: str) -> bytes:
    """A file's bytes; FileNotFoundError when there is no file there."""
    fs, path = filesystem(location)
    with errors(location, "reading"):
        try:
            with fs.open_input_stream(path) as stream:
                return stream.read()
        except (FileNotFoundError, NotADirectoryError):
            raise FileNotFoundError(f"{redact(location)}: no such file") from None
        except OSError:
            if fs.get_file_info(path).type.name != "File":  # a folder, or a path under a file
                raise FileNotFoundError(f"{redact(location)}: no such file") from None
            raise


def read_text(location: str) -> str:
    """A UTF-8 file's text (undecodable bytes replaced); FileNotFoundError when absent."""
    return read_bytes(location).decode("utf-8", errors="replace")


def write_bytes(location: str, data: bytes) -> str:
    """Write a whole file: a local one is renamed into place, an object appears once uploaded."""
    if not is_remote(location):
        atomic.write_bytes(local_path(location), data)
        return location
    fs, path = filesystem(location)
    with errors(location, "writing"):
        try:
            stream = fs.open_output_stream(path)
        except FileNotFoundError:  # a store with real folders (HDFS, in-memory): make the parent
            fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
            stream = fs.open_output_stream(path)
        with stream:
            stream.write(data)
    return location


def write_text(location: str, text: str) -> str:
    return write_bytes(location, text.encode("utf-8"))


@dataclass(frozen=True)
class Entry:
    name: str
    is_dir: bool


def list_dir(location: str) -> list[Entry]:
    """The files and folders directly in a folder, sorted by name; [] when it is absent."""
    import pyarrow.fs

    fs, path = filesystem(location)
    with errors(location, "listing"):
        children = fs.get_file_info(
            pyarrow.fs.FileSelector(path, recursive=False, allow_not_found=True)
        )
    return sorted(
        (Entry(c.base_name, c.type == pyarrow.fs.FileType.Directory) for c in children),
        key=lambda e: e.name,
    )


def files_present(location: str, relative: list[str]) -> set[str]:
    """Which of the `relative` paths under a folder are files (one look-up for all)."""
    fs, path = filesystem(location)
    with errors(location, "looking up"):
        infos = fs.get_file_info([f"{path}/{r}" for r in relative])
    return {r for r, info in zip(relative, infos) if info.type.name == "File"}


@contextlib.contextmanager
def local_copy(location: str, what: str = "") -> Iterator[Path]:
    """A file or folder on local disk: the location itself when it is local, else a
    temporary copy (removed afterwards). A missing one is FileNotFoundError; `what` names the
    read in a StorageUnavailable line (default: "reading <name>")."""
    if not is_remote(location):
        yield local_path(location)
        return
    import pyarrow.fs

    fs, path = filesystem(location)
    with tempfile.TemporaryDirectory(prefix="mmse-storage-") as tmp:
        target = Path(tmp) / name(location)
        with errors(location, what or f"reading {name(location)}"):
            kind = fs.get_file_info(path).type
            if kind == pyarrow.fs.FileType.NotFound:
                raise FileNotFoundError(f"{redact(location)}: not found")
            if kind == pyarrow.fs.FileType.Directory:
                target.mkdir()
            pyarrow.fs.copy_files(path, target.as_posix(), source_filesystem=fs)
        yield target


def delete(location: str) -> None:
    """Remove a file or a folder with everything in it; nothing there is no error."""
    if not is_remote(location):
        path = local_path(location)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        return
    fs, path = filesystem(location)
    with errors(location, "deleting"):
        kind = fs.get_file_info(path).type.name
        if kind == "Directory":
            fs.delete_dir(path)
        elif kind == "File":
            fs.delete_file(path)


# --- conditional writes (the driver lock) ---------------------------------------------------
#
# pyarrow's file systems have no conditional put, so these few calls go to S3 through boto3
# (imported when called): a put that succeeds only where no object is (`If-None-Match: *`),
# one that succeeds only over the object of a given ETag (`If-Match`), and a delete of that
# object only. A store that ignores the headers would let both of two writers through:
# `conditional_writes` asks the store before the lock relies on them
# (mmse_model/sweeps/lock.py). Only `s3://` locations; the endpoint, region and credentials
# come from the location's query (`endpoint_override`, `scheme`, `region`) or the
# environment, as for pyarrow.


@dataclass(frozen=True)
class Versioned:
    """An object's bytes, its ETag and when the store last wrote it (epoch seconds)."""

    data: bytes
    tag: str
    modified: float


# Answers that mean "the condition did not hold": 412 Precondition Failed; 409 Conflict (a
# concurrent conditional write won: S3 says to retry); 404 for If-Match on a missing object.
_CONDITION_FAILED = {412, 409, 404}


def conditional_writes(folder: str) -> bool:
    """Does the store honour conditional writes at `folder`? One probe object is put twice
    with `If-None-Match: *` (the second must be refused with 412), once with `If-Match` of a
    wrong ETag (refused too), and deleted. False for a store other than S3, and for one that
    accepts the headers and writes anyway, or rejects them as not implemented."""
    if _scheme(folder) != "s3":
        return False
    import secrets

    probe = join(folder, f".conditional-write-probe-{secrets.token_hex(8)}")
    try:
        first = put_if_absent(probe, b"1")
        honoured = (
            first
            and not put_if_absent(probe, b"2")
            and not put_if_match(probe, b"3", '"00000000000000000000000000000000"')
        )
    except _NotImplemented:
        return False
    finally:
        with contextlib.suppress(StorageUnavailable):
            delete(probe)
    return bool(honoured)


def read_versioned(location: str) -> Versioned:
    """An S3 object with its ETag and last-modified time; FileNotFoundError when absent."""
    from botocore.exceptions import ClientError

    client, bucket, key = _s3_client(location)
    with _s3_errors(location, "reading"):
        try:
            got = client.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 404:
                raise
            raise FileNotFoundError(f"{redact(location)}: no such object") from None
        return Versioned(got["Body"].read(), got["ETag"], got["LastModified"].timestamp())


def put_if_absent(location: str, data: bytes) -> bool:
    """Create the S3 object only where none is (`If-None-Match: *`): False when one is."""
    client, bucket, key = _s3_client(location)
    with _s3_errors(location, "writing"):
        return _conditional(
            lambda: client.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
        )


def put_if_match(location: str, data: bytes, tag: str) -> bool:
    """Replace the S3 object only while its ETag is `tag` (`If-Match`): False when it has
    changed or is gone."""
    client, bucket, key = _s3_client(location)
    with _s3_errors(location, "writing"):
        return _conditional(
            lambda: client.put_object(Bucket=bucket, Key=key, Body=data, IfMatch=tag)
        )


def delete_if_match(location: str, tag: str) -> bool:
    """Delete the S3 object only while its ETag is `tag`: False when it has changed or is
    gone. A store that ignores `If-Match` on deletes deletes it anyway (the caller has read
    it just before)."""
    client, bucket, key = _s3_client(location)
    with _s3_errors(location, "deleting"):
        return _conditional(lambda: client.delete_object(Bucket=bucket, Key=key, IfMatch=tag))


class _NotImplemented(Exception):
    """The store rejected a conditional header as not implemented (501, NotImplemented)."""


def _conditional(call) -> bool:
    from botocore.exceptions import ClientError

    try:
        call()
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status in _CONDITION_FAILED:
            return False
        if status == 501 or exc.response.get("Error", {}).get("Code") == "NotImplemented":
            raise _NotImplemented(first_line(exc)) from None
        raise
    return True


@contextlib.contextmanager
def _s3_errors(location: str, what: str) -> Iterator[None]:
    """boto3's failures as StorageUnavailable (one line naming the location); a missing
    object and a condition that did not hold pass as they are."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (FileNotFoundError, _NotImplemented):
        raise
    except (BotoCoreError, ClientError) as exc:
        raise StorageUnavailable(
            f"storage {str(location).partition('?')[0]}: {what} failed ({first_line(exc)})"
        ) from None


def _s3_client(location: str):
    """(boto3 S3 client, bucket, key) for an `s3://bucket/key?options` location."""
    parts = urlsplit(str(location))
    if parts.scheme.lower() != "s3":
        raise ValueError(f"{redact(location)}: conditional writes are made on s3:// only")
    options = dict(parse_qsl(parts.query))
    endpoint = options.get("endpoint_override", "")
    if endpoint and "://" not in endpoint:
        endpoint = f"{options.get('scheme', 'https')}://{endpoint}"
    environment = tuple(
        sorted((k, v) for k, v in os.environ.items() if k.startswith(_STORE_ENVIRONMENT))
    )
    client = _open_s3_client(endpoint, options.get("region", ""), environment)
    return client, parts.netloc.rsplit("@", 1)[-1], unquote(parts.path).lstrip("/")


@functools.lru_cache(maxsize=8)
def _open_s3_client(endpoint: str, region: str, environment: tuple[tuple[str, str], ...]):
    import boto3
    from botocore.config import Config

    # Path-style addressing wherever an endpoint is given (a local server has no per-bucket
    # host names), as pyarrow does with `endpoint_override`.
    custom = bool(endpoint or os.environ.get("AWS_ENDPOINT_URL"))
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint or None,
        region_name=region or None,
        config=Config(s3={"addressing_style": "path"}) if custom else None,
    )
