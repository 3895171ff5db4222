"""One driver per experiment: `driver.lock` in the experiment folder, a lease that the driver
takes before anything of the sweep is written, renews on a heartbeat and gives back when it
ends.

Two drivers on one experiment (a `--resume` started while the first still runs, on this
machine or another one sharing the storage) would write the same trial folders,
checkpoints and results. The lock file names its holder: host, pid, boot identity (Linux:
`/proc/sys/kernel/random/boot_id`), pid namespace (`/proc/self/ns/pid`), the process's start
time, a random token, when the lease was taken and last renewed, and the lease's length. A
second driver stops with one line that says who holds it (exit status 2).

Taking it is atomic. A local or NFS folder: a fully written temporary file is hard-linked
to `driver.lock` (link(2) succeeds for one creator, NFS included; a file system without
hard links gets O_CREAT | O_EXCL); a stale lock is taken over by the one taker that creates
the claim file named after the stale lock's bytes, which then renames its own lock over it
(the file is never missing meanwhile, so no other driver can create one in between).
`s3://`: a put with `If-None-Match: *`, a takeover and each renewal with `If-Match` of the
ETag read, where the store honours them (asked at start with a probe object,
`storage.conditional_writes`). Elsewhere (a store that ignores the headers, `gs://`) the
lock is advisory, as it was: read, write, read back after a second; one line says so.

The lease (LEASE_S, 120 s; MMSE_DRIVER_LEASE_S sets another): the driver renews it every
lease/4 (a heartbeat thread) and counts it as held only while a renewal confirmed it within
the last 2/3 of a lease. `check()`, which the driver calls in every step of Tune's loop and
before it writes the record or any result, raises `LeaseLost` (exit status 1) once the lock
names another token, is gone, or could not be renewed for 2/3 of a lease: the driver stops
and writes nothing more. It stops a third of a lease before another driver may take over:
that margin covers a write in flight and clocks that disagree by less (keep the machines'
clocks synchronised, NTP). A lock is stale, and taken over with one line saying so, when
- its lease expired: not renewed (by its `renewed` time or the file's mtime, the later) for
  longer than its own lease, whatever its host;
- it names this machine (host, boot and pid namespace all the same) and a process that no
  longer runs (or a pid that another process has taken since: the start times differ);
- it cannot be read (empty, not a lock) and was last written longer than a lease ago.
A live lock of the same host name but another boot or pid namespace (another machine or
container of that name) is never taken before its lease expires. Without a boot identity
(not Linux) a lock is stale by its lease alone. A lock written before leases existed (no
token) is never taken over: remove it by hand.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from mmse_model.core import atomic, jsonio, storage
from mmse_model.core.errors import ConfigError, InputError, RunFailure, first_line

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self is 3.11+; the project supports 3.10

LOCK_NAME = "driver.lock"
LEASE_S = 120.0  # the default lease; MMSE_DRIVER_LEASE_S sets another
LEASE_ENVIRONMENT = "MMSE_DRIVER_LEASE_S"
_CLAIM = f".{LOCK_NAME}.takeover-"  # a taker's claim on a stale lock, while it takes it over


class ExperimentLocked(InputError):
    """Another driver holds the experiment: one line naming it, exit status 2."""


class LeaseLost(RunFailure):
    """This driver no longer holds its experiment's lock: it stops writing, exit status 1."""


class Clock:
    """The lock's clocks: `now` (wall, epoch seconds: written into the lock and compared
    with other machines' times) and `elapsed` (how long this driver has held its lease:
    CLOCK_BOOTTIME where there is one, which counts a suspended machine's sleep too).
    Tests pass their own."""

    def now(self) -> float:
        return time.time()

    def elapsed(self) -> float:
        if hasattr(time, "CLOCK_BOOTTIME"):
            return time.clock_gettime(time.CLOCK_BOOTTIME)
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM_CLOCK = Clock()


def lease_from_environment() -> float:
    """The lease length: MMSE_DRIVER_LEASE_S (seconds, at least 1) or LEASE_S."""
    text = os.environ.get(LEASE_ENVIRONMENT, "").strip()
    if not text:
        return LEASE_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 1):
        raise ConfigError(f"{LEASE_ENVIRONMENT}={text!r}: expected seconds, at least 1")
    return value


