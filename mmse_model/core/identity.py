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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmse_model.core import jsonio
from mmse_model.core.conversion import TXY_CONVERSION, Conversion, LayoutRecord
from mmse_model.core.domain import TASKS, parse_signature
from mmse_model.core.errors import ConfigError, DataError, InputError, first_line

# Bumped whenever the same recording and signature would give other feature values.
BUILDER_VERSION = "2"

IDENTITY_KEYS = ("signature", "task", "build_params", "builder_version")


@dataclass(frozen=True)
class BuildParams:
    """The build settings that change feature values besides the signature itself.

    `conversion` (what the recordings' numbers meant: kind, time unit, forward axis, field of
    view) is compared like the rest; `layout` (which columns of which file held them) is
    provenance, recorded but not compared (`compare=False`): two exports of the same kind of
    gaze under other column names give features of the same kind."""

    mode: str  # "trajectory" or "fixation"
    rate_hz: float  # every recording resampled to this rate before embedding
    theiler_window: int  # RQA leaves out pairs |i - j| < theiler_window
    conversion: Conversion = TXY_CONVERSION
    layout: LayoutRecord | None = field(default=None, compare=False)

    def to_dict(self) -> dict:
        data = {
            "mode": self.mode,
            "rate_hz": float(self.rate_hz),
            "theiler_window": int(self.theiler_window),
            "conversion": self.conversion.to_dict(),
        }
        if self.layout is not None:
            data["layout"] = self.layout.to_dict()
        return data

    def to_json(self) -> str:
        return jsonio.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping) -> BuildParams:
        """The record `to_dict` wrote; one written before conversions were recorded (no
        `conversion` key) read `t,x,y` files, and is upgraded to that (`TXY_CONVERSION`)."""
        try:
            conversion = (
                Conversion.parse(data["conversion"], "conversion.")
                if "conversion" in data
                else TXY_CONVERSION
            )
            layout = LayoutRecord.parse(data["layout"], "layout.") if "layout" in data else None
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return cls(
            mode=str(data["mode"]),
            rate_hz=float(data["rate_hz"]),
            theiler_window=int(data["theiler_window"]),
            conversion=conversion,
            layout=layout,
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
                    f"{path}: {key} must be a single string, got dtype {value.dtype} "
                    f"shape {value.shape}"
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
        if (
            expected.build is not None
            and self.build is not None
            and self.build.conversion != expected.build.conversion
        ):
            return (
                f"gaze conversion: expected {expected.build.conversion.describe()}, "
                f"found {self.build.conversion.describe()}"
            )
        if expected.build is not None and self.build is not None and self.build != expected.build:
            return (
                f"build parameters: expected {expected.build.describe()}, "
                f"found {self.build.describe()}"
            )
        if (
            expected.builder_version is not None
            and self.builder_version is not None
            and self.builder_version != expected.builder_version
        ):
            return (
                f"builder version: expected {expected.builder_version}, "
                f"found {self.builder_version}"
            )
        return None


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
