"""One driver per experiment (mmse_model/sweeps/lock.py): the lease, its heartbeat, stale
takeover, other hosts, boots and containers, and drivers racing for one experiment.

Time is the test's own (`FakeClock`): a lease expires when the test moves the clock, never
by waiting. Real processes stand for other drivers: a live one is a `sleep`, a dead one a
process that has exited (its pid then names no process); drivers that race are processes
started together."""

from __future__ import annotations

import errno
import hashlib
import json
import math
import multiprocessing
import os
import pickle
import queue
import socket
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from mmse_model.core.errors import EXIT_BAD_INPUT, EXIT_RUN_FAILURE, ConfigError, exit_status
from mmse_model.sweeps.lock import (
    LEASE_ENVIRONMENT,
    LOCK_NAME,
    Clock,
    DriverLock,
    ExperimentLocked,
    Holder,
    LeaseLost,
    boot_id,
    pid_namespace,
    process_start,
)

HOST = socket.gethostname()
LEASE = 120.0
HANG_GUARD_S = 120  # only against a hang; nothing here waits on a clock otherwise


class FakeClock(Clock):
    """Time that moves only when a test moves it. Its `now` lies far ahead of any file's
    real mtime (year 2096), so a lock's age is the test's own."""

    def __init__(self, now: float = 4_000_000_000.0):
        self.wall, self.since_boot, self.slept = now, 1000.0, []

    def now(self) -> float:
        return self.wall

    def elapsed(self) -> float:
        return self.since_boot

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.since_boot += seconds


def iso(when: float) -> str:
    return datetime.fromtimestamp(when, timezone.utc).isoformat(timespec="milliseconds")


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def live_pid():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield child.pid
    child.kill()
    child.wait()


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def other(clock: FakeClock, age: float = 0.0, **changes) -> Holder:
    """Another driver's lock: this machine (host, boot, pid namespace), a lease of LEASE
    renewed `age` seconds ago, a token of its own."""
    renewed = iso(clock.now() - age)
    return replace(
        Holder.me(clock, LEASE),
        token="0" * 32,
        taken=renewed,
        renewed=renewed,
        **changes,
    )


