"""One driver per experiment (mmse_model/sweeps/lock.py): the lock file, stale takeover,
other hosts.

Real processes stand for other drivers: a live one is a `sleep`, a dead one a process that
has exited (its pid then names no process)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from mmse_model.core.errors import EXIT_BAD_INPUT, exit_status
from mmse_model.sweeps.lock import LOCK_NAME, DriverLock, ExperimentLocked, Holder, process_start

HOST = socket.gethostname()


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


def plant(folder, holder: Holder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK_NAME).write_text(holder.to_json())


def test_the_lock_names_its_holder_and_goes_at_exit(tmp_path):
    experiment = tmp_path / "runs" / "exp"  # not there yet: made with the lock
    with DriverLock(str(experiment)) as lock:
        recorded = json.loads((experiment / LOCK_NAME).read_text())
        assert (recorded["host"], recorded["pid"]) == (HOST, lock.me.pid)
        assert recorded["started"] and lock.taken_over == ""
    assert not (experiment / LOCK_NAME).exists()


def test_a_second_driver_is_refused_with_one_line_naming_the_holder(tmp_path, live_pid):
    holder = Holder(HOST, live_pid, "2025-01-02T03:04:05+00:00", process_start(live_pid))
    plant(tmp_path, holder)
    with pytest.raises(ExperimentLocked) as refused:
        DriverLock(str(tmp_path)).acquire()
    message = str(refused.value)
    assert message.startswith(
        f"{tmp_path / LOCK_NAME}: another driver runs this sweep (pid {live_pid} on {HOST}, "
        "started 2025-01-02T03:04:05+00:00)"
    )
    assert "\n" not in message and exit_status(refused.value) == EXIT_BAD_INPUT
    assert Holder.from_json((tmp_path / LOCK_NAME).read_text()) == holder  # left as it was


def test_a_stale_lock_of_this_host_is_taken_over_with_a_line(tmp_path):
    pid = dead_pid()
    plant(tmp_path, Holder(HOST, pid, "2025-01-02T03:04:05+00:00"))
    with DriverLock(str(tmp_path)) as lock:
        assert lock.taken_over == (
            f"{tmp_path / LOCK_NAME}: took over the lock of a driver that no longer runs "
            f"(pid {pid} on {HOST}, started 2025-01-02T03:04:05+00:00)"
        )
        assert Holder.from_json((tmp_path / LOCK_NAME).read_text()) == lock.me
    assert list(tmp_path.iterdir()) == []  # nothing left aside


def test_a_reused_pid_does_not_keep_a_stale_lock(tmp_path, live_pid):
    # The pid runs, but it is another process than the one that took the lock (its start differs).
    plant(tmp_path, Holder(HOST, live_pid, "2025-01-02T03:04:05+00:00", "1"))
    if not process_start(live_pid):
        pytest.skip("no /proc here: a reused pid cannot be told from its holder")
    with DriverLock(str(tmp_path)) as lock:
        assert "no longer runs" in lock.taken_over


def test_a_lock_of_another_host_is_never_taken_over(tmp_path):
    other = Holder("gpu-node-7", dead_pid(), "2025-01-02T03:04:05+00:00")
    plant(tmp_path, other)
    with pytest.raises(ExperimentLocked, match=r"pid \d+ on gpu-node-7.*remove the file"):
        DriverLock(str(tmp_path)).acquire()
    assert Holder.from_json((tmp_path / LOCK_NAME).read_text()) == other


def test_release_never_removes_anothers_lock(tmp_path, live_pid):
    lock = DriverLock(str(tmp_path))
    lock.acquire()
    someone = Holder(HOST, live_pid, "2025-01-02T03:04:05+00:00")
    plant(
        tmp_path, someone
    )  # replaced behind our back (a user removed ours, another driver started)
    lock.release()
    assert Holder.from_json((tmp_path / LOCK_NAME).read_text()) == someone


def test_an_unreadable_lock_is_refused_not_taken(tmp_path):
    (tmp_path / LOCK_NAME).write_text("garbage")
    with pytest.raises(
        ExperimentLocked,
        match=(
            "a lock that cannot be read holds this sweep; "
            "if no driver runs this sweep, remove the file"
        ),
    ):
        DriverLock(str(tmp_path)).acquire()
