"""Recordings in any CSV layout: `txy`, `vectors`, or a YAML mapping of another export's
columns (`mmse data build --format F`; docs/rqa.md, "From your headset's export").

A `Layout` says where a file keeps time, gaze and validity and what the numbers mean (its
`Conversion`, core/conversion.py); `read_layout` makes one from `--format` and its options
and refuses a bad mapping file in one line before any recording is read; `parse_with`
turns a recording's bytes into the `Recording` every later step takes (normalised
coordinates, seconds, invalid samples for blinks, tracking loss and what the tracker flagged).
A recording that does not fit its layout (a mapped column missing, vectors that mostly point
backwards) is a RecordingError: skipped and listed in build_report.csv like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import Field, ValidationError

from mmse_model.core.conversion import (
    MAX_FIELD_OF_VIEW_DEG,
    SECONDS_PER_UNIT,
    TXY_CONVERSION,
    TXY_RECORD,
    Conversion,
    Forward,
    GazeKind,
    LayoutRecord,
    TimeUnit,
    degrees_to_normalised,
    forward_sign,
    vectors_to_normalised,
)
from mmse_model.core.domain import FIELD_OF_VIEW_DEG
from mmse_model.core.errors import ConfigError, InputError
from mmse_model.core.hashing import sha256_bytes
from mmse_model.core.schema import Names, Number, Schema, describe
from mmse_model.features.recordings import (
    DEFAULT_LIMITS,
    Recording,
    RecordingError,
    RecordingLimits,
    check_on_screen,
    checked_recording,
    parse_columns,
    parse_recording,
    split_header,
)

FORMATS = ("txy", "vectors")  # or the path of a YAML mapping file
EYES = ("left", "right")
# A mapping reads only the columns it names, so an export may have many (SRanipal's have
# dozens); the bound keeps a header of garbage from becoming a huge list.
MAX_HEADER_COLUMNS = 1024
MAX_MAPPING_BYTES = 64_000
_NOT_A_DELIMITER = set('0123456789.-+eE"\r\n')


# --- the mapping file's schema (unknown keys refused, in one line naming the key) ------------


class TimeSpec(Schema):
    column: str
    unit: TimeUnit


class EyeColumns(Schema):
    left: Names
    right: Names


class GazeSpec(Schema):
    kind: GazeKind
    columns: Names | None = None
    eyes: EyeColumns | None = None


class ValidColumn(Schema):
    column: str
    equals: Number


class ValidSpec(Schema):
    """One column for every eye (`column`, `equals`), or one per eye (`left`, `right`)."""

    column: str | None = None
    equals: Number | None = None
    left: ValidColumn | None = None
    right: ValidColumn | None = None


class MappingFile(Schema):
    """A YAML mapping of an export's columns (docs/rqa.md has an example)."""

    delimiter: str = ","
    time: TimeSpec
    gaze: GazeSpec
    valid: ValidSpec | None = None
    forward: Forward | None = None
    field_of_view: Number = Field(default=FIELD_OF_VIEW_DEG, gt=0, lt=MAX_FIELD_OF_VIEW_DEG)

    @classmethod
    def read(cls, document: object, source: str) -> MappingFile:
        """The mapping a parsed YAML document holds; the first problem (an unknown key first)
        is a ConfigError of one line naming the file and the key."""
        if not isinstance(document, dict):
            raise ConfigError(
                f"{source}: expected a mapping (time, gaze, ...), got {document!r:.40}"
            )
        try:
            mapping = cls.model_validate(document)
        except ValidationError as exc:
            raise ConfigError(f"{source}: {describe(cls, exc, unknown_first=True)}") from None
        problem = mapping.problem()
        if problem:
            raise ConfigError(f"{source}: {problem}")
        return mapping

    def problem(self) -> str | None:
        """What the keys say together that no single key's type can (one line), or None."""
        gaze = self.gaze
        if (gaze.columns is None) == (gaze.eyes is None):
            return "gaze: give either columns: [...] or eyes: {left: [...], right: [...]}"
        width = 3 if gaze.kind == "vectors" else 2
        sources = (
            {"gaze.eyes.left": gaze.eyes.left, "gaze.eyes.right": gaze.eyes.right}
            if gaze.eyes is not None
            else {"gaze.columns": gaze.columns or ()}
        )
        for key, columns in sources.items():
            if len(columns) != width:
                return f"{key}: {len(columns)} column(s); gaze.kind {gaze.kind} takes {width}"
        if len(self.delimiter) != 1 or self.delimiter in _NOT_A_DELIMITER:
            return f"delimiter: {self.delimiter!r} is not a one-character separator"
        if self.forward is not None and gaze.kind != "vectors":
            return f"forward: only for gaze.kind vectors (this is {gaze.kind})"
        valid = self.valid
        if valid is not None:
            given = [
                k for k in ("column", "equals", "left", "right") if getattr(valid, k) is not None
            ]
            if given not in (["column", "equals"], ["left", "right"]):
                return (
                    f"valid: give column and equals, or left and right (each with column and "
                    f"equals); got {', '.join(given) or 'nothing'}"
                )
            if valid.left is not None and gaze.eyes is None:
                return "valid.left, valid.right: per-eye validity needs gaze.eyes"
        return None


