"""Spreadsheet-safe CSV cells: the one rule every CSV this project writes and reads follows.

A spreadsheet that opens a CSV evaluates a text cell starting with `=`, `+`, `-`, `@`, a tab
or a carriage return as a formula (`=HYPERLINK(...)`, `+SUM(...)`, `@x`): a subject id or a
reason could run something on the machine of whoever opens the file. Following OWASP's advice
("CSV Injection"), such a cell is written with a single quote `'` in front, which a
spreadsheet shows as text. Numbers stay numbers: a cell that is a plain decimal number
(`-0.5`, `+3`, `1e-05`) is written as it is.

The rule is a bijection between what is meant and what is written, so every reader gets
back exactly what the writer was given, a genuine leading quote included:

    core(s)   = s without its leading quotes
    risky(c)  = c starts with one of TRIGGERS and is not a plain decimal number
    escape(s)   = "'" + s  if risky(core(s)),  else s
    unescape(t) = t[1:]    if t starts with "'" and risky(core(t)),  else t

Escaping keeps the core and adds one quote exactly when the core is risky, so
`unescape(escape(s)) == s` for every s (`=x` -> `'=x` -> `=x`; a genuine `'=x` -> `''=x` ->
`'=x`; `'abc` and `-0.5` stay as they are). A cell the project did not escape (`=x` written
by another tool) reads back as it is. `tests/test_csvsafe.py` checks the bijection.

Writers pass every cell through `cell` (or write with `csv_text`); readers take cells back
with `unescape` (or read with `read_dicts`). The dashboard's CSV export applies the same rule
in its script (mmse_app/dashboard_assets/table.js, `csvField`).
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"
# A plain decimal number, as Python writes ints and finite floats: a spreadsheet reads it
# as a number, never as a formula.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _risky(core: str) -> bool:
    return core[:1] in TRIGGERS and core != "" and _NUMBER.fullmatch(core) is None


def escape(text: str) -> str:
    """`text` as a cell a spreadsheet shows as text (see the module's rule)."""
    return QUOTE + text if _risky(text.lstrip(QUOTE)) else text


def unescape(text: str) -> str:
    """The text an escaped cell was written from; the inverse of `escape`."""
    core = text.lstrip(QUOTE)
    return text[1:] if len(core) < len(text) and _risky(core) else text


def cell(value: Any) -> str:
    """A value as a CSV cell: None empty, anything else its `str`, escaped. Finite numbers
    are plain decimals and so come out as they are; `-inf` is text and is escaped."""
    return "" if value is None else escape(value if isinstance(value, str) else str(value))


def csv_text(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    """A CSV file's text: the header and rows, every cell through `cell`, `\\n` line ends.

    Each row is written with a `\\r\\n` terminator and ends in `\\n`: the csv module quotes
    only fields holding a character of its terminator, so a cell with a carriage return
    (after its quote) is quoted, not left to end the line for a reader."""
    text = io.StringIO()
    line = io.StringIO()
    writer = csv.writer(line, lineterminator="\r\n")
    for row in itertools.chain([header], rows):
        line.seek(0)
        line.truncate()
        writer.writerow([cell(v) for v in row])
        text.write(line.getvalue()[:-2] + "\n")
    return text.getvalue()


def dict_rows(header: Sequence[str], rows: Iterable[dict[str, Any]]) -> list[list[Any]]:
    """Mappings as rows in the header's order (a missing key an empty cell)."""
    return [[row.get(column) for column in header] for row in rows]


def read_dicts(text: str | Iterable[str]) -> Iterator[dict[str | None, Any]]:
    """`csv.DictReader`'s rows with every header and cell unescaped (a row's surplus cells,
    under the key None, and missing ones, None, as DictReader gives them)."""
    lines = io.StringIO(text) if isinstance(text, str) else text
    reader = csv.DictReader(lines)
    if reader.fieldnames is not None:
        reader.fieldnames = [unescape(name) for name in reader.fieldnames]
    for row in reader:
        yield {
            key: value
            if value is None
            else [unescape(v) for v in value]
            if isinstance(value, list)
            else unescape(value)
            for key, value in row.items()
        }
