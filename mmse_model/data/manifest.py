"""A data root's manifest (`dataset.json`, written by `mmse data build`) and its fingerprint.

`data_fingerprint(root)` is what a sweep records of the data it started on, so that a resume
onto other data is refused: the manifest's fingerprint when the root has one (after checking
that the files still are what it lists), else one sha256 over the `<sig>/<Q>.npz` files. Both
are `combined_fingerprint` over (relative path, file sha256), so a root gives the same
fingerprint with or without its manifest.
"""

from __future__ import annotations

import csv
from pathlib import Path

from mmse_model.core.errors import DataError
from mmse_model.core.hashing import combined_fingerprint, sha256_file
from mmse_model.core.identity import (
    BUILD_REPORT_COLUMNS,
    BUILD_REPORT_NAME,
    MANIFEST_NAME,
    Manifest,
    read_manifest,
)


def dataset_files(root: str | Path) -> dict[str, Path]:
    """Relative path ("<sig>/<Q>.npz") -> path of every dataset file under `root`."""
    root = Path(root)
    return {
        f"{path.parent.name}/{path.name}": path
        for path in sorted(root.glob("*/*.npz"))
        if not path.parent.name.startswith(".") and path.is_file()
    }


def verify_manifest(root: str | Path, manifest: Manifest) -> dict[str, str]:
    """Check that the root's files are those the manifest lists, byte for byte; returns
    relative path -> sha256. A file changed, missing or added since the build is a DataError."""
    root = Path(root)
    digests = {rel: sha256_file(path) for rel, path in dataset_files(root).items()}
    listed = {f.path: f.sha256 for f in manifest.files}
    for rel, digest in sorted(listed.items()):
        if rel not in digests:
            raise DataError(f"{root / rel}: listed in {MANIFEST_NAME} but missing")
        if digests[rel] != digest:
            raise DataError(
                f"{root / rel}: its sha256 differs from {MANIFEST_NAME}'s (changed after the "
                f"build: expected {digest[:12]}..., found {digests[rel][:12]}...); rebuild the data root"
            )
    extra = sorted(set(digests) - set(listed))
    if extra:
        raise DataError(
            f"{root / extra[0]}: not listed in {MANIFEST_NAME} (added after the build); "
            "rebuild the data root or remove the file"
        )
    return digests


def data_fingerprint(root: str | Path) -> str:
    """One sha256 naming the data a run trains on (see the module docstring)."""
    root = Path(root)
    manifest = read_manifest(root)
    if manifest is not None:
        verify_manifest(root, manifest)
        return manifest.fingerprint
    files = dataset_files(root)
    if not files:
        raise DataError(f"{root}: no dataset files (<signature>/<Q>.npz)")
    return combined_fingerprint((rel, sha256_file(path)) for rel, path in files.items())


def excluded_recordings(root: str | Path) -> int | None:
    """How many recordings `mmse data build` left out of this root: the rows of its
    build_report.csv (a row is one recording, or a subject or task skipped whole). None where
    the root does not say: no dataset.json (not built whole by `mmse data build`) or a report
    that is missing or not the build's."""
    root = Path(root)
    if read_manifest(root) is None:
        return None
    try:
        with open(root / BUILD_REPORT_NAME, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    if not rows or tuple(rows[0]) != BUILD_REPORT_COLUMNS:
        return None
    return len(rows) - 1