# --- a layout: where the numbers are, and what they mean --------------------------------------


@dataclass(frozen=True)
class ValidRule:
    column: str
    equals: float
    optional: bool = False  # `vectors`' valid column may be absent: every sample valid


@dataclass(frozen=True)
class Layout:
    """How to read one recording file: columns per eye ("both" for combined gaze), their
    validity rule, the time column, the delimiter, and the `Conversion` recorded with the
    features."""

    conversion: Conversion
    record: LayoutRecord
    time_column: str = "t"
    gaze: tuple[tuple[str, tuple[str, ...]], ...] = (("both", ("x", "y")),)
    valid: tuple[tuple[str, ValidRule], ...] = ()  # eye ("both", "left", "right") -> rule
    delimiter: str = ","
    source: str = "txy"  # what the error messages call it: txy, vectors or the mapping's file

    def parse(self, data: bytes, limits: RecordingLimits = DEFAULT_LIMITS) -> Recording:
        """The Recording these bytes hold (RecordingError says why they cannot be used)."""
        if self.record.format == "txy":
            return parse_recording(data, limits)
        return _parse_mapped(self, data, limits)


TXY = Layout(TXY_CONVERSION, TXY_RECORD)


def vectors_layout(forward: str | None = None, field_of_view: float | None = None) -> Layout:
    """`--format vectors`: t,dx,dy,dz[,valid] with t in seconds and valid 1/0."""
    conversion = _conversion("vectors", "s", forward or "+z", field_of_view)
    return Layout(
        conversion,
        LayoutRecord(format="vectors"),
        gaze=(("both", ("dx", "dy", "dz")),),
        valid=(("both", ValidRule("valid", 1.0, optional=True)),),
        source="vectors",
    )


def read_layout(
    format_: str, forward: str | None = None, field_of_view: float | None = None
) -> Layout:
    """The layout `--format F` names (txy, vectors or a YAML mapping file), with `--forward`
    and `--field-of-view`; any problem is an InputError of one line, raised before any
    recording is read."""
    if format_ == "txy":
        if forward is not None:
            raise InputError("--forward: only for --format vectors (or a mapping's gaze vectors)")
        if field_of_view is None:
            return TXY
        return Layout(_conversion("normalised", "s", None, field_of_view), TXY_RECORD)
    if format_ == "vectors":
        return vectors_layout(forward, field_of_view)
    path = Path(format_)
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise InputError(
            f"--format {format_}: expected txy, vectors or a YAML mapping file (.yaml, .yml)"
        )
    if forward is not None or field_of_view is not None:
        raise InputError(
            f"{path}: a mapping file sets forward and field_of_view itself "
            "(--forward and --field-of-view are for --format txy and vectors)"
        )
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: mapping file not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the mapping file ({type(exc).__name__})") from None
    if len(raw) > MAX_MAPPING_BYTES:
        raise InputError(f"{path}: {len(raw)} bytes, not a mapping file (at most 64 kB)")
    try:
        document = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not a YAML mapping file ({reason})") from None
    return mapping_layout(document, str(path), sha256_bytes(raw))


def mapping_layout(document: object, source: str, digest: str | None = None) -> Layout:
    """The layout a parsed mapping file describes (a ConfigError names the key at fault)."""
    mapping = MappingFile.read(document, source)
    conversion = _conversion(
        mapping.gaze.kind,
        mapping.time.unit,
        (mapping.forward or "+z") if mapping.gaze.kind == "vectors" else None,
        mapping.field_of_view,
    )
    gaze = tuple(
        (eye, tuple(columns))
        for eye, columns in (
            (("left", mapping.gaze.eyes.left), ("right", mapping.gaze.eyes.right))
            if mapping.gaze.eyes is not None
            else (("both", mapping.gaze.columns or []),)
        )
    )
    valid: tuple[tuple[str, ValidRule], ...] = ()
    if mapping.valid is not None and mapping.valid.left is not None:
        assert mapping.valid.right is not None
        valid = tuple(
            (eye, ValidRule(rule.column, rule.equals))
            for eye, rule in (("left", mapping.valid.left), ("right", mapping.valid.right))
        )
    elif mapping.valid is not None:
        assert mapping.valid.column is not None and mapping.valid.equals is not None
        valid = (("both", ValidRule(mapping.valid.column, mapping.valid.equals)),)
    record = LayoutRecord(format="mapping", mapping=mapping.to_dict(), mapping_sha256=digest)
    return Layout(
        conversion,
        record,
        time_column=mapping.time.column,
        gaze=gaze,
        valid=valid,
        delimiter=mapping.delimiter,
        source=Path(source).name,
    )


