"""The facts of the domain, each stated once: the tasks, their MMSE score ranges, the RQA
features, the signature grammar and the sampling rate its units refer to, the headset's
field of view.

Everything else imports these names; nothing restates them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from mmse_model.core.errors import InputError

# The five VR tasks, one per MMSE sub-domain, and the MMSE item each stands for.
TASKS: tuple[str, ...] = ("Q1", "Q2", "Q3", "Q4", "Q5")
TASK_ITEMS: dict[str, str] = {
    "Q1": "orientation to time",
    "Q2": "orientation to place",
    "Q3": "registration",
    "Q4": "attention and calculation",
    "Q5": "delayed recall",
}
# Sub-score range of each task in MMSE points; the five sum to 0-21 of the MMSE's 30.
SCORE_RANGES: dict[str, tuple[float, float]] = {
    "Q1": (0.0, 5.0),
    "Q2": (0.0, 5.0),
    "Q3": (0.0, 3.0),
    "Q4": (0.0, 5.0),
    "Q5": (0.0, 3.0),
}
SUBTOTAL_RANGE = (0.0, sum(high for _, high in SCORE_RANGES.values()))
MMSE_MAX = 30

# The 10 RQA measures of one recording under one signature, in dataset column order.
FEATURE_NAMES: tuple[str, ...] = (
    "recurrence_rate",
    "determinism",
    "mean_diag_line",
    "max_diag_line",
    "diag_line_entropy",
    "laminarity",
    "trapping_time",
    "max_vert_line",
    "vert_line_entropy",
    "mean_recurrence_time",
)
N_FEATURES = len(FEATURE_NAMES)

# Every recording is resampled to this rate before RQA, so that a signature's tau and lmin
# (in samples) and the line lengths mean the same time whatever the tracker (docs/rqa.md).
RQA_RATE_HZ = 90.0

# Subject groups by severity, as a groups file names them (matched ignoring case): every
# table and plot lists them in this order, other groups after it, by name.
GROUP_ORDER: tuple[str, ...] = ("healthy", "mci", "dementia")


def ordered_groups(groups: object) -> list[str]:
    """Group names in GROUP_ORDER (ignoring case), others after them by name."""
    names = [str(g) for g in groups]  # type: ignore[attr-defined]

    def rank(name: str) -> tuple[int, str]:
        low = name.lower()
        return (GROUP_ORDER.index(low) if low in GROUP_ORDER else len(GROUP_ORDER), name)

    return sorted(names, key=rank)


# The simple models every network is compared with (mmse_model/evaluation/baselines.py),
# in the order results list them, and the one name each goes by in every report and page.
BASELINES: tuple[str, ...] = ("train_mean", "ridge", "hist_gradient_boosting")
BASELINE_LABELS: dict[str, str] = {
    "train_mean": "training mean",
    "ridge": "Ridge",
    "hist_gradient_boosting": "HistGradientBoosting",
}
NETWORK_LABEL = "network"

# Horizontal field of view of a typical VR headset (ASSUMPTION; the synthetic cohort and
# the fixation filter convert normalised screen units to degrees with it).
FIELD_OF_VIEW_DEG = 100.0


def check_task(task: str) -> str:
    if task not in TASKS:
        raise InputError(f"task {task!r}: expected one of {', '.join(TASKS)}")
    return task


# --- RQA signatures -------------------------------------------------------------------------

_SIGNATURE = re.compile(r"m(?P<m>\d+)_tau(?P<tau>\d+)_eps(?P<eps>[0-9.eE+-]+)_lmin(?P<lmin>\d+)")
_GRAMMAR = "m<int>_tau<int>_eps<decimal>_lmin<int>, e.g. m2_tau1_eps0.055_lmin2"


@dataclass(frozen=True)
class Signature:
    """One RQA feature set: embedding dimension m, delay tau (samples), radius eps
    (normalised screen units) and minimum line length lmin (samples). Samples are those
    of the RQA_RATE_HZ grid every recording is resampled to (docs/rqa.md).

    A signature names a dataset folder, so it has exactly one spelling: integers without
    leading zeros, eps as the shortest plain decimal that reads back as the same number
    (`0.055`, `1`, never `.055`, `0.0550` or `5.5e-2`). `parse_signature` refuses any other
    spelling and says which one to use, so every command agrees on every folder name.
    """

    m: int
    tau: int
    eps: float
    lmin: int

    @property
    def name(self) -> str:
        return format_signature(self)

    @property
    def window(self) -> int:
        """Samples spanned by one state vector."""
        return (self.m - 1) * self.tau + 1

    def __str__(self) -> str:
        return self.name


def format_signature(signature: Signature) -> str:
    eps = np.format_float_positional(signature.eps, trim="-")
    return f"m{signature.m}_tau{signature.tau}_eps{eps}_lmin{signature.lmin}"


def parse_signature(text: str) -> Signature:
    """The signature `text` spells; anything else is an InputError naming the problem."""
    match = _SIGNATURE.fullmatch(text)
    if match is None:
        raise InputError(f"signature {text!r}: expected {_GRAMMAR}")
    m, tau, lmin = int(match["m"]), int(match["tau"]), int(match["lmin"])
    try:
        eps = float(match["eps"])
    except ValueError:
        raise InputError(f"signature {text!r}: eps {match['eps']!r} is not a number") from None
    if m < 1 or tau < 1 or lmin < 1 or not (math.isfinite(eps) and eps > 0):
        raise InputError(f"signature {text!r}: needs m >= 1, tau >= 1, eps > 0 and lmin >= 1")
    signature = Signature(m, tau, eps, lmin)
    if signature.name != text:
        raise InputError(f"signature {text!r}: not in canonical form, write it {signature.name!r}")
    return signature


def is_signature(text: str) -> bool:
    try:
        parse_signature(text)
    except InputError:
        return False
    return True


def parse_signatures(texts: list[str]) -> list[Signature]:
    """Several signatures, repeats dropped (first kept), order kept; none is an error."""
    signatures: dict[str, Signature] = {}
    for text in texts:
        signature = parse_signature(text)
        signatures.setdefault(signature.name, signature)
    if not signatures:
        raise InputError(f"no signature given: pass --signature {_GRAMMAR}")
    return list(signatures.values())
