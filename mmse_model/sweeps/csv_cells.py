"""Reading trials.csv cells back; torch-free so the dashboard can use it without importing torch."""

from __future__ import annotations

from typing import Any


def csv_value(text: str) -> Any:
    """A trials.csv cell back to the int, float, bool or string it was written from."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"True": True, "False": False}.get(text, text)
