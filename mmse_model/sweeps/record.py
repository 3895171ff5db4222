"""What a sweep is, recorded at its first start (`sweep_record.json`), so that `--resume`
continues only that sweep.

A resumed sweep runs the trials Tune saved, made from the config of its first start: a
changed YAML would otherwise count trials it never made (more: the sweep never finishes;
fewer: partial results written as final), and changed data would be split again from
today's files without a word. The record holds what the trials were made from:

- the sweep config's parts that make the trials (`samples`, `signatures_per_trial`,
  `search_seed`, `search_space`, `asha`, and the training `config` every trial starts from,
  with its defaults filled in), and the baseline the verdicts compare with
  (`evaluation.primary_comparator`: declared before the sweep ran, it cannot be swapped for
  another once the test numbers are known); the parts a resumed driver applies afresh
  (`watchdog`, `resources`, the rest of `evaluation`, where results go) may change;
- the signatures and tasks swept (as found in the data root when not listed);
- the data: its fingerprint (the data root's manifest, `mmse_model/data/manifest.py`);
- how many trials the sweep has, which a resume counts against.

A resume whose config, signatures, tasks or data differ stops with one line naming what
changed (exit status 2).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mmse_model.core.errors import InputError
from mmse_model.data import manifest
from mmse_model.sweeps.config import SweepConfig

RECORD_NAME = "sweep_record.json"
FORMAT_VERSION = 1
TRIAL_KEYS = ("samples", "signatures_per_trial", "search_seed", "search_space", "asha", "config")


class SweepChanged(InputError):
    """`--resume` onto a sweep whose config, signatures, tasks or data changed."""


def data_fingerprint(data_root: str | Path) -> str:
    """The data's fingerprint: the manifest's (`dataset.json`, checked against the files)
    where the data root has one, else one sha256 over every `<signature>/<Q>.npz`."""
    return manifest.data_fingerprint(data_root)


def trial_config(sweep: SweepConfig) -> dict[str, Any]:
    """The sweep config's parts that make the trials, and the declared comparator, defaults
    filled in (writing a default out is no change)."""
    values = sweep.to_dict()
    made = {key: values[key] for key in TRIAL_KEYS}
    made["config"] = sweep.base_config().to_dict()
    made["asha"] = {**values["asha"], "max_t": sweep.max_t()}
    made["evaluation"] = {"primary_comparator": sweep.evaluation.primary_comparator}
    return made


def make_record(
    sweep: SweepConfig,
    signatures: list[str],
    tasks: list[str],
    n_trials: int,
    data: str | None = None,
) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "sweep_config": trial_config(sweep),
        "signatures": list(signatures),
        "tasks": list(tasks),
        "data_fingerprint": data if data is not None else data_fingerprint(sweep.data_root),
        "data_root": str(
            Path(sweep.data_root).resolve()
        ),  # where it was; the fingerprint is what counts
        "n_trials": n_trials,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def changes(recorded: dict[str, Any], today: dict[str, Any]) -> list[str]:
    """What differs between the record of the first start and today's, in words."""
    found = []
    before, now = _flat(recorded.get("sweep_config", {})), _flat(today["sweep_config"])
    for key in sorted(before.keys() | now.keys()):
        # A schema key that one side lacks comes from a version without it, not from the
        # user; the search space's keys are the user's own, so one added or removed counts.
        if (key not in before or key not in now) and not key.startswith("search_space."):
            continue
        if before.get(key, _MISSING) != now.get(key, _MISSING):
            found.append(
                f"{key} {_show(before.get(key, _MISSING))} -> {_show(now.get(key, _MISSING))}"
            )
    for key in ("signatures", "tasks"):
        old, new = list(recorded.get(key, [])), list(today[key])
        if old != new:
            added, removed = [s for s in new if s not in old], [s for s in old if s not in new]
            parts = ([f"added {', '.join(added)}"] if added else []) + (
                [f"removed {', '.join(removed)}"] if removed else []
            )
            found.append(f"{key} {'; '.join(parts) or 'reordered'}")
    if recorded.get("data_fingerprint") != today["data_fingerprint"]:
        found.append(
            f"the data (its dataset files' fingerprint {str(recorded.get('data_fingerprint'))[:12]} -> "
            f"{today['data_fingerprint'][:12]})"
        )
    return found


def check_same_sweep(where: str, recorded: dict[str, Any], today: dict[str, Any]) -> None:
    """Refuse (one line, exit status 2) a resume of a sweep that is not the one recorded."""
    found = changes(recorded, today)
    if found:
        raise SweepChanged(
            f"{where}: --resume continues only the sweep that was started; changed since: "
            f"{'; '.join(found)}. Undo the change, or start a new sweep (another name or --storage)"
        )


def parse_record(where: str, text: str) -> dict[str, Any]:
    try:
        record = json.loads(text)
        if not isinstance(record, dict) or record.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"format_version {record.get('format_version') if isinstance(record, dict) else None}"
            )
        for key in ("sweep_config", "signatures", "tasks", "data_fingerprint", "n_trials"):
            record[key]
    except (ValueError, KeyError) as exc:
        raise InputError(f"{where}: not a sweep record this version reads ({exc})") from None
    return record


_MISSING = object()


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def _show(value: Any) -> str:
    return "(none)" if value is _MISSING else json.dumps(value, sort_keys=True)