def _last_renewed(found: Found) -> float:
    """When the lock found was last renewed: its `renewed` time or the file's mtime, the
    later (a holder whose clock is behind does not lose its lock early)."""
    assert found.holder is not None
    return max(
        _epoch(found.holder.renewed), -math.inf if found.modified is None else found.modified
    )


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, timezone.utc).isoformat(timespec="milliseconds")


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: enough to tell whether that process still runs, and its lease."""

    host: str
    pid: int
    token: str = ""  # "" for a lock of an earlier version (no lease)
    boot_id: str = ""  # "" where the system does not say
    pid_namespace: str = ""
    process_start: str = ""  # the process's start time as the kernel counts it ("" unknown)
    taken: str = ""  # when the driver took the lock (UTC, ISO 8601)
    renewed: str = ""  # when it last renewed its lease
    lease_s: float = 0.0  # 0: no lease (an earlier version's lock)

    @classmethod
    def me(cls, clock: Clock = SYSTEM_CLOCK, lease_s: float = LEASE_S) -> Holder:
        now = _iso(clock.now())
        return cls(
            socket.gethostname(),
            os.getpid(),
            secrets.token_hex(16),
            boot_id(),
            pid_namespace(),
            process_start(os.getpid()),
            now,
            now,
            lease_s,
        )

    @property
    def has_lease(self) -> bool:
        return bool(self.token) and self.lease_s > 0

    def same_machine(self, other: Holder) -> bool:
        """Both on one machine, one boot and one pid namespace: a pid means the same there."""
        return (
            self.host == other.host
            and bool(self.boot_id)
            and self.boot_id == other.boot_id
            and bool(self.pid_namespace)
            and self.pid_namespace == other.pid_namespace
        )

    def describe(self) -> str:
        text = f"pid {self.pid} on {self.host}, started {self.taken}"
        if self.has_lease:
            text += f", lease of {self.lease_s:g} s renewed {self.renewed}"
        return text

    def to_json(self) -> str:
        return jsonio.dumps(asdict(self)) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Holder | None:
        """The holder a lock's text names; None when it is not a lock."""
        try:
            data = json.loads(text)
            if "token" not in data:  # an earlier version's lock: host, pid, started
                return cls(
                    str(data["host"]),
                    int(data["pid"]),
                    process_start=str(data.get("process_start", "")),
                    taken=str(data["started"]),
                )
            holder = cls(
                str(data["host"]),
                int(data["pid"]),
                str(data["token"]),
                str(data["boot_id"]),
                str(data["pid_namespace"]),
                str(data["process_start"]),
                str(data["taken"]),
                str(data["renewed"]),
                float(data["lease_s"]),
            )
            _epoch(holder.renewed)  # a time it can be compared by
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        if not (holder.token and math.isfinite(holder.lease_s) and holder.lease_s > 0):
            return None
        return holder


def boot_id() -> str:
    """This boot of this machine (Linux; "" elsewhere: a lock is then stale by its lease
    only)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def pid_namespace() -> str:
    """The process's pid namespace (Linux: `pid:[4026531836]`): containers of one machine
    share its boot but not their pids. "" where unknown."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux `/proc/<pid>/stat`, field
    22): with the pid it names one process, even after the pid is reused. "" elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]  # fields after "(comm)" start at field 3


def runs(holder: Holder) -> bool:
    """Does the process a lock of this machine names still run?"""
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


# --- the stores -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """A lock as read: its holder (None: not a lock), bytes, when it was last written (the
    store's clock; None unknown) and what a conditional replace needs (bytes, an ETag)."""

    holder: Holder | None
    raw: bytes
    modified: float | None
    version: object

    @property
    def what(self) -> str:
        return "empty" if not self.raw.strip() else "not a driver lock"


def _found(raw: bytes, modified: float | None, version: object) -> Found:
    return Found(Holder.from_json(raw.decode("utf-8", errors="replace")), raw, modified, version)