def plant(folder, holder: Holder | str, mtime: float | None = None):
    """Write a lock file (a holder, or raw text), with its mtime on the test's clock."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    path.write_text(holder if isinstance(holder, str) else holder.to_json())
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def lock(folder, clock, **options) -> DriverLock:
    return DriverLock(str(folder), lease_s=LEASE, clock=clock, heartbeat=False, **options)


def recorded(folder) -> dict:
    return json.loads((folder / LOCK_NAME).read_text())


# --- taking it and giving it back -----------------------------------------------------------


def test_the_lock_names_its_holder_renews_its_lease_and_goes_at_exit(tmp_path, clock):
    experiment = tmp_path / "runs" / "exp"  # not there yet: made with the lock
    with lock(experiment, clock) as held:
        first = recorded(experiment)
        assert first == {
            "host": HOST,
            "pid": os.getpid(),
            "boot_id": boot_id(),
            "pid_namespace": pid_namespace(),
            "process_start": process_start(os.getpid()),
            "token": held.me.token,
            "taken": iso(clock.now()),
            "renewed": iso(clock.now()),
            "lease_s": LEASE,
        }
        assert len(held.me.token) == 32 and held.notes == [] and held.taken_over == ""
        clock.advance(30)
        assert held.renew()
        again = recorded(experiment)
        assert again == {**first, "renewed": iso(clock.now())}  # taken stays
        held.check()  # held: no error
    assert list(experiment.iterdir()) == []  # no lock, no temporary file left


def test_a_second_driver_is_refused_with_one_line_naming_the_holder(tmp_path, clock, live_pid):
    holder = other(clock, age=10, pid=live_pid, process_start=process_start(live_pid))
    path = plant(tmp_path, holder)
    before = path.read_bytes()
    with pytest.raises(ExperimentLocked) as refused:
        lock(tmp_path, clock).acquire()
    message = str(refused.value)
    assert message == (
        f"{path}: another driver runs this sweep (pid {live_pid} on {HOST}, started "
        f"{holder.taken}, lease of 120 s renewed {holder.renewed}); wait for it to end, or "
        "stop it first"
    )
    assert "\n" not in message and exit_status(refused.value) == EXIT_BAD_INPUT
    assert path.read_bytes() == before  # left as it was


def test_a_dead_driver_of_this_machine_is_taken_over_at_once(tmp_path, clock):
    stale = other(clock, age=5, pid=dead_pid())  # its lease still runs: the process is gone
    path = plant(tmp_path, stale)
    with lock(tmp_path, clock) as held:
        assert held.taken_over == (
            f"{path}: took over the lock of a driver that no longer runs ({stale.describe()})"
        )
        assert held.notes == [held.taken_over]
        assert recorded(tmp_path)["token"] == held.me.token
        assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_NAME]  # no claim left
    assert list(tmp_path.iterdir()) == []


def test_a_reused_pid_does_not_keep_a_stale_lock(tmp_path, clock, live_pid):
    # The pid runs, but it is another process than the one that took the lock (its start differs).
    if not process_start(live_pid):
        pytest.skip("no /proc here: a reused pid cannot be told from its holder")
    plant(tmp_path, other(clock, pid=live_pid, process_start="1"))
    with lock(tmp_path, clock) as held:
        assert "a driver that no longer runs" in held.taken_over


@pytest.mark.parametrize(
    "elsewhere",
    [
        {"boot_id": "another-boot"},  # the machine rebooted, or another one of that name
        {"pid_namespace": "pid:[1]"},  # another container of this machine, the same name
        {"host": "gpu-node-7"},
    ],
    ids=["another-boot", "another-container", "another-host"],
)
def test_a_lock_of_another_machine_waits_for_its_lease_to_expire(tmp_path, clock, elsewhere):
    """Its pid cannot be checked from here (even with this host's name): a lock that looks
    dead here is taken over only once its lease expired."""
    stale = other(clock, pid=dead_pid(), **elsewhere)
    path = plant(tmp_path, stale)
    before = path.read_bytes()
    clock.advance(LEASE - 1)
    with pytest.raises(ExperimentLocked) as refused:
        lock(tmp_path, clock).acquire()
    assert str(refused.value) == (
        f"{path}: another driver runs this sweep ({stale.describe()}); it runs on another "
        "machine, boot or container (its pid cannot be checked from here): if it is gone, "
        "start again once its lease expires (in 1 s)"
    )
    assert exit_status(refused.value) == EXIT_BAD_INPUT and path.read_bytes() == before
    clock.advance(2)
    with lock(tmp_path, clock) as held:
        assert held.taken_over == (
            f"{path}: took over the lock of a driver whose lease expired ({stale.describe()}; "
            "not renewed for 121 s)"
        )
        assert recorded(tmp_path)["token"] == held.me.token


def test_the_lease_is_the_holders_own_and_counts_from_the_later_of_its_times(tmp_path, clock):
    # A lease of 30 s, its own: expired after 31 s whatever this driver's lease is.
    path = plant(tmp_path, other(clock, host="gpu-node-7", lease_s=30.0))
    clock.advance(31)
    with lock(tmp_path, clock) as held:
        assert "whose lease expired" in held.taken_over
    # A holder whose clock lags: the file's mtime says it was renewed 10 s ago.
    lagging = other(clock, age=500, host="gpu-node-7")
    plant(tmp_path, lagging, mtime=clock.now() - 10)
    before = path.read_bytes()
    with pytest.raises(ExperimentLocked, match=r"once its lease expires \(in 110 s\)"):
        lock(tmp_path, clock).acquire()
    assert path.read_bytes() == before


def test_an_unreadable_lock_is_taken_over_only_once_older_than_a_lease(tmp_path, clock):
    path = plant(tmp_path, "", mtime=clock.now() - 5)  # a driver between create and write
    with pytest.raises(ExperimentLocked) as refused:
        lock(tmp_path, clock).acquire()
    assert str(refused.value) == (
        f"{path}: a lock that cannot be read (empty, written 5 s ago) holds this sweep: a "
        "driver may be taking it; it is taken over once it is older than a lease (120 s)"
    )
    assert exit_status(refused.value) == EXIT_BAD_INPUT and path.read_bytes() == b""
    plant(tmp_path, "garbage", mtime=clock.now() - 121)
    with lock(tmp_path, clock) as held:
        assert held.taken_over == (
            f"{path}: took over a lock that cannot be read (not a driver lock), last written "
            "121 s ago: longer than a lease (120 s)"
        )
    plant(tmp_path, "", mtime=clock.now() - 121)
    with lock(tmp_path, clock) as held:
        assert "took over a lock that cannot be read (empty)" in held.taken_over


def test_a_lock_of_an_earlier_version_is_never_taken_over(tmp_path, clock):
    """A lock without a lease (host, pid, start time) cannot expire, and it has no boot to
    compare: removed by hand."""
    old = json.dumps({"host": HOST, "pid": dead_pid(), "started": "2025-01-02T03:04:05+00:00"})
    path = plant(tmp_path, old + "\n", mtime=clock.now() - 10**6)
    with pytest.raises(ExperimentLocked) as refused:
        lock(tmp_path, clock).acquire()
    message = str(refused.value)
    assert message.startswith(f"{path}: a driver of an earlier version of mmse holds this sweep")
    assert message.endswith("no lease): if it is gone, remove the file and start again")
    assert path.read_text() == old + "\n"


def test_release_never_removes_anothers_lock(tmp_path, clock, live_pid):
    held = lock(tmp_path, clock)
    held.acquire()
    # Replaced behind its back (a user removed it, another driver started).
    path = plant(tmp_path, other(clock, pid=live_pid))
    before = path.read_bytes()
    held.release()
    assert path.read_bytes() == before


def test_a_takeover_under_way_is_left_alone_and_a_dead_takers_claim_gives_way(tmp_path, clock):
    """A stale lock is taken over by the one driver that creates its claim file (named after
    the lock's bytes). A fresh claim: another driver is taking it over. A claim older than a
    lease (by the file system's own clock: its taker died) gives way to the next."""
    path = plant(tmp_path, other(clock, age=LEASE + 1, host="gpu-node-7"))
    before = path.read_bytes()
    claim = tmp_path / f".{LOCK_NAME}.takeover-{hashlib.sha256(before).hexdigest()[:16]}-0"
    claim.write_bytes(b"")
    with pytest.raises(ExperimentLocked) as refused:
        lock(tmp_path, clock).acquire()
    assert str(refused.value) == (
        f"{path}: the lock changed hands while it was taken (another driver took it, or is "
        "taking it over); try again"
    )
    assert path.read_bytes() == before
    an_hour_ago = os.stat(claim).st_mtime - 3600
    os.utime(claim, (an_hour_ago, an_hour_ago))
    with lock(tmp_path, clock) as held:
        assert "whose lease expired" in held.taken_over
        assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_NAME]  # claims cleared


def test_a_file_system_without_hard_links_takes_it_exclusively(tmp_path, clock, monkeypatch):
    def no_links(source, target):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    with lock(tmp_path, clock) as held:
        assert recorded(tmp_path)["token"] == held.me.token
        with pytest.raises(ExperimentLocked, match="another driver runs this sweep"):
            lock(tmp_path, clock).acquire()
    assert list(tmp_path.iterdir()) == []


def test_the_lease_length_comes_from_the_environment(tmp_path, clock, monkeypatch):
    monkeypatch.setenv(LEASE_ENVIRONMENT, "30")
    with DriverLock(str(tmp_path), clock=clock, heartbeat=False) as held:
        assert recorded(tmp_path)["lease_s"] == 30.0 and held.heartbeat_s == 7.5
    for bad in ("soon", "0.5", "nan"):
        monkeypatch.setenv(LEASE_ENVIRONMENT, bad)
        with pytest.raises(ConfigError) as refused:
            DriverLock(str(tmp_path), clock=clock)
        assert (
            str(refused.value) == (f"{LEASE_ENVIRONMENT}={bad!r}: expected seconds, at least 1")
            and exit_status(refused.value) == EXIT_BAD_INPUT
        )


# --- losing it ------------------------------------------------------------------------------


def test_a_driver_whose_lock_names_another_stops_with_one_line(tmp_path, clock, live_pid):
    held = lock(tmp_path, clock)
    held.acquire()
    # Another driver took it (a lease that this one could not renew in time, a lock
    # removed by hand and taken by a new driver).
    taker = other(clock, pid=live_pid, host="gpu-node-7")
    path = plant(tmp_path, taker)
    before = path.read_bytes()
    clock.advance(30)
    assert not held.renew()
    with pytest.raises(LeaseLost) as lost:
        held.check()
    message = str(lost.value)
    assert message == (
        f"{path}: this driver lost the sweep's lock (the lock now names another holder: "
        f"{taker.describe()}); it stopped and wrote nothing more. If no other driver runs the "
        "sweep, run the same command with --resume"
    )
    assert "\n" not in message and exit_status(lost.value) == EXIT_RUN_FAILURE
    assert not held.renew()  # never again
    held.release()
    assert path.read_bytes() == before  # the other's lock, untouched throughout


def test_a_driver_whose_lock_is_gone_stops(tmp_path, clock):
    held = lock(tmp_path, clock)
    held.acquire()
    (tmp_path / LOCK_NAME).unlink()
    assert not held.renew()
    with pytest.raises(LeaseLost, match=r"lost the sweep's lock \(the lock file is gone\)"):
        held.check()
    held.release()
    assert list(tmp_path.iterdir()) == []  # not made again


def test_a_lease_that_cannot_be_renewed_stops_the_driver_before_it_expires(tmp_path, clock):
    """Renewals that fail (the storage does not answer) are tried again; 2/3 of a lease
    after the last one that worked the driver stops, a third of a lease before another may
    take over: it never writes over a lease that may have passed on."""
    held = lock(tmp_path, clock)
    held.acquire()
    path = tmp_path / LOCK_NAME
    before = path.read_bytes()

    def fails():
        raise OSError("storage unreachable")

    store_read, held._store.read = held._store.read, fails
    for _ in range(2):
        clock.advance(39)
        assert not held.renew()
        held.check()  # 78 s: still within 2/3 of the lease
    clock.advance(3)  # 81 s
    with pytest.raises(LeaseLost) as lost:
        held.check()
    assert str(lost.value) == (
        f"{path}: this driver lost the sweep's lock (its lease of 120 s could not be renewed "
        "for 81 s: storage unreachable; another driver may take it over); it stopped and wrote "
        "nothing more. If no other driver runs the sweep, run the same command with --resume"
    )
    held._store.read = store_read  # the storage is back: too late, nothing is written
    assert not held.renew() and path.read_bytes() == before
    clock.advance(40)  # 121 s: another driver takes it over
    with lock(tmp_path, clock) as taker:
        assert "whose lease expired" in taker.taken_over
        held.release()
        assert recorded(tmp_path)["token"] == taker.me.token


def test_a_late_heartbeat_does_not_renew(tmp_path, clock):
    held = lock(tmp_path, clock)
    held.acquire()
    before = (tmp_path / LOCK_NAME).read_bytes()
    clock.advance(81)  # no renewal for 2/3 of a lease (a stopped process, a stalled thread)
    assert not held.renew()
    assert (tmp_path / LOCK_NAME).read_bytes() == before
    with pytest.raises(LeaseLost, match="could not be renewed for 81 s"):
        held.check()


class Heartbeats:
    """The heartbeat's pause, driven by the test: each `beat()` lets one renewal run and
    returns once it is done."""

    def __init__(self):
        self.go, self.parked, self.intervals = queue.Queue(), queue.Queue(), []
        self.ready = False

    def __call__(self, seconds: float) -> bool:
        self.intervals.append(seconds)
        self.parked.put(None)
        return self.go.get(timeout=HANG_GUARD_S)

    def beat(self, thread) -> None:
        if not self.ready:
            self.parked.get(timeout=HANG_GUARD_S)
        self.go.put(False)
        while thread.is_alive():  # parked again, or ended (a lost lease)
            try:
                self.parked.get(timeout=0.05)
                break
            except queue.Empty:
                continue
        self.ready = True

    def stop(self) -> None:
        self.go.put(True)


def test_the_heartbeat_renews_every_quarter_lease_and_notices_a_loss(tmp_path, clock):
    beats = Heartbeats()
    held = DriverLock(str(tmp_path), lease_s=LEASE, clock=clock, pause=beats)
    held.acquire()
    thread = held._thread
    for _ in range(4):  # 120 s in all: the lease holds as long as it is renewed
        clock.advance(30)
        beats.beat(thread)
        assert recorded(tmp_path)["renewed"] == iso(clock.now())
        held.check()
    assert beats.intervals[0] == LEASE / 4
    taker = other(clock, host="gpu-node-7")
    plant(tmp_path, taker)
    clock.advance(30)
    beats.beat(thread)
    thread.join(timeout=HANG_GUARD_S)
    assert not thread.is_alive()  # a lost lease ends the heartbeat
    with pytest.raises(LeaseLost, match="the lock now names another holder: pid"):
        held.check()
    held.release()
    assert recorded(tmp_path)["token"] == taker.token


def test_release_stops_the_heartbeat(tmp_path, clock):
    beats = Heartbeats()
    held = DriverLock(str(tmp_path), lease_s=LEASE, clock=clock, pause=beats)
    held.acquire()
    thread = held._thread
    beats.stop()
    held.release()
    assert not thread.is_alive() and list(tmp_path.iterdir()) == []


def test_the_guard_stops_tunes_loop_once_the_lease_is_lost(tmp_path, clock):
    """Every step of Tune's loop asks the lock first (ray_jobs/guard.py); Tune pickles its
    callbacks with the Tuner, the lock is not pickled with them."""
    from ray_jobs.guard import SweepGuard

    held = lock(tmp_path, clock)
    held.acquire()
    guard = SweepGuard(lease_check=held.check)
    guard.last_check = math.inf  # the watchdog's next look is not due: no Ray call here
    guard.on_step_end(iteration=1, trials=[])  # held: nothing happens
    assert pickle.loads(pickle.dumps(guard)).lease_check is None
    (tmp_path / LOCK_NAME).unlink()
    held.renew()
    with pytest.raises(LeaseLost):
        guard.on_step_end(iteration=2, trials=[])


# --- drivers racing -------------------------------------------------------------------------


def race(experiment: str, clock: FakeClock, start, done, results) -> None:
    """One driver of a race: take the lock when every driver is ready; hold it (and live)
    until every driver has tried."""
    held = DriverLock(experiment, lease_s=LEASE, clock=clock, heartbeat=False)
    start.wait()
    try:
        held.acquire()
        results.put(("won", os.getpid(), held.taken_over))
    except ExperimentLocked as exc:
        results.put(("refused", os.getpid(), str(exc)))
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        results.put(("crashed", os.getpid(), repr(exc)))
    done.wait(HANG_GUARD_S)


@pytest.mark.parametrize("before", ["nothing", "expired", "dead"])
def test_drivers_racing_for_one_experiment_exactly_one_wins(tmp_path, clock, before):
    if before == "expired":
        plant(tmp_path, other(clock, age=LEASE + 1, host="gpu-node-7"))
    elif before == "dead":
        plant(tmp_path, other(clock, pid=dead_pid()))
    context = multiprocessing.get_context("spawn")
    n = 6
    start, done, results = context.Barrier(n), context.Event(), context.Queue()
    drivers = [
        context.Process(target=race, args=(str(tmp_path), clock, start, done, results))
        for _ in range(n)
    ]
    for driver in drivers:
        driver.start()
    try:
        outcomes = [results.get(timeout=HANG_GUARD_S) for _ in range(n)]
        winners = [o for o in outcomes if o[0] == "won"]
        assert len(winners) == 1, outcomes
        assert all(o[0] == "refused" for o in outcomes if o not in winners), outcomes
        assert recorded(tmp_path)["pid"] == winners[0][1]
        assert (winners[0][2] != "") == (before != "nothing")
        assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_NAME]
    finally:
        done.set()
        for driver in drivers:
            driver.join(HANG_GUARD_S)
            if driver.is_alive():
                driver.kill()
