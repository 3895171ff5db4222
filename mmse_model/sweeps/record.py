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
- how many trials the sweep has, which a resume counts against, and the hyper-parameter
  samples its trials were given (`plan.hyperparameter_samples`).

A resume whose config, signatures, tasks or data differ stops with one line naming what
changed (exit status 2).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, Literal

from mmse_model.core import jsonio
from mmse_model.core.contract import Contract
from mmse_model.core.errors import InputError
from mmse_model.data import manifest
from mmse_model.sweeps.config import SweepConfig

RECORD_NAME = "sweep_record.json"
TRIAL_KEYS = ("samples", "signatures_per_trial", "search_seed", "search_space", "asha", "config")


class SweepChanged(InputError):
    """`--resume` onto a sweep whose config, signatures, tasks or data changed."""


class SweepRecord(Contract):
    """`sweep_record.json`. Version 1 (before the contract) is not resumed by this version:
    its trials were configured another way."""

    FORMAT: ClassVar[str] = "mmse-sweep-record"
    FORMAT_VERSION: ClassVar[int] = 2
    REBUILD_HINT: ClassVar[str] = (
        "the sweep was started by an earlier version of mmse, whose trials this version cannot "
        "run: start it again (another name or --storage) to resume or follow it; its finished "
        "results still open"
    )

    format: Literal["mmse-sweep-record"] = "mmse-sweep-record"
    format_version: int = 2
    sweep_config: dict[str, Any]  # the parts that make the trials (`trial_config`)
    signatures: tuple[str, ...]
    tasks: tuple[str, ...]
    data_fingerprint: str
    data_root: str  # where it was; the fingerprint is what counts
    n_trials: int
    samples: tuple[dict[str, Any], ...]  # the hyper-parameter samples, shared by every task
    created: str

    @classmethod
    def file_kind(cls) -> str:
        return "a sweep record"

    @classmethod
    def legacy_version(cls, document: dict[str, Any]) -> int | None:
        return 1 if "format" not in document and document.get("format_version") == 1 else None


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
    samples: list[dict[str, Any]],
    data: str | None = None,
) -> SweepRecord:
    return SweepRecord(
        sweep_config=trial_config(sweep),
        signatures=tuple(signatures),
        tasks=tuple(tasks),
        data_fingerprint=data if data is not None else data_fingerprint(sweep.data_root),
        data_root=str(Path(sweep.data_root).resolve()),
        n_trials=n_trials,
        samples=tuple(samples),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def changes(recorded: SweepRecord, today: SweepRecord) -> list[str]:
    """What differs between the record of the first start and today's, in words."""
    found = []
    before, now = _flat(recorded.sweep_config), _flat(today.sweep_config)
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
        old, new = list(getattr(recorded, key)), list(getattr(today, key))
        if old != new:
            added, removed = [s for s in new if s not in old], [s for s in old if s not in new]
            parts = ([f"added {', '.join(added)}"] if added else []) + (
                [f"removed {', '.join(removed)}"] if removed else []
            )
            found.append(f"{key} {'; '.join(parts) or 'reordered'}")
    if recorded.data_fingerprint != today.data_fingerprint:
        found.append(
            f"the data (its dataset files' fingerprint {recorded.data_fingerprint[:12]} -> "
            f"{today.data_fingerprint[:12]})"
        )
    return found


def check_same_sweep(where: str, recorded: SweepRecord, today: SweepRecord) -> None:
    """Refuse (one line, exit status 2) a resume of a sweep that is not the one recorded."""
    found = changes(recorded, today)
    if found:
        raise SweepChanged(
            f"{where}: --resume continues only the sweep that was started; changed since: "
            f"{'; '.join(found)}. Undo the change, or start a new sweep (another name or --storage)"
        )


def read_record(where: str, text: str) -> SweepRecord:
    """The sweep record of `text`; one this version cannot resume is an InputError."""
    return SweepRecord.read(where, text)


_MISSING = object()


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def _show(value: Any) -> str:
    return "(none)" if value is _MISSING else jsonio.dumps(value)