class _FileStore:
    """A local or NFS folder. Taken by link(2) of a fully written file (one creator wins);
    a stale lock is taken over by the one taker that makes its claim file (named after the
    stale lock's bytes) and then renames its own lock over it: the lock file is never
    missing meanwhile, so no driver can create one in between. Renewed by a rename into
    place: readers see the old lock or the new one."""

    def __init__(self, path: Path, lease_s: float):
        self.path, self.lease_s = path, lease_s

    def _new_file(self, data: bytes) -> Path:
        """A fully written file beside the lock, under a name of its own."""
        temp = self.path.with_name(f".{LOCK_NAME}.{secrets.token_hex(8)}.new")
        fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return temp

    def _link(self, data: bytes, target: Path) -> bool:
        """Make `target` holding `data`, unless there is one: True for the one creator."""
        temp = self._new_file(data)
        try:
            try:
                os.link(temp, target)
            except FileExistsError:
                pass
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
                    raise
                return _create_exclusive(target, data)  # a file system without hard links
            # Two names for the file: the link was made (NFS may report a retried link that
            # succeeded as a failure; the link count says what happened).
            return os.stat(temp).st_nlink == 2
        finally:
            temp.unlink(missing_ok=True)

    def create(self, data: bytes) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self._link(data, self.path)

    def read(self) -> Found | None:
        try:
            raw = self.path.read_bytes()
            modified = os.stat(self.path).st_mtime
        except FileNotFoundError:
            return None
        return _found(raw, modified, raw)

    def replace(self, found: Found, data: bytes) -> bool:
        """Take `found` over: claim it (one taker succeeds), check that it is still what was
        found, rename ours over it."""
        claim = self._claim(found.raw)
        if claim is None:
            return False
        try:
            again = self.read()
            if again is None or again.raw != found.raw:
                return False
            os.replace(self._new_file(data), self.path)
        finally:
            claim.unlink(missing_ok=True)
        for left in self.path.parent.glob(f"{claim.name.rsplit('-', 1)[0]}-*"):
            left.unlink(missing_ok=True)  # claims on the lock taken over: none holds it now
        return True

    def _claim(self, raw: bytes) -> Path | None:
        """The claim file on a stale lock of these bytes, or None when another taker holds
        it. A claim older than a lease (its taker died: by the file system's own clock)
        gives way to the next one."""
        digest = hashlib.sha256(raw).hexdigest()[:16]
        for attempt in range(8):
            claim = self.path.with_name(f"{_CLAIM}{digest}-{attempt}")
            if self._link(b"", claim):
                return claim
            probe = self._new_file(b"")  # now, by the file system's clock
            try:
                age = os.stat(probe).st_mtime - os.stat(claim).st_mtime
            except FileNotFoundError:
                age = math.inf  # given up meanwhile
            finally:
                probe.unlink(missing_ok=True)
            if age <= self.lease_s:
                return None
        return None

    def renew(self, found: Found, data: bytes) -> bool:
        atomic.write_bytes(self.path, data)
        return True

    def remove(self, found: Found) -> None:
        again = self.read()
        if again is not None and again.raw == found.raw:
            self.path.unlink(missing_ok=True)


def _create_exclusive(path: Path, data: bytes) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return True


class _ObjectStore:
    """An S3 store that honours conditional writes: `If-None-Match: *` to take the lock,
    `If-Match` of the ETag read to take a stale one over, to renew and to remove."""

    def __init__(self, location: str):
        self.location = location

    def create(self, data: bytes) -> bool:
        return storage.put_if_absent(self.location, data)

    def read(self) -> Found | None:
        try:
            got = storage.read_versioned(self.location)
        except FileNotFoundError:
            return None
        return _found(got.data, got.modified, got.tag)

    def replace(self, found: Found, data: bytes) -> bool:
        return storage.put_if_match(self.location, data, str(found.version))

    def renew(self, found: Found, data: bytes) -> bool:
        return storage.put_if_match(self.location, data, str(found.version))

    def remove(self, found: Found) -> None:
        storage.delete_if_match(self.location, str(found.version))


class _AdvisoryStore:
    """A store without conditional writes: read, write, read back after a second, which
    stops a second driver started after the first but not two started in the same second."""

    def __init__(self, location: str, clock: Clock):
        self.location, self.clock = location, clock

    def _written(self, data: bytes) -> bool:
        storage.write_bytes(self.location, data)
        self.clock.sleep(1.0)  # a driver that wrote at the same moment has written by now
        again = self.read()
        return again is not None and again.raw == data

    def create(self, data: bytes) -> bool:
        return self.read() is None and self._written(data)

    def read(self) -> Found | None:
        try:
            raw = storage.read_bytes(self.location)
        except FileNotFoundError:
            return None
        return _found(raw, storage.modified(self.location), raw)

    def replace(self, found: Found, data: bytes) -> bool:
        again = self.read()
        return again is not None and again.raw == found.raw and self._written(data)

    def renew(self, found: Found, data: bytes) -> bool:
        storage.write_bytes(self.location, data)
        return True

    def remove(self, found: Found) -> None:
        again = self.read()
        if again is not None and again.raw == found.raw:
            storage.delete(self.location)


