"""One way to check every document this project reads: typed pydantic models.

The training config, the sweep config, checkpoint payloads, trial rows and `result.json`
are `Schema` models: unknown keys are refused, types are strict (a YAML `true` is not the
number 1), and `parse` turns the first problem into a one-line `ConfigError` that names the
key, e.g. `training.lr: expected a number > 0, got -1`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from mmse_model.core.errors import ConfigError

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self is 3.11+; the project supports 3.10


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @classmethod
    def parse(cls, data: Any, where: str = "") -> Self:
        """Validate `data`; the first problem becomes a ConfigError prefixed by `where`."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"{where}{describe(cls, exc)}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (lists, dicts, numbers, strings): for YAML, JSON and Ray."""
        return self.model_dump(mode="json")


def describe(model: type[BaseModel], exc: ValidationError, unknown_first: bool = False) -> str:
    """The first problem in one line; with `unknown_first`, an unknown key before any other
    (a misspelt key explains the "missing" one that follows from it)."""
    errors = exc.errors(include_url=False)
    if unknown_first:
        errors = sorted(errors, key=lambda e: e["type"] != "extra_forbidden")
    error = errors[0]
    loc = [str(part) for part in error["loc"] if not str(part).startswith("function-")]
    key = ".".join(loc) or model.__name__
    if error["type"] == "extra_forbidden":
        known = _fields_at(model, loc[:-1])
        hint = f" (expected one of {sorted(known)})" if known else ""
        return f"{key}: unknown key{hint}"
    if error["type"] == "missing":
        return f"{key}: missing"
    return f"{key}: {_expected(error)}, got {_show(error.get('input'))}"


_KINDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "dict": "a mapping",
    "model": "a mapping",
    "list": "a list",
    "tuple": "a list",
}
_BOUNDS = {
    "greater_than": ">",
    "greater_than_equal": ">=",
    "less_than": "<",
    "less_than_equal": "<=",
}


def _expected(error: dict[str, Any]) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        noun = (
            "an integer"
            if isinstance(bound, int) and not isinstance(error.get("input"), float)
            else "a number"
        )
        return f"expected {noun} {_BOUNDS[kind]} {bound:g}"
    if kind == "string_pattern_mismatch":
        return f"expected a string matching {ctx.get('pattern')!r}"
    if kind == "string_too_short":
        shortest = ctx.get("min_length")
        return (
            "expected a non-empty string"
            if shortest == 1
            else f"expected at least {shortest} characters"
        )
    if kind == "string_too_long":
        return f"expected at most {ctx.get('max_length')} characters"
    for prefix, noun in _KINDS.items():
        if kind == prefix or kind.startswith(prefix + "_"):
            return f"expected {noun}"
    message = error["msg"]
    message = message.removeprefix("Value error, ")
    return message


def _fields_at(model: Any, loc: list[str]) -> list[str]:
    for part in loc:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = field.annotation
    return list(getattr(model, "model_fields", {}))


def _show(value: Any) -> str:
    return f"{value!r} (a string)" if isinstance(value, str) else repr(value)


def _number(value: Any) -> Any:
    # PyYAML (YAML 1.1) reads `1e-3` as a string; accept what is plainly a number. Booleans
    # are not numbers here, although Python's bool is an int.
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, bool):
        # ValueError, not TypeError: pydantic reports a ValueError; a TypeError escapes it.
        raise ValueError("expected a number, not true/false")  # noqa: TRY004 (for pydantic)
    if isinstance(value, int):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


# A float field that takes YAML's ints and exponent strings, never booleans or NaN.
# A list of names in YAML or JSON, kept as a tuple (a frozen model's field).
Names = Annotated[
    tuple[str, ...], BeforeValidator(lambda v: tuple(v) if isinstance(v, list) else v)
]

Number = Annotated[float, BeforeValidator(_number)]
