"""The project's one JSON writer: strict, sorted, plain.

Every JSON file and embedded document this project writes goes through `dumps`: NaN and
infinities become null (JSON has no NaN; strict parsers, `JSON.parse` among them, refuse the
`NaN` token Python would write), numpy scalars and arrays their Python values, tuples lists,
pydantic models their fields. Nowhere else decides how a value is written.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from pydantic import BaseModel


def plain(value: Any) -> Any:
    """`value` as plain JSON values: non-finite floats as None, tuples as lists, numpy
    scalars and arrays and pydantic models as their plain values, anything else unknown as
    its str."""
    if isinstance(value, BaseModel):
        return plain(value.model_dump(mode="python"))
    if isinstance(value, dict):
        return {_key(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def _key(key: Any) -> Any:
    return key if key is None or isinstance(key, (str, int, float, bool)) else str(key)


def dumps(value: Any, *, indent: int | None = None, compact: bool = False) -> str:
    """Strict JSON text of `value` (see `plain`), keys sorted; `compact`: no spaces."""
    separators = (",", ":") if compact else None
    return json.dumps(
        plain(value), sort_keys=True, allow_nan=False, indent=indent, separators=separators
    )


def json_text(value: Any) -> str:
    """A JSON file's text: indented, keys sorted, strict, ending in a newline."""
    return dumps(value, indent=2) + "\n"
