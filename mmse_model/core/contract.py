"""Files that leave a run: typed, versioned, written once and read by one function.

A `Contract` is a pydantic model of one JSON file (summary.json, the sweep record, the
bundle manifest, a data root's dataset.json, the dashboard's page data). It carries its
`format` (what kind of file) and `format_version`. Writers build the model and write it with
`to_json` (the one strict JSON writer, `core/jsonio.py`); readers get it from `read`, which
refuses another kind of file or a newer version in one line and upgrades an older one, step
by step through the contract's `UPGRADES`, into today's model. No reader elsewhere branches
on a file's age: what an older file lacks, its upgrade leaves at the field's default and
names in `not_recorded` (docs/design.md, "Outputs are contracts").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from pydantic import ConfigDict
from typing_extensions import Self

from mmse_model.core import jsonio
from mmse_model.core.errors import ConfigError, InputError, first_line
from mmse_model.core.schema import Schema

C = TypeVar("C", bound="Contract")
Upgrade = Callable[[dict[str, Any]], dict[str, Any]]


class Record(Schema):
    """A part of a contract: unknown keys refused, lax about int/float (JSON's numbers)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class Contract(Record):
    """One file that leaves a run. Subclasses set FORMAT, FORMAT_VERSION and, for every
    older version they still read, an upgrade to the next (`UPGRADES[v]`: v -> v + 1)."""

    FORMAT: ClassVar[str]
    FORMAT_VERSION: ClassVar[int]
    # version v -> a function turning a version-v document into a version v + 1 one
    UPGRADES: ClassVar[dict[int, Upgrade]] = {}
    # What to do with a file too old to read (no upgrade from its version), said after the
    # one-line refusal: e.g. "rebuild it with `mmse bundle EXPERIMENT`".
    REBUILD_HINT: ClassVar[str] = "write it again with this version"

    format: str
    format_version: int
    # Fields an older file did not record (dotted paths), filled by its upgrade: a reader
    # says "not recorded" for these instead of guessing. Today's writers leave it empty.
    not_recorded: tuple[str, ...] = ()

    def to_json(self) -> str:
        return jsonio.json_text(self.model_dump(mode="python"))

    @classmethod
    def legacy_version(cls, document: dict[str, Any]) -> int | None:
        """The version of a document written before it carried this `format` tag, or None
        when it is not such a file. Contracts that had untagged versions override it."""
        return None

    @classmethod
    def version_of(cls, where: str, document: Any) -> int:
        """The document's format version; a document of another kind is an InputError."""
        return version_of(where, document, cls.FORMAT, cls.file_kind(), cls.legacy_version)

    @classmethod
    def file_kind(cls) -> str:
        return f"a {cls.FORMAT} file"

    @classmethod
    def upgrade(cls, where: str, document: dict[str, Any], version: int) -> dict[str, Any]:
        """Today's document from a version-`version` one (refused when newer, or too old)."""
        check_version(where, cls.FORMAT, version, 0, cls.FORMAT_VERSION, InputError)
        while version < cls.FORMAT_VERSION:
            step = cls.UPGRADES.get(version)
            if step is None:
                raise InputError(
                    f"{where}: {cls.FORMAT} format version {version} is no longer read "
                    f"(this code reads {min(cls.UPGRADES, default=cls.FORMAT_VERSION)} to "
                    f"{cls.FORMAT_VERSION}); {cls.REBUILD_HINT}"
                )
            try:
                document = step(dict(document))
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
                raise InputError(
                    f"{where}: not a readable {cls.FORMAT} file of version {version} "
                    f"({type(exc).__name__}: {first_line(exc)})"
                ) from None
            version += 1
        return document

    @classmethod
    def from_document(cls, where: str, document: Any) -> Self:
        """The model of a parsed document of any version this code reads."""
        version = cls.version_of(where, document)
        document = cls.upgrade(where, document, version)
        try:
            return cls.parse(document)
        except ConfigError as exc:
            raise InputError(f"{where}: {exc}") from None

    @classmethod
    def read(cls, where: str, text: str) -> Self:
        """The model of a file's text (`where` names the file in errors)."""
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise InputError(f"{where}: not JSON ({first_line(exc)})") from None
        return cls.from_document(where, document)


def version_of(
    where: str,
    document: Any,
    fmt: str,
    kind: str,
    legacy: Callable[[dict[str, Any]], int | None] = lambda document: None,
    error: type[InputError] = InputError,
) -> int:
    """The format version of a document tagged `format: fmt`, or `legacy(document)` for one
    written before it carried the tag; anything else is `error`, one line. The one version
    check of every file this project reads (contracts, checkpoints, dataset manifests)."""
    if not isinstance(document, dict):
        raise error(f"{where}: not {kind} (expected a mapping)")
    if document.get("format") == fmt:
        version = document.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise error(f"{where}: format_version {version!r}: expected an integer")
        return version
    old = legacy(document)
    if old is None:
        raise error(f"{where}: not {kind} (format {document.get('format')!r}, expected {fmt!r})")
    return old


def check_version(
    where: str, fmt: str, version: int, oldest: int, newest: int, error: type[InputError]
) -> None:
    """Refuse, in one line, a version this code does not read: newer than it knows, or
    older than it still reads."""
    if version > newest:
        raise error(
            f"{where}: {fmt} format version {version} is newer than this code reads "
            f"(up to {newest}); update mmse-model"
        )
    if version < oldest:
        raise error(
            f"{where}: {fmt} format version {version} is no longer read (this code reads "
            f"{oldest} to {newest})"
        )


def tagged(cls: type[Contract], body: dict[str, Any], version: int) -> dict[str, Any]:
    """`body` with the contract's format tag and `version`: what an upgrade returns."""
    return {**body, "format": cls.FORMAT, "format_version": version}
