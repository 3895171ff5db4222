"""One driver per experiment: `driver.lock` in the experiment folder, taken before anything
of the sweep is written and released when the driver ends.

Two drivers on one experiment (a `--resume` started while the first still runs) would write
the same trial folders, checkpoints and results. The lock names its holder (host, pid, start
time), so the second driver stops with one line that says who holds it (exit status 2).

- A local or NFS folder: the lock file is created with O_CREAT | O_EXCL, which succeeds for
  exactly one creator (NFS v3 and later do it on the server). A lock left by a driver that
  died (killed, its machine rebooted) is stale when it names this host and a process that no
  longer runs (or a pid that another process has taken since: the start times differ): it is
  taken over, with a line saying so. A lock of another host cannot be checked from here: the
  message says to remove the file if that driver is gone.
- `s3://` and other object stores: pyarrow's file systems offer no conditional create (S3's
  `If-None-Match` is not exposed), so the lock there is advisory: the object is read, written,
  and read back, which stops a second driver started after the first but not two started in
  the same second.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from mmse_model.core import jsonio, storage
from mmse_model.core.errors import InputError

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self is 3.11+; the project supports 3.10

LOCK_NAME = "driver.lock"


class ExperimentLocked(InputError):
    """Another driver holds the experiment: one line naming it, exit status 2."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: enough to tell whether that process still runs."""

    host: str
    pid: int
    started: str  # when the driver took the lock (UTC, ISO 8601)
    process_start: str = ""  # the process's start time as the kernel counts it ("" where unknown)

    @classmethod
    def me(cls) -> Holder:
        return cls(
            socket.gethostname(),
            os.getpid(),
            datetime.now(timezone.utc).isoformat(timespec="seconds"),
            process_start(os.getpid()),
        )

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, started {self.started}"

    def to_json(self) -> str:
        return jsonio.dumps(asdict(self)) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Holder | None:
        try:
            data = json.loads(text)
            return cls(
                str(data["host"]),
                int(data["pid"]),
                str(data["started"]),
                str(data.get("process_start", "")),
            )
        except (ValueError, KeyError, TypeError):
            return None


def process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux `/proc/<pid>/stat`, field
    22): with the pid it names one process, even after the pid is reused. "" elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]  # fields after "(comm)" start at field 3


def runs(holder: Holder) -> bool:
    """Does the process a lock of this host names still run?"""
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        pass
    # Not when the pid now belongs to another process.
    return not (
        holder.process_start and process_start(holder.pid) not in ("", holder.process_start)
    )


def _locked(where: str, holder: Holder | None, advice: str) -> ExperimentLocked:
    if holder is None:
        return ExperimentLocked(f"{where}: a lock that cannot be read holds this sweep; {advice}")
    return ExperimentLocked(
        f"{where}: another driver runs this sweep ({holder.describe()}); {advice}"
    )


class DriverLock:
    """`with DriverLock(experiment):` holds the experiment for this process. `taken_over`
    says whose stale lock was taken over ("" when none was)."""

    def __init__(self, experiment: str, me: Holder | None = None):
        self.experiment = experiment
        self.me = me or Holder.me()
        self.taken_over = ""
        self._store: _ObjectLock | None = None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    @property
    def where(self) -> str:
        if storage.is_remote(self.experiment):
            return storage.redact(storage.join(self.experiment, LOCK_NAME))
        return str(storage.local_path(self.experiment) / LOCK_NAME)

    def acquire(self) -> None:
        if storage.is_remote(self.experiment):
            self._store = _ObjectLock(storage.join(self.experiment, LOCK_NAME), self.where)
            self.taken_over = self._store.acquire(self.me)
        else:
            self.taken_over = _acquire_file(Path(self.where), self.me)

    def release(self) -> None:
        if self._store is not None:
            self._store.release(self.me)
            return
        path = Path(self.where)
        if _read_holder(path) == self.me:  # never remove a lock that is not ours
            path.unlink(missing_ok=True)


def _read_holder(path: Path, attempts: int = 20) -> Holder | None:
    """The holder a lock file names; None when the file is gone. An empty or partial file
    (its creator between create and write) is read again for up to ~2 s."""
    for _ in range(attempts):
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        holder = Holder.from_json(text)
        if holder is not None:
            return holder
        time.sleep(0.1)
    raise _locked(str(path), None, "if no driver runs this sweep, remove the file")


def _acquire_file(path: Path, me: Holder) -> str:
    """Create `path` exclusively; take over a stale lock of this host. Returns the line that
    says whose lock was taken over, or ""."""
    path.parent.mkdir(parents=True, exist_ok=True)
    taken_over = ""
    for _ in range(5):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            holder = _read_holder(path)
            if holder is None:
                continue  # released meanwhile: try again
            if holder == me:
                return taken_over
            if holder.host != me.host:
                raise _locked(
                    str(path),
                    holder,
                    f"if that driver is gone (its host {holder.host} cannot be asked "
                    "from here), remove the file and start again",
                ) from None
            if runs(holder):
                raise _locked(str(path), holder, "wait for it to end, or stop it first") from None
            if _remove_stale(path, holder, me):
                taken_over = (
                    f"{path}: took over the lock of a driver that no longer runs "
                    f"({holder.describe()})"
                )
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(me.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        return taken_over
    raise _locked(
        str(path), _read_holder(path), "the lock changed hands while it was taken; try again"
    )


def _remove_stale(path: Path, stale: Holder, me: Holder) -> bool:
    """Move the stale lock aside (a rename succeeds for one taker only) and delete it. Put it
    back if what was moved is not the stale lock: another driver took it over meanwhile."""
    aside = path.with_name(f".{LOCK_NAME}.stale-{me.host}-{me.pid}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    moved = Holder.from_json(aside.read_text())
    if moved != stale:
        try:
            os.link(aside, path)  # back where it was, unless a new lock is there already
        except FileExistsError:
            pass
        aside.unlink(missing_ok=True)
        return False
    aside.unlink(missing_ok=True)
    return True


class _ObjectLock:
    """The advisory lock on an object store (no conditional create there): read, write, read
    back."""

    def __init__(self, location: str, where: str):
        self.location, self.where = location, where

    def _read(self) -> Holder | None:
        try:
            return Holder.from_json(storage.read_text(self.location))
        except FileNotFoundError:
            return None

    def acquire(self, me: Holder) -> str:
        holder, taken_over = self._read(), ""
        if holder is not None and holder != me:
            if holder.host != me.host:
                raise _locked(
                    self.where,
                    holder,
                    f"if that driver is gone (its host {holder.host} cannot be asked "
                    "from here), delete the object and start again",
                )
            if runs(holder):
                raise _locked(self.where, holder, "wait for it to end, or stop it first")
            taken_over = (
                f"{self.where}: took over the lock of a driver that no longer runs "
                f"({holder.describe()})"
            )
        storage.write_text(self.location, me.to_json())
        time.sleep(1.0)  # a driver that wrote at the same moment has written by now
        holder = self._read()
        if holder != me:
            raise _locked(
                self.where, holder, "it took the lock at the same moment; wait for it to end"
            )
        return taken_over

    def release(self, me: Holder) -> None:
        if self._read() == me:
            storage.delete(self.location)