# --- the lock -------------------------------------------------------------------------------


class DriverLock:
    """`with DriverLock(experiment):` holds the experiment for this process, renewing its
    lease on a heartbeat thread. `notes` are the lines to show (a stale lock taken over, an
    advisory lock); `check()` raises LeaseLost once the lease is not this driver's any more.

    `clock` and `pause` (how the heartbeat waits: `pause(seconds)` returns True to stop) are
    for tests; `heartbeat=False` leaves renewing to whoever calls `renew()`."""

    def __init__(
        self,
        experiment: str,
        me: Holder | None = None,
        *,
        lease_s: float | None = None,
        clock: Clock = SYSTEM_CLOCK,
        heartbeat: bool = True,
        pause: Callable[[float], bool] | None = None,
    ):
        self.experiment = experiment
        self.clock = clock
        self.me = me or Holder.me(clock, lease_s or lease_from_environment())
        self.lease_s = self.me.lease_s
        self.taken_over = ""
        self.advisory = ""
        self.lost = ""
        self._store: _FileStore | _ObjectStore | _AdvisoryStore | None = None
        self._confirmed = 0.0  # `clock.elapsed()` when the lease was last confirmed ours
        self._error = ""  # why the last renewal failed
        self._heartbeat = heartbeat
        self._stopping = threading.Event()
        self._pause = pause or self._stopping.wait
        self._thread: threading.Thread | None = None

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

    @property
    def notes(self) -> list[str]:
        """Lines for stderr once the lock is taken."""
        return [line for line in (self.advisory, self.taken_over) if line]

    @property
    def heartbeat_s(self) -> float:
        return self.lease_s / 4

    @property
    def valid_s(self) -> float:
        """How long after its last confirmation the driver still counts its lease as held:
        a third of a lease before another driver may take it over."""
        return self.lease_s * 2 / 3

    def _open(self):
        if not storage.is_remote(self.experiment):
            return _FileStore(Path(self.where), self.lease_s)
        location = storage.join(self.experiment, LOCK_NAME)
        if storage.conditional_writes(self.experiment):
            return _ObjectStore(location)
        self.advisory = (
            f"mmse: warning: {self.where}: the store does not honour conditional writes "
            "(If-None-Match), so the driver lock is advisory: two drivers started within the "
            "same second can both run"
        )
        return _AdvisoryStore(location, self.clock)

    def acquire(self) -> None:
        """Take the lock, or raise ExperimentLocked naming its holder. A stale lock is taken
        over (`taken_over` says whose)."""
        store = self._open()
        started, now = self.clock.elapsed(), self.clock.now()
        self.me = replace(self.me, taken=_iso(now), renewed=_iso(now))
        data = self.me.to_json().encode()
        for _ in range(10):
            if store.create(data):
                break
            found = store.read()
            if found is None:
                continue  # released meanwhile: try again
            if found.holder is not None and found.holder.token == self.me.token:
                break  # our own create, reported as failed (a retried request)
            reason = self._stale(found, now)
            if not reason:
                raise self._refusal(found, now)
            if store.replace(found, data):
                self.taken_over = f"{self.where}: {reason}"
                break
        else:
            raise ExperimentLocked(
                f"{self.where}: the lock changed hands while it was taken (another driver "
                "took it, or is taking it over); try again"
            )
        self._store, self._confirmed = store, started
        if self._heartbeat:
            self._thread = threading.Thread(
                target=self._beat, name="mmse-driver-lease", daemon=True
            )
            self._thread.start()

    def _stale(self, found: Found, now: float) -> str:
        """Why the lock found may be taken over (the takeover line), or "" while it holds."""
        holder = found.holder
        if holder is None:
            age = now - found.modified if found.modified is not None else -math.inf
            if age > self.lease_s:
                return (
                    f"took over a lock that cannot be read ({found.what}), last written "
                    f"{age:.0f} s ago: longer than a lease ({self.lease_s:g} s)"
                )
            return ""
        if not holder.has_lease:
            return ""  # an earlier version's lock: no lease to expire, no boot to compare
        age = now - _last_renewed(found)
        if age > holder.lease_s:
            return (
                f"took over the lock of a driver whose lease expired ({holder.describe()}; "
                f"not renewed for {age:.0f} s)"
            )
        if holder.same_machine(self.me) and not runs(holder):
            return f"took over the lock of a driver that no longer runs ({holder.describe()})"
        return ""

    def _refusal(self, found: Found, now: float) -> ExperimentLocked:
        holder, where = found.holder, self.where
        if holder is None:
            age = now - found.modified if found.modified is not None else math.nan
            written = f", written {age:.0f} s ago" if math.isfinite(age) else ""
            return ExperimentLocked(
                f"{where}: a lock that cannot be read ({found.what}{written}) holds this sweep: "
                "a driver may be taking it; it is taken over once it is older than a lease "
                f"({self.lease_s:g} s)"
                + ("" if found.modified is not None else ", or remove it if no driver runs")
            )
        if not holder.has_lease:
            return ExperimentLocked(
                f"{where}: a driver of an earlier version of mmse holds this sweep "
                f"({holder.describe()}; no lease): if it is gone, remove the file and start "
                "again"
            )
        if holder.same_machine(self.me):
            advice = "wait for it to end, or stop it first"
        else:
            left = holder.lease_s - (now - _last_renewed(found))
            advice = (
                "it runs on another machine, boot or container (its pid cannot be checked "
                f"from here): if it is gone, start again once its lease expires (in {left:.0f} s)"
            )
        return ExperimentLocked(
            f"{where}: another driver runs this sweep ({holder.describe()}); {advice}"
        )

    # --- holding it --------------------------------------------------------------------------

    def _lose(self, reason: str) -> None:
        if not self.lost:
            self.lost = (
                f"{self.where}: this driver lost the sweep's lock ({reason}); it stopped and "
                "wrote nothing more. If no other driver runs the sweep, run the same command "
                "with --resume"
            )

    def renew(self) -> bool:
        """One heartbeat: write the lease's new renewal time over our own lock. False when it
        was not renewed: the lock is not ours any more (`lost` says why), or the store failed
        (tried again at the next heartbeat)."""
        if self.lost or self._store is None:
            return False
        started, now = self.clock.elapsed(), self.clock.now()
        if started - self._confirmed > self.valid_s:  # never renew a lease that may have passed
            self._check_age(started)
            return False
        store, token = self._store, self.me.token
        try:
            found = store.read()
            if found is None:
                self._lose("the lock file is gone")
                return False
            if found.holder is None or found.holder.token != token:
                other = found.holder.describe() if found.holder else found.what
                self._lose(f"the lock now names another holder: {other}")
                return False
            renewed = replace(self.me, renewed=_iso(now))
            if not store.renew(found, renewed.to_json().encode()):
                again = store.read()  # our own write, reported as failed (a retried request)?
                if again is None or again.holder is None or again.holder.token != token:
                    self._lose("another driver replaced it while it was renewed")
                    return False
        except (OSError, RunFailure) as exc:  # StorageUnavailable is a RunFailure
            self._error = first_line(exc)
            return False
        self.me, self._confirmed, self._error = renewed, started, ""
        return True

    def _check_age(self, elapsed: float) -> None:
        age = elapsed - self._confirmed
        if age > self.valid_s:
            self._lose(
                f"its lease of {self.lease_s:g} s could not be renewed for {age:.0f} s"
                + (f": {self._error}" if self._error else "")
                + "; another driver may take it over"
            )

    def check(self) -> None:
        """Raise LeaseLost unless this driver holds its lease: called before every write of
        the sweep's record and results and in every step of Tune's loop."""
        if self._store is None and not self.lost:
            self._lose("the lock is not taken")
        if not self.lost:
            self._check_age(self.clock.elapsed())
        if self.lost:
            raise LeaseLost(self.lost)

    def _beat(self) -> None:
        while not self._pause(self.heartbeat_s) and not self._stopping.is_set():
            try:
                self.renew()
            except Exception as exc:  # noqa: BLE001 - check() reports it once the lease runs out
                self._error = f"{type(exc).__name__}: {first_line(exc)}"
            if self.lost:
                return

    def release(self) -> None:
        """Stop renewing and remove the lock if it is still ours."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=max(self.lease_s, 1.0))
            self._thread = None
        store, self._store = self._store, None
        if store is None:
            return
        found = store.read()
        if found is not None and found.holder is not None and found.holder.token == self.me.token:
            store.remove(found)


def print_notes(lock: DriverLock) -> None:
    """The lock's notes on stderr, one line each."""
    for line in lock.notes:
        print(line, file=sys.stderr, flush=True)
