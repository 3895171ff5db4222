"""How a recording's gaze became normalised screen coordinates: the `Conversion` a dataset
records in its build parameters, and the formulas (docs/rqa.md, "From your headset's export").

Normalised coordinates are linear in visual angle: 0.5 + angle / field of view, per axis, the
convention the simulator draws in and the fixation detector converts back with. A headset's
direction vector (dx, dy, dz) gives the angles atan2(dx, f dz) and atan2(dy, f dz), f = +1
when the headset looks down +z and -1 when it looks down -z (OpenXR, Meta).

Two records: `Conversion` says what the numbers mean (kind, time unit, forward axis, field of
view) and is what features and a model must agree on; `LayoutRecord` says where they were in
the file (`txy`, `vectors`, or the mapping file itself with its sha256): provenance, recorded
but not compared, so a clinic's export with other column names is accepted by a model
trained on the same kind of numbers.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from mmse_model.core.domain import FIELD_OF_VIEW_DEG
from mmse_model.core.schema import Schema

TimeUnit = Literal["s", "ms", "us", "ns"]
GazeKind = Literal["normalised", "degrees", "vectors"]
Forward = Literal["+z", "-z"]
SECONDS_PER_UNIT: dict[str, float] = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
# Angles from atan2 lie in (-180, 180): a field of view of 180 or more would map gaze behind
# the viewer onto the screen.
MAX_FIELD_OF_VIEW_DEG = 180.0


class Conversion(Schema):
    """What a recording's numbers meant and how they became normalised coordinates."""

    kind: GazeKind
    time_unit: TimeUnit = "s"
    forward: Forward | None = None  # vectors only: the axis the headset looks down
    field_of_view_deg: float = Field(default=FIELD_OF_VIEW_DEG, gt=0, lt=MAX_FIELD_OF_VIEW_DEG)

    def describe(self) -> str:
        forward = f", forward={self.forward}" if self.forward else ""
        return (
            f"kind={self.kind}, time_unit={self.time_unit}{forward}, "
            f"field_of_view_deg={self.field_of_view_deg:g}"
        )


class LayoutRecord(Schema):
    """Where a build found the gaze: `txy`, `vectors`, or a YAML mapping (kept whole)."""

    format: Literal["txy", "vectors", "mapping"]
    mapping: dict[str, Any] | None = None  # the mapping file as read (yaml.safe_load)
    mapping_sha256: str | None = None  # of the mapping file's bytes


# Datasets and bundles written before conversions were recorded were all this.
TXY_CONVERSION = Conversion(kind="normalised")
TXY_RECORD = LayoutRecord(format="txy")


def forward_sign(forward: str | None) -> float:
    return -1.0 if forward == "-z" else 1.0


def vectors_to_normalised(
    vectors: np.ndarray, forward: str | None, field_of_view_deg: float
) -> np.ndarray:
    """(n, 2) normalised coordinates of (n, 3) direction vectors of any length."""
    f = forward_sign(forward)
    ahead = f * vectors[:, 2]
    degrees = np.degrees(np.arctan2(vectors[:, :2], ahead[:, None]))  # (n, 2) horizontal, vertical
    return degrees_to_normalised(degrees, field_of_view_deg)


def degrees_to_normalised(degrees: np.ndarray, field_of_view_deg: float) -> np.ndarray:
    return 0.5 + degrees / field_of_view_deg


def normalised_to_vectors(
    xy: np.ndarray, forward: str | None, field_of_view_deg: float
) -> np.ndarray:
    """(n, 3) unit direction vectors whose conversion gives `xy` back (the inverse of
    `vectors_to_normalised` for angles inside +-90 degrees): what `mmse data synth --format
    vectors` writes."""
    radians = np.radians((xy - 0.5) * field_of_view_deg)  # (n, 2)
    vectors = np.column_stack(
        (np.tan(radians[:, 0]), np.tan(radians[:, 1]), np.full(len(xy), forward_sign(forward)))
    )
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
