"""Where a sweep's time went, phase by phase: what the driver says at its end and records in
the summary's provenance (`phases`), and what benchmarks/grid_time.py reads.

Wall seconds of the driver's phases, in the order they run; besides them, the CPU seconds
the nested cross-validation's folds spent training and in the baselines' searches (summed
over the folds, which run in parallel: more than the phase's wall time on several cores).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

# The driver's phases, in their order (wall seconds).
WALL = (
    "trials",
    "scoring",
    "nested cross-validation",
    "intervals",
    "results",
    "bundle",
    "dashboard",
)
# Summed over the nested cross-validation's folds (CPU seconds of each fold's process).
IN_FOLDS = ("fold training", "fold baselines")
LINE_PREFIX = "time: "


@dataclass
class Phases:
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def recorded(self) -> dict[str, float]:
        """The phases measured so far, rounded to 0.1 s, in their order."""
        return {
            name: round(self.seconds[name], 1)
            for name in (*WALL, *IN_FOLDS)
            if name in self.seconds
        }

    def line(self) -> str:
        """`time: trials 182.1 s, scoring 20.3 s, ...; in the folds: fold training 185.0
        CPU-s, ...; total 787.2 s` (the total is the phases' wall seconds summed)."""
        wall = [f"{name} {self.seconds[name]:.1f} s" for name in WALL if name in self.seconds]
        folds = [
            f"{name} {self.seconds[name]:.1f} CPU-s" for name in IN_FOLDS if name in self.seconds
        ]
        total = sum(self.seconds.get(name, 0.0) for name in WALL)
        text = LINE_PREFIX + ", ".join(wall)
        if folds:
            text += "; in the folds: " + ", ".join(folds)
        return f"{text}; total {total:.1f} s"


def parse_line(text: str) -> dict[str, float]:
    """The phases of a `Phases.line` (the last such line in `text`), name -> seconds."""
    lines = [line for line in text.splitlines() if line.startswith(LINE_PREFIX)]
    if not lines:
        raise ValueError(f"no line starting {LINE_PREFIX!r}")
    out = {}
    for part in lines[-1][len(LINE_PREFIX) :].replace("; in the folds: ", ", ").split(", "):
        for piece in part.split("; "):
            name, value, _unit = piece.rsplit(" ", 2)
            out[name] = float(value)
    return out
