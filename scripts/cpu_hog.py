"""Keep every core busy for a while: run the test suite under load with it.

    python scripts/cpu_hog.py [--workers N] [--seconds S]   # default: one per core, 3600 s
    make test-under-load                                     # the suite with this running

Each worker is a plain busy loop at normal priority, so the tests compete for the CPU as
they would on a machine shared with other work. The hog stops by itself after `--seconds`
(and when it is killed, its workers go with it).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import time


def spin(until: float) -> None:
    x = 0
    while time.monotonic() < until:
        for _ in range(100_000):
            x += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seconds", type=float, default=3600.0)
    args = parser.parse_args()
    until = time.monotonic() + args.seconds
    workers = [
        multiprocessing.Process(target=spin, args=(until,), daemon=True)
        for _ in range(args.workers)
    ]
    for worker in workers:
        worker.start()

    def stop(signum, frame):
        for worker in workers:
            worker.terminate()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(
        f"cpu_hog: {args.workers} busy workers for {args.seconds:.0f} s (pid {os.getpid()})",
        flush=True,
    )
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main()
