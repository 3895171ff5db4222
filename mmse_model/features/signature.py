"""RQA signatures: the (m, tau, eps, lmin) of one feature set, spelled `m2_tau1_eps0.055_lmin2`."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from mmse_model.errors import InputError

_PATTERN = re.compile(
    r"m(?P<m>[0-9]+)_tau(?P<tau>[0-9]+)"
    r"_eps(?P<eps>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)_lmin(?P<lmin>[0-9]+)"
)


@dataclass(frozen=True)
class Signature:
    """Embedding dimension m, delay tau (samples), radius eps (screen units), min line lmin.

    `name` is the string as given: it names the dataset directory, so it is kept verbatim
    rather than re-formatted (`eps0.05` and `eps0.050` are different directories).
    """

    name: str
    m: int
    tau: int
    eps: float
    lmin: int

    @property
    def window(self) -> int:
        """Samples spanned by one state vector."""
        return (self.m - 1) * self.tau + 1


def parse_signature(text: str) -> Signature:
    """Parse `m<int>_tau<int>_eps<float>_lmin<int>`; anything else is an InputError."""
    match = _PATTERN.fullmatch(text.strip())
    expected = "expected m<int>_tau<int>_eps<float>_lmin<int>, e.g. m2_tau1_eps0.055_lmin2"
    if match is None:
        raise InputError(f"signature {text!r}: {expected}")
    m, tau, lmin = int(match["m"]), int(match["tau"]), int(match["lmin"])
    eps = float(match["eps"])
    if m < 1 or tau < 1 or lmin < 1 or not (math.isfinite(eps) and eps > 0):
        raise InputError(f"signature {text!r}: needs m >= 1, tau >= 1, eps > 0, lmin >= 1")
    return Signature(text.strip(), m, tau, eps, lmin)


def parse_signatures(texts: list[str]) -> list[Signature]:
    """Parse a list of signatures, dropping repeats (first one wins) and keeping the order."""
    signatures: dict[str, Signature] = {}
    for text in texts:
        signature = parse_signature(text)
        signatures.setdefault(signature.name, signature)
    if not signatures:
        raise InputError(
            "no signature given: pass --signature m<int>_tau<int>_eps<float>_lmin<int>"
        )
    return list(signatures.values())
