"""What a dataset file holds: its signature, its task, and how its features were built.

`mmse data build` writes these as 0-d string arrays beside `X` and `y` in every
`<signature>/<Q>.npz` (no pickle: plain unicode arrays); a bundle records the same for each
task's model. Wherever features meet a model the two are compared, and a mismatch is
refused with one line naming what was expected and what was found (docs/design.md, "Data").
Files written before identity existed have none: their folder names still say signature and
task, and they are accepted for training.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmse_model.core.domain import TASKS, parse_signature
from mmse_model.core.errors import DataError, InputError, first_line
from mmse_model.core.hashing import combined_fingerprint, sha256_file

# Bumped whenever the same recording and signature would give other feature values.
BUILDER_VERSION = "2"

IDENTITY_KEYS = ("signature", "task", "build_params", "builder_version")


@dataclass(frozen=True)
class BuildParams:
    """The build settings that change feature values besides the signature itself."""

    mode: str  # "trajectory" or "fixation"
    rate_hz: float  # every recording resampled to this rate before embedding
    theiler_window: int  # RQA leaves out pairs |i - j| < theiler_window

    def to_dict(self) -> dict:
        return {
            "mode": self.mode,
            "rate_hz": float(self.rate_hz),
            "theiler_window": int(self.theiler_window),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping) -> BuildParams:
        return cls(
            mode=str(data["mode"]),
            rate_hz=float(data["rate_hz"]),
            theiler_window=int(data["theiler_window"]),
        )

    def describe(self) -> str:
        return f"mode={self.mode}, rate_hz={self.rate_hz:g}, theiler_window={self.theiler_window}"


@dataclass(frozen=True)
class DatasetIdentity:
    """Signature and task of a dataset file, and (for built files) its build parameters."""

    signature: str
    task: str
    build: BuildParams | None = None
    builder_version: str | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        """The npz entries that record this identity (0-d unicode arrays)."""
        if self.build is None or self.builder_version is None:
            raise ValueError("a written dataset records its build parameters and builder version")
        return {
            "signature": np.array(self.signature),
            "task": np.array(self.task),
            "build_params": np.array(self.build.to_json()),
            "builder_version": np.array(self.builder_version),
        }

    @classmethod
    def from_arrays(cls, path: object, arrays: Mapping[str, np.ndarray]) -> DatasetIdentity | None:
        """The identity an npz records, or None for a file written before identity existed."""
        present = [key for key in IDENTITY_KEYS if key in arrays]
        if not present:
            return None
        missing = [key for key in IDENTITY_KEYS if key not in arrays]
        if missing:
            raise DataError(f"{path}: records {', '.join(present)} but not {', '.join(missing)}")
        values = {}
        for key in IDENTITY_KEYS:
            value = arrays[key]
            if value.shape != () or value.dtype.kind != "U":
                raise DataError(
                    f"{path}: {key} must be a single string, got dtype {value.dtype} shape {value.shape}"
                )
            values[key] = str(value)
        try:
            build = BuildParams.from_dict(json.loads(values["build_params"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"{path}: build_params is not a build-parameter record ({exc})"
            ) from None
        return cls(values["signature"], values["task"], build, values["builder_version"])

    @classmethod
    def from_npz(cls, path: str | Path) -> DatasetIdentity | None:
        """The identity a dataset file records (only those entries are read), or None."""
        try:
            archive = np.load(path, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise DataError(f"{path}: not an npz archive (a single .npy array)")
            with archive:
                arrays = {key: archive[key] for key in IDENTITY_KEYS if key in archive.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise DataError(f"{path}: not a readable npz archive ({first_line(exc)})") from None
        return cls.from_arrays(path, arrays)

    def mismatch(self, expected: DatasetIdentity) -> str | None:
        """What differs from `expected` (fields `expected` leaves None are not compared)."""
        if self.signature != expected.signature:
            return f"signature: expected {expected.signature}, found {self.signature}"
        if self.task != expected.task:
            return f"task: expected {expected.task}, found {self.task}"
        if expected.build is not None and self.build is not None and self.build != expected.build:
            return f"build parameters: expected {expected.build.describe()}, found {self.build.describe()}"
        if (
            expected.builder_version is not None
            and self.builder_version is not None
            and self.builder_version != expected.builder_version
        ):
            return f"builder version: expected {expected.builder_version}, found {self.builder_version}"
        return None


# --- the data root's manifest ----------------------------------------------------------------

MANIFEST_NAME = "dataset.json"
# Beside it, one row per recording (or whole subject or task) the build skipped, with the reason.
BUILD_REPORT_NAME = "build_report.csv"
BUILD_REPORT_COLUMNS = ("subject_id", "task", "reason")
# Bumped when the manifest's layout changes; a reader refuses a newer one.
MANIFEST_FORMAT = 1


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

    @property
    def fingerprint(self) -> str:
        """One sha256 over the dataset files' paths and contents (`combined_fingerprint`)."""
        return combined_fingerprint((f.path, f.sha256) for f in self.files)

    def to_dict(self) -> dict:
        return {
            "format": MANIFEST_FORMAT,
            "fingerprint": self.fingerprint,
            "builder_version": self.builder_version,
            "build_params": self.build.to_dict(),
            "synthetic": self.synthetic,
            "source_fingerprint": self.source_fingerprint,
            "files": [f.to_dict() for f in sorted(self.files, key=lambda f: f.path)],
            "subjects": {task: list(ids) for task, ids in sorted(self.subjects.items())},
        }

    @classmethod
    def from_dict(cls, where: object, data: object) -> Manifest:
        """The manifest a parsed dataset.json holds; anything malformed is a DataError."""
        if not isinstance(data, dict):
            raise DataError(f"{where}: not a dataset manifest (a JSON object)")
        version = data.get("format")
        if not isinstance(version, int) or version > MANIFEST_FORMAT or version < 1:
            raise DataError(
                f"{where}: manifest format {version!r}; this code reads 1 to {MANIFEST_FORMAT}"
            )
        try:
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
    ) -> Manifest:
        """The manifest of files just written under `root`: relative path -> (identity, the
        file's subject ids). Every file records `build` and `builder_version`."""
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
        return cls(build, builder_version, tuple(files), subjects, source_fingerprint, synthetic)


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


def path_identity(path: str | Path) -> tuple[str | None, str | None]:
    """(signature, task) that a path `<signature>/<Q>.npz` says; None for a part it does not."""
    path = Path(path)
    task = path.stem if path.suffix == ".npz" and path.stem in TASKS else None
    try:
        signature: str | None = parse_signature(path.parent.name).name
    except InputError:
        signature = None
    return signature, task


def check_against_path(path: str | Path, recorded: DatasetIdentity | None) -> None:
    """Refuse a file whose recorded signature or task differs from what its path says."""
    if recorded is None:
        return
    signature, task = path_identity(path)
    if signature is not None and recorded.signature != signature:
        raise DataError(
            f"{path}: records signature {recorded.signature} but its folder says {signature} "
            f"(expected {signature}, found {recorded.signature})"
        )
    if task is not None and recorded.task != task:
        raise DataError(
            f"{path}: records task {recorded.task} but its name says {task} "
            f"(expected {task}, found {recorded.task})"
        )
