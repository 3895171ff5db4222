"""Every look at the data's answers, counted: `looks.jsonl` beside the sweep record.

Scoring a sweep on its subjects is a look: a config changed after one (more epochs, another
search space) and scored again has seen those subjects' results, and its numbers are
optimistic by however much that choice was worth. The sweep record stays written once; this
log is appended to, one line per scoring: when, which outer folds (a digest of their
subjects), the held-out split's digest when there is one, and a digest of the config that
made the trials and the evaluation. The summary and the model card give the count and
whether the config changed between looks.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

from mmse_model.core import jsonio, storage
from mmse_model.core.contract import Record
from mmse_model.core.errors import InputError

LOOKS_NAME = "looks.jsonl"


class Look(Record):
    time: str
    outer_folds: str | None  # sha256 of the outer folds' subjects (null: no nested CV)
    held_out_split: str | None  # sha256 of the held-out test subjects (null: none held out)
    config: str  # sha256 of the trial config and the evaluation settings


class Looks(Record):
    """What the summary and the model card say of the log."""

    count: int
    config_changed: bool  # the config differed between looks
    log: str = LOOKS_NAME


def digest(value: Any) -> str:
    return hashlib.sha256(jsonio.dumps(value).encode()).hexdigest()


def record_look(experiment: str, look: Look) -> Looks:
    """Append `look` to the experiment's log (earlier lines are kept as they are) and say
    what the log now holds."""
    where = storage.join(experiment, LOOKS_NAME)
    try:
        text = storage.read_text(where)
    except FileNotFoundError:
        text = ""
    earlier = read_looks(storage.redact(where), text)
    if text and not text.endswith("\n"):
        text += "\n"
    storage.write_text(where, text + jsonio.dumps(look) + "\n")
    looks = [*earlier, look]
    return Looks(count=len(looks), config_changed=len({x.config for x in looks}) > 1)


def read_looks(where: str, text: str) -> list[Look]:
    looks = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            looks.append(Look.model_validate(json.loads(line)))
        except ValueError as exc:
            raise InputError(f"{where}: line {number} is not a look ({exc})") from None
    return looks


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
