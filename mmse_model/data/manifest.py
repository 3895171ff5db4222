"""A data root's manifest (`dataset.json`, written by `mmse data build`), its fingerprint,
and whether its cohort is SYNTHETIC.

`data_fingerprint(root)` is what a sweep records of the data it started on, so that a resume
onto other data is refused: the manifest's fingerprint when the root has one (after checking
that the files still are what it lists), else one sha256 over the `<sig>/<Q>.npz` files. Both
are `combined_fingerprint` over (relative path, file sha256), so a root gives the same
fingerprint with or without its manifest.

dataset.json is also the marker that the folder is a data root this project wrote: it names
the tool and the kind of folder and lists every file in it (`contents`), and `foreign_content`
says why a folder may not be replaced by a build (anything there the marker does not list).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mmse_model.core.contract import check_version, version_of
from mmse_model.core.errors import DataError, first_line
from mmse_model.core.hashing import combined_fingerprint, sha256_file
from mmse_model.core.identity import BUILDER_VERSION, BuildParams, DatasetIdentity
from mmse_model.core.outputs import TOOL, unlisted

# --- the data root's manifest ----------------------------------------------------------------

MANIFEST_NAME = "dataset.json"
# Beside it, one row per recording (or whole subject or task) the build skipped, with the reason.
BUILD_REPORT_NAME = "build_report.csv"
BUILD_REPORT_COLUMNS = ("subject_id", "task", "reason")
# Bumped when the manifest's layout changes; a reader refuses a newer one. Version 1 wrote
# `"format": 1` (no tag); version 2 is the same layout, tagged as every contract is; version
# 3 adds `tool`, `kind` and `contents` (every file of the root: the marker that it is ours);
# version 4 adds `build_params.conversion` and `build_params.layout` (how the recordings' gaze
# was read: core/conversion.py); an older one read `t,x,y` files and is upgraded to that.
MANIFEST_FORMAT = "mmse-dataset"
MANIFEST_VERSION = 4
KIND = "data-root"


@dataclass(frozen=True)
class ManifestFile:
    """One `<signature>/<Q>.npz` of a data root: what it is and its content hash."""

    path: str  # relative to the data root, with "/"
    signature: str
    task: str
    sha256: str
    rows: int

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "signature": self.signature,
            "task": self.task,
            "sha256": self.sha256,
            "rows": self.rows,
        }


@dataclass(frozen=True)
class Manifest:
    """`<data_root>/dataset.json`: every dataset file with its sha256, the subjects of each
    task, the build parameters and builder version, the source recordings' fingerprint, and
    whether the cohort is SYNTHETIC. Written last by `mmse data build`: a root that has one
    was built whole."""

    build: BuildParams
    builder_version: str
    files: tuple[ManifestFile, ...]
    subjects: Mapping[str, tuple[str, ...]]  # task -> subject ids, as written
    source_fingerprint: str | None  # sha256 over the labels and every recording used
    synthetic: bool = False
    # Every file of the root, relative with "/": the dataset files, dataset.json itself and
    # whatever else the build wrote (build_report.csv). None: a manifest of version 1 or 2,
    # which did not list them.
    contents: tuple[str, ...] | None = None

    @property
    def fingerprint(self) -> str:
        """One sha256 over the dataset files' paths and contents (`combined_fingerprint`)."""
        return combined_fingerprint((f.path, f.sha256) for f in self.files)

    def to_dict(self) -> dict:
        return {
            "format": MANIFEST_FORMAT,
            "format_version": MANIFEST_VERSION,
            "tool": TOOL,
            "kind": KIND,
            "contents": sorted(self.listed()),
            "fingerprint": self.fingerprint,
            "builder_version": self.builder_version,
            "build_params": self.build.to_dict(),
            "synthetic": self.synthetic,
            "source_fingerprint": self.source_fingerprint,
            "files": [f.to_dict() for f in sorted(self.files, key=lambda f: f.path)],
            "subjects": {task: list(ids) for task, ids in sorted(self.subjects.items())},
        }

    def listed(self) -> set[str]:
        """Every file the root may hold: `contents`, or for an older manifest, which did not
        list them, its dataset files, dataset.json and build_report.csv."""
        if self.contents is not None:
            return {*self.contents, MANIFEST_NAME}
        return {MANIFEST_NAME, BUILD_REPORT_NAME, *(f.path for f in self.files)}

    @classmethod
    def from_dict(cls, where: object, data: object) -> Manifest:
        """The manifest a parsed dataset.json holds; anything malformed is a DataError."""
        version = version_of(
            str(where),
            data,
            MANIFEST_FORMAT,
            "a dataset manifest",
            lambda document: 1 if document.get("format") == 1 else None,
            DataError,
        )
        check_version(str(where), MANIFEST_FORMAT, version, 1, MANIFEST_VERSION, DataError)
        assert isinstance(data, dict)
        if version >= 3 and (data.get("tool"), data.get("kind")) != (TOOL, KIND):
            raise DataError(
                f"{where}: not a data root's manifest (tool {data.get('tool')!r}, kind "
                f"{data.get('kind')!r}; expected {TOOL!r}, {KIND!r})"
            )
        try:
            contents = None
            if version >= 4 and "conversion" not in data["build_params"]:
                raise KeyError("build_params.conversion")
            if version >= 3:
                if not isinstance(data["contents"], list):
                    raise TypeError("contents: expected a list of file names")
                contents = tuple(str(name) for name in data["contents"])
            files = tuple(
                ManifestFile(
                    str(f["path"]),
                    str(f["signature"]),
                    str(f["task"]),
                    str(f["sha256"]),
                    int(f["rows"]),
                )
                for f in data["files"]
            )
            subjects = {
                str(task): tuple(str(s) for s in ids) for task, ids in data["subjects"].items()
            }
            manifest = cls(
                BuildParams.from_dict(data["build_params"]),
                str(data["builder_version"]),
                files,
                subjects,
                data.get("source_fingerprint"),
                bool(data.get("synthetic", False)),
                contents,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(
                f"{where}: not a dataset manifest ({type(exc).__name__}: {first_line(exc)})"
            ) from None
        if data.get("fingerprint") != manifest.fingerprint:
            raise DataError(
                f"{where}: its fingerprint does not match its own file list (edited by hand?)"
            )
        return manifest

    @classmethod
    def of_files(
        cls,
        root: str | Path,
        written: Mapping[str, tuple[DatasetIdentity, Sequence[str]]],
        build: BuildParams,
        source_fingerprint: str | None,
        synthetic: bool = False,
        builder_version: str = BUILDER_VERSION,
        others: Sequence[str] = (),
    ) -> Manifest:
        """The manifest of files just written under `root`: relative path -> (identity, the
        file's subject ids), and `others`, the other files written there (build_report.csv).
        Every dataset file records `build` and `builder_version`."""
        for rel, (identity, _) in written.items():
            if (identity.build, identity.builder_version) != (build, builder_version):
                raise ValueError(f"{rel}: a data root's files share one build and builder version")
        files, subjects = [], {}
        for rel, (identity, ids) in sorted(written.items()):
            files.append(
                ManifestFile(
                    rel, identity.signature, identity.task, sha256_file(Path(root) / rel), len(ids)
                )
            )
            subjects.setdefault(identity.task, tuple(dict.fromkeys(str(s) for s in ids)))
        contents = tuple(sorted({*written, *others, MANIFEST_NAME}))
        return cls(
            build,
            builder_version,
            tuple(files),
            subjects,
            source_fingerprint,
            synthetic,
            contents,
        )


def read_manifest(root: str | Path) -> Manifest | None:
    """The root's dataset.json, or None for a root written before manifests existed."""
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path}: not a readable dataset manifest ({first_line(exc)})") from None
    return Manifest.from_dict(path, data)


