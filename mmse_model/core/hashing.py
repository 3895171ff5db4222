"""Content fingerprints: a file's sha256, and one digest over a set of named files.

Used wherever identity must survive a copy: the dataset manifest, a bundle's weights, and a
sweep's record of the data it started on (a resume onto other data is refused)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

CHUNK = 1 << 20  # read in 1 MiB pieces: memory stays flat whatever the file's size


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def combined_fingerprint(named_digests: Iterable[tuple[str, str]]) -> str:
    """One sha256 over (name, digest) pairs, independent of their order."""
    digest = hashlib.sha256()
    for name, file_digest in sorted(named_digests):
        digest.update(f"{name}\0{file_digest}\n".encode())
    return digest.hexdigest()
