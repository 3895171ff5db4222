"""The driver lock on a real S3-compatible server (SeaweedFS, tests/ray/s3_server.py): taken
with a conditional put (`If-None-Match: *`), taken over and renewed with `If-Match`, and
advisory where the store would not honour them.

SeaweedFS (4.48 here) honours both headers: a second put with `If-None-Match: *` is refused
with 412 Precondition Failed, as is a put or a delete with `If-Match` of another ETag. No
Ray: only the server."""

from __future__ import annotations

import multiprocessing
import os
import uuid

import pytest

from mmse_model.core import storage
from mmse_model.sweeps.lock import LOCK_NAME, DriverLock, ExperimentLocked, Holder, LeaseLost
from tests.ray.s3_server import CREDENTIAL_ENV
from tests.test_lock import HANG_GUARD_S, LEASE, FakeClock, other, race

pytestmark = pytest.mark.ray


@pytest.fixture
def experiment(s3_server, monkeypatch):
    for key, value in CREDENTIAL_ENV.items():
        monkeypatch.setenv(key, value)
    return s3_server.storage_uri(f"locks-{uuid.uuid4().hex[:10]}/exp")


def lock(experiment: str, clock: FakeClock, **options) -> DriverLock:
    return DriverLock(experiment, lease_s=LEASE, clock=clock, heartbeat=False, **options)


def holder_at(experiment: str) -> Holder | None:
    return Holder.from_json(storage.read_text(storage.join(experiment, LOCK_NAME)))


def test_seaweedfs_honours_conditional_puts(experiment, s3_server, monkeypatch, tmp_path):
    where = storage.join(experiment, "object")
    assert storage.put_if_absent(where, b"first")
    assert not storage.put_if_absent(where, b"second")  # 412: there is one
    got = storage.read_versioned(where)
    assert got.data == b"first"
    assert not storage.put_if_match(where, b"third", '"0123456789abcdef0123456789abcdef"')
    assert storage.put_if_match(where, b"fourth", got.tag)
    assert not storage.delete_if_match(where, got.tag)  # the tag of what was replaced
    assert storage.read_versioned(where).data == b"fourth"
    assert storage.conditional_writes(experiment)
    assert [e.name for e in storage.list_dir(experiment)] == ["object"]  # the probe is gone
    # A plain URI, the endpoint in the environment (as on a cluster); not S3: no such writes.
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    assert storage.conditional_writes(f"s3://{s3_server.bucket}/locks-{uuid.uuid4().hex[:10]}")
    assert not storage.conditional_writes(f"file://{tmp_path}")


def test_the_lock_on_s3_is_taken_refused_renewed_and_lost(experiment):
    clock = FakeClock()
    held = lock(experiment, clock)
    held.acquire()
    assert held.notes == [] and holder_at(experiment).token == held.me.token
    with pytest.raises(ExperimentLocked, match="another driver runs this sweep .*wait for it"):
        lock(experiment, clock).acquire()
    clock.advance(30)
    assert held.renew() and holder_at(experiment) == held.me
    taker = other(clock, host="gpu-node-7")
    storage.write_text(storage.join(experiment, LOCK_NAME), taker.to_json())
    assert not held.renew()
    with pytest.raises(LeaseLost, match="the lock now names another holder: pid"):
        held.check()
    held.release()
    assert holder_at(experiment) == taker  # never removed: not ours


def test_an_expired_lock_on_s3_is_taken_over_by_one(experiment):
    clock = FakeClock()
    stale = other(clock, age=LEASE + 1, host="gpu-node-7")
    storage.write_text(storage.join(experiment, LOCK_NAME), stale.to_json())
    with lock(experiment, clock) as held:
        assert "took over the lock of a driver whose lease expired" in held.taken_over
        assert holder_at(experiment).token == held.me.token
    assert not storage.exists(storage.join(experiment, LOCK_NAME))


@pytest.mark.parametrize("before", ["nothing", "expired"])
def test_drivers_racing_on_s3_exactly_one_wins(experiment, before):
    clock = FakeClock()
    if before == "expired":
        stale = other(clock, age=LEASE + 1, host="gpu-node-7")
        storage.write_text(storage.join(experiment, LOCK_NAME), stale.to_json())
    context = multiprocessing.get_context("spawn")  # each with the key in its environment
    n = 6
    start, done, results = context.Barrier(n), context.Event(), context.Queue()
    drivers = [
        context.Process(target=race, args=(experiment, clock, start, done, results))
        for _ in range(n)
    ]
    for driver in drivers:
        driver.start()
    try:
        outcomes = [results.get(timeout=HANG_GUARD_S) for _ in range(n)]
        winners = [o for o in outcomes if o[0] == "won"]
        assert len(winners) == 1, outcomes
        assert all(o[0] == "refused" for o in outcomes if o not in winners), outcomes
        assert holder_at(experiment).pid == winners[0][1]
    finally:
        done.set()
        for driver in drivers:
            driver.join(HANG_GUARD_S)
            if driver.is_alive():
                driver.kill()


def test_a_store_without_conditional_writes_gets_an_advisory_lock(experiment, monkeypatch):
    monkeypatch.setattr(storage, "conditional_writes", lambda folder: False)
    clock = FakeClock()
    with lock(experiment, clock) as held:
        advisory = (
            f"mmse: warning: {held.where}: the store does not honour conditional writes "
            "(If-None-Match), so the driver lock is advisory: two drivers started within the "
            "same second can both run"
        )
        assert held.notes == [advisory]
        assert clock.slept == [1.0]  # written, read back a second later
        with pytest.raises(ExperimentLocked, match="another driver runs this sweep"):
            lock(experiment, clock).acquire()
        clock.advance(30)
        assert held.renew()
    assert not storage.exists(storage.join(experiment, LOCK_NAME))
    assert os.environ["AWS_ACCESS_KEY_ID"] == CREDENTIAL_ENV["AWS_ACCESS_KEY_ID"]