def foreign_content(location: str) -> str | None:
    """Why the non-empty folder `location` is not a data root this project provably wrote,
    or None when it is (a build may replace it): its dataset.json must parse as this tool's
    data-root manifest, and every file in the folder must be one it lists (an older manifest,
    which lists only the dataset files: those, dataset.json and build_report.csv). A folder
    without dataset.json is never taken for one, not even one built before manifests existed."""
    root = Path(location)
    if not (root / MANIFEST_NAME).is_file() or (root / MANIFEST_NAME).is_symlink():
        return f"holds no {MANIFEST_NAME}: not a data root written by mmse data build"
    try:
        manifest = read_manifest(root)
    except DataError as exc:
        return f"not a data root written by mmse data build ({first_line(exc)})"
    assert manifest is not None
    extra = unlisted(root, manifest.listed())
    if extra is not None:
        return f"holds {extra}, not a file its {MANIFEST_NAME} lists (the build did not write it)"
    return None


# --- SYNTHETIC: said wherever a simulated cohort's numbers appear ------------------------------

# What `mmse data synth` writes beside a simulated cohort's recordings and labels.
SYNTHETIC_MARKER = "SYNTHETIC.txt"


def cohort_is_synthetic(*folders: str | Path) -> bool:
    """Whether a cohort is simulated: a SYNTHETIC.txt in any of its folders (recordings,
    their parent, the labels' folder). `mmse data build` carries the answer into dataset.json."""
    return any((Path(folder) / SYNTHETIC_MARKER).is_file() for folder in folders)


def is_synthetic(data_root: str | Path) -> bool:
    """The one answer to "are this data root's numbers SYNTHETIC?" for summaries, bundles and
    model cards: its dataset.json's flag (carried from the cohort's SYNTHETIC.txt by the
    build); a root without dataset.json (written before manifests) says so by a SYNTHETIC.txt
    of its own, as a cohort does."""
    manifest = read_manifest(data_root)
    if manifest is not None:
        return manifest.synthetic
    return cohort_is_synthetic(data_root)


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
                f"build: expected {digest[:12]}..., found {digests[rel][:12]}...); rebuild the "
                "data root"
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
