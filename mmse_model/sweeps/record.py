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
changed (exit status 2). Settings are compared deeply: a key added to, removed from or
renamed in any mapping counts (`config.ray.worker_resources {} -> {"gpu_big": 1.0}`), so a
resume must run the code version that started the sweep (a newer version's config has keys
the record lacks). The record names that version (`code_version`: the package's version and
git commit); where it differs from today's, the refusal says so.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, ClassVar, Literal

from mmse_model.core import jsonio
from mmse_model.core.contract import Contract, tagged
from mmse_model.core.errors import InputError
from mmse_model.data import manifest
from mmse_model.sweeps.config import SweepConfig

RECORD_NAME = "sweep_record.json"
TRIAL_KEYS = ("samples", "signatures_per_trial", "search_seed", "search_space", "asha", "config")


class SweepChanged(InputError):
    """`--resume` onto a sweep whose config, signatures, tasks or data changed."""


class SweepRecord(Contract):
    """`sweep_record.json`. Version 1 (before the contract) is not resumed by this version:
    its trials were configured another way. Version 2 did not record the code version."""

    FORMAT: ClassVar[str] = "mmse-sweep-record"
    FORMAT_VERSION: ClassVar[int] = 3
    REBUILD_HINT: ClassVar[str] = (
        "the sweep was started by an earlier version of mmse, whose trials this version cannot "
        "run: start it again (another name or --storage) to resume or follow it; its finished "
        "results still open"
    )

    format: Literal["mmse-sweep-record"] = "mmse-sweep-record"
    format_version: int = 3
    sweep_config: dict[str, Any]  # the parts that make the trials (`trial_config`)
    signatures: tuple[str, ...]
    tasks: tuple[str, ...]
    data_fingerprint: str
    data_root: str  # where it was; the fingerprint is what counts
    n_trials: int
    samples: tuple[dict[str, Any], ...]  # the hyper-parameter samples, shared by every task
    created: str
    code_version: str = ""  # the code that started the sweep (`code_version()`); "" unknown

    @classmethod
    def file_kind(cls) -> str:
        return "a sweep record"

    @classmethod
    def legacy_version(cls, document: dict[str, Any]) -> int | None:
        return 1 if "format" not in document and document.get("format_version") == 1 else None


def _upgrade_2(document: dict[str, Any]) -> dict[str, Any]:
    """Version 2 -> 3: the code version was not recorded."""
    not_recorded = [*document.get("not_recorded", ()), "code_version"]
    return tagged(SweepRecord, {**document, "not_recorded": not_recorded}, 3)


SweepRecord.UPGRADES = {2: _upgrade_2}


@lru_cache(maxsize=1)
def code_version() -> str:
    """This code's version: the package's, and the git commit of the checkout it runs from
    (`mmse-model 0.1.0, git 3b96bae12f4c`; without git, the package's alone)."""
    try:
        text = f"mmse-model {version('mmse-model')}"
    except PackageNotFoundError:
        text = "mmse-model (not installed)"
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():  # an installed copy, not a checkout
        return text
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return text
    commit = done.stdout.strip()
    return f"{text}, git {commit}" if done.returncode == 0 and commit else text


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
        code_version=code_version(),
    )


def changes(recorded: SweepRecord, today: SweepRecord) -> list[str]:
    """What differs between the record of the first start and today's, in words."""
    # As JSON holds them (a tuple is a list), as the record is read back.
    found = _differences(_plain(recorded.sweep_config), _plain(today.sweep_config), "")
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


# A mapping whose keys changed is shown whole when both sides are this short, else key by key.
_SHOWN_WHOLE = 100


def _differences(before: Any, now: Any, path: str) -> list[str]:
    """Every difference between two settings, deeply: mappings are compared key by key
    (`_key_by_key`), a mapping whose keys differ (added, removed, renamed) is otherwise one
    change shown whole (`config.ray.worker_resources {} -> {"gpu_big": 1.0}`), anything else
    is compared as a value. A key one side lacks shows as `(none)`."""
    if before == now:
        return []
    if isinstance(before, dict) and isinstance(now, dict) and _key_by_key(before, now):
        return [
            change
            for key in sorted(before.keys() | now.keys())
            for change in _differences(
                before.get(key, _MISSING), now.get(key, _MISSING), f"{path}{key}."
            )
        ]
    return [f"{path.rstrip('.')} {_show(before)} -> {_show(now)}"]


def _key_by_key(before: dict[str, Any], now: dict[str, Any]) -> bool:
    """Two mappings are compared key by key when they have the same keys, or when one whose
    keys changed is too long to show whole (neither empty): then each added, removed or
    changed key is named."""
    if before.keys() == now.keys():
        return True
    return bool(before and now) and max(len(_show(before)), len(_show(now))) > _SHOWN_WHOLE


def check_same_sweep(where: str, recorded: SweepRecord, today: SweepRecord) -> None:
    """Refuse (one line, exit status 2) a resume of a sweep that is not the one recorded;
    where the code version differs too, say that the resume must run the version that
    started the sweep."""
    found = changes(recorded, today)
    if found:
        raise SweepChanged(
            f"{where}: --resume continues only the sweep that was started; changed since: "
            f"{'; '.join(found)}.{_version_note(recorded, today)} Undo the change, or start "
            "a new sweep (another name or --storage)"
        )


def _version_note(recorded: SweepRecord, today: SweepRecord) -> str:
    """The sentence that names the code version that started the sweep, where it is not
    today's; "" where it is."""
    if recorded.code_version == today.code_version:
        return ""
    started = recorded.code_version or "an earlier version that did not record it"
    return (
        f" The sweep was started by {started}; this is {today.code_version}: a resume must "
        "run the code version that started the sweep (a newer one has settings the record "
        "lacks)."
    )


def read_record(where: str, text: str) -> SweepRecord:
    """The sweep record of `text`; one this version cannot resume is an InputError."""
    return SweepRecord.read(where, text)


_MISSING = object()


def _plain(value: Any) -> Any:
    return json.loads(jsonio.dumps(value))


def _show(value: Any) -> str:
    return "(none)" if value is _MISSING else jsonio.dumps(value)