def layout_of_record(record: LayoutRecord | None, conversion: Conversion) -> Layout:
    """The layout a dataset or bundle recorded (`mmse predict --recordings` without
    `--format` reads new recordings as the model's were read)."""
    if record is None or record.format == "txy":
        return read_layout("txy", None, conversion.field_of_view_deg)
    if record.format == "vectors":
        return vectors_layout(conversion.forward, conversion.field_of_view_deg)
    return mapping_layout(record.mapping, "the bundle's recorded mapping", record.mapping_sha256)


def _conversion(
    kind: str, time_unit: str, forward: str | None, field_of_view: float | None
) -> Conversion:
    data = {"kind": kind, "time_unit": time_unit, "forward": forward}
    if field_of_view is not None:
        data["field_of_view_deg"] = float(field_of_view)
    try:
        return Conversion.parse(data)
    except ConfigError as exc:
        text = str(exc).replace("field_of_view_deg", "--field-of-view")
        raise InputError(text) from None


# --- reading a mapped recording ---------------------------------------------------------------


def _parse_mapped(layout: Layout, data: bytes, limits: RecordingLimits) -> Recording:
    header, body_start = split_header(data)
    names = [_column_name(name) for name in header.split(layout.delimiter)]
    if len(names) > MAX_HEADER_COLUMNS:
        raise RecordingError(f"header of {len(names)} columns (at most {MAX_HEADER_COLUMNS})")
    wanted = _wanted_columns(layout, set(names))
    if not data[body_start:].strip():
        raise RecordingError("no samples")
    usecols = tuple(names.index(column) for column in wanted)
    values = parse_columns(data, body_start, len(names), usecols, layout.delimiter)
    column = {name: values[:, i] for i, name in enumerate(wanted)}
    t = column[layout.time_column.lower()] * SECONDS_PER_UNIT[layout.conversion.time_unit]
    xy, valid = _combined_gaze(layout, column)
    return checked_recording(t, xy, valid, limits)


def _column_name(name: str) -> str:
    return name.strip().strip('"').strip().lower()


def _wanted_columns(layout: Layout, present: set[str]) -> list[str]:
    """The columns to read, lower case, in a fixed order; a mapped column that the header
    lacks is a RecordingError naming it (an optional validity column is left out)."""
    required = [layout.time_column, *(c for _, columns in layout.gaze for c in columns)]
    required += [rule.column for _, rule in layout.valid if not rule.optional]
    missing = [c for c in dict.fromkeys(required) if c.lower() not in present]
    if missing:
        raise RecordingError(f"missing column(s) {','.join(missing)} (mapped by {layout.source})")
    optional = [r.column for _, r in layout.valid if r.optional and r.column.lower() in present]
    return list(dict.fromkeys(c.lower() for c in (*required, *optional)))


def _combined_gaze(layout: Layout, column: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(n, 2) normalised gaze and (n,) validity: per sample the mean of the eyes valid in it
    (flagged valid, finite, a vector that is not zero and points ahead), invalid when none is."""
    rules = dict(layout.valid)
    n = len(column[layout.time_column.lower()])
    conversion = layout.conversion
    total, count = np.zeros((n, 2)), np.zeros(n)
    ahead, behind = 0, 0
    for eye, names in layout.gaze:
        raw = np.column_stack([column[c.lower()] for c in names])  # (n, 2 or 3)
        flagged = np.ones(n, dtype=bool)
        for rule in (rules.get(eye), rules.get("both")):
            if rule is not None and rule.column.lower() in column:
                flagged &= column[rule.column.lower()] == rule.equals
        usable = flagged & np.all(np.isfinite(raw), axis=1)
        if conversion.kind == "vectors":
            # SRanipal and others write a zero vector when the eye was not tracked.
            usable &= np.any(raw != 0.0, axis=1)
            pointing = forward_sign(conversion.forward) * raw[:, 2]
            ahead += int((usable & (pointing > 0)).sum())
            behind += int((usable & (pointing < 0)).sum())
            usable &= pointing > 0
            xy = vectors_to_normalised(raw, conversion.forward, conversion.field_of_view_deg)
        elif conversion.kind == "degrees":
            xy = degrees_to_normalised(raw, conversion.field_of_view_deg)
            fov = conversion.field_of_view_deg
            check_on_screen(
                np.where(usable[:, None], xy, np.nan),
                f"expected degrees of visual angle (field of view {fov:g})",
            )
        else:
            xy = raw
            check_on_screen(np.where(usable[:, None], xy, np.nan), "expected normalised 0-1")
        total += np.where(usable[:, None], xy, 0.0)
        count += usable
    if behind > ahead:
        raise RecordingError(
            f"gaze vectors mostly point backwards: {behind} of {ahead + behind} samples have "
            f"{_axis_against(conversion.forward)} (forward is {conversion.forward}; "
            f"a headset that looks down {_other(conversion.forward)} needs "
            f"--forward {_other(conversion.forward)} or forward: {_other(conversion.forward)})"
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        xy = total / count[:, None]
    return xy, count > 0


def _other(forward: str | None) -> str:
    return "+z" if forward == "-z" else "-z"


def _axis_against(forward: str | None) -> Literal["dz > 0", "dz < 0"]:
    return "dz > 0" if forward == "-z" else "dz < 0"
