"""The transfer estimate: every site held out in turn (leave-one-site-out).

A multi-site study asks how the procedure does at a site it never saw: another clinic,
another headset. Where the labels file carries such a column (`evaluation.transfer_by`,
e.g. `site`), each of its values is an outer fold: that site's subjects are held out
(`split.test_subjects`, `data/dataset.held_out_split`), the selection runs again on the
other sites' subjects alone, exactly as in a fold of the nested cross-validation (the same
search, the same baselines; mmse_model/sweeps/nested.py), and scores the held-out site.
The folds go to the same runner as the nested cross-validation's, in the same list.

What it gives, per task and for the subtotal, apart from the headline estimate: every
model's metrics and the paired differences over the sites, with the same corrected
resampled t intervals (estimate.py; one repeat of as many folds as sites: with three sites
the interval has two degrees of freedom, and says so by its width), and each site's own
RMSEs. It never decides a verdict: the verdicts are the nested cross-validation's.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmse_model.core import csvsafe
from mmse_model.core.errors import InputError
from mmse_model.data.dataset import subject_totals
from mmse_model.sweeps.estimate import Design, subtotal_estimate, summed_fold, task_estimate
from mmse_model.sweeps.nested import NETWORK, NestedSearch, OuterRepeat, RepeatResult
from mmse_model.sweeps.sampling import draw_samples

METHOD = "leave-one-site-out cross-validation"
# A site's fold seeds its samples with (search seed, split seed, site index, TRANSFER_TAG):
# four numbers, never the nested cross-validation's three.
TRANSFER_TAG = 1


def read_sites(labels_file: str | Path, column: str) -> dict[str, str]:
    """Subject id -> its value in `column` of the labels file (a CSV with `subject_id`); a
    file without the column, or a subject without a value, is refused in one line."""
    path = Path(labels_file)
    try:
        with open(path, newline="") as handle:
            rows = list(csvsafe.read_dicts(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read the labels ({exc})") from None
    if not rows or "subject_id" not in rows[0] or column not in rows[0]:
        raise InputError(
            f"{path}: needs subject_id and {column} columns for evaluation.transfer_by "
            f"(found {', '.join(rows[0]) if rows else 'no rows'})"
        )
    sites = {}
    for line, row in enumerate(rows, start=2):
        subject, site = (row["subject_id"] or "").strip(), (row[column] or "").strip()
        if not subject or not site:
            raise InputError(f"{path}: line {line}: no subject_id or no {column}")
        if sites.setdefault(subject, site) != site:
            raise InputError(
                f"{path}: subject {subject} has two {column}s ({sites[subject]}, {site})"
            )
    return sites


def check_sites(
    sites: Mapping[str, str],
    subjects: Sequence[str],
    folds: int,
    where: str,
    column: str,
) -> list[str]:
    """The sites in order, once every subject has one, there are two or more, and holding
    any one out leaves enough subjects for the inner folds; else one line naming `where`."""
    missing = sorted(set(subjects) - set(sites))
    if missing:
        raise InputError(
            f"{where}: {len(missing)} subject(s) of the data have no {column} "
            f"({', '.join(missing[:3])}); the transfer estimate holds every subject's "
            f"{column} out once"
        )
    present = [sites[s] for s in subjects]
    order = sorted(set(present))
    if len(order) < 2:
        raise InputError(f"{where}: one {column} ({order[0]}); the transfer estimate needs two")
    for site in order:
        rest = len(present) - present.count(site)
        if rest < 2 * folds:
            raise InputError(
                f"{where}: holding out {column} {site} leaves {rest} subjects, need at least "
                f"{2 * folds} for {folds} inner folds"
            )
    return order


def data_sites(
    data_root: str | Path,
    signature: str,
    labels_file: str,
    column: str,
    search: NestedSearch,
) -> dict[str, str]:
    """The labels file's sites of the data root's subjects, checked (`check_sites`): what a
    sweep checks before its first trial, and uses at its end."""
    sites = read_sites(labels_file, column)
    subjects, _ = subject_totals(data_root, signature, search.base.score_ranges)
    subjects = [str(s) for s in subjects]
    check_sites(sites, subjects, search.base.split.folds, labels_file, column)
    return {s: sites[s] for s in subjects}


def site_repeats(
    search: NestedSearch,
    data_root: str | Path,
    task: str,
    signatures: Sequence[str],
    sites: Mapping[str, str],
) -> tuple[list[str], list[OuterRepeat]]:
    """(the sites in order, one outer fold per site): the site's subjects held out, the
    other subjects dealt to the inner folds with the first repeat's seed, the site's own
    samples drawn from the sweep's search space."""
    order = sorted(set(sites.values()))
    split_seed = search.base.split.seed + 1
    repeats = []
    for i, site in enumerate(order):
        samples = draw_samples(
            search.search_space,
            search.samples_per_repeat,
            (search.search_seed, split_seed, i, TRANSFER_TAG),
        )
        config = search.base.with_values(
            {
                "split.seed": split_seed,
                "split.test_subjects": sorted(s for s, v in sites.items() if v == site),
            }
        )
        repeats.append(
            OuterRepeat(
                str(data_root), task, tuple(signatures), config, tuple(samples), search.halving
            )
        )
    return order, repeats


def design(search: NestedSearch, column: str, n_sites: int, signatures: int | None) -> Design:
    count = "each task's" if signatures is None else str(signatures)
    return Design(
        METHOD,
        1,
        n_sites,
        f"the expected error of the same procedure (a search of {search.describe(count)}) "
        f"trained on the other {column}s' subjects and applied to a {column} it never saw, "
        f"over these {n_sites} {column}s",
    )


def task_transfer(
    search: NestedSearch,
    column: str,
    order: Sequence[str],
    repeats: Sequence[OuterRepeat],
    results: Sequence[RepeatResult],
    score_range: tuple[float, float],
    primary: str,
) -> dict[str, Any]:
    """A task's `transfer` (summary_schema.Transfer fields)."""
    estimate = task_estimate(
        search,
        repeats,
        results,
        score_range,
        primary,
        design(search, column, len(order), len(repeats[0].signatures)),
    )
    return {"by": column, **estimate, "sites": site_rows(order, results, primary)}


def subtotal_transfer(
    search: NestedSearch,
    column: str,
    order: Sequence[str],
    per_task: dict[str, Sequence[RepeatResult]],
    score_ranges: dict[str, tuple[float, float]],
    primary: str,
) -> dict[str, Any] | None:
    """The subtotal's `transfer`: each site's subjects' predictions summed over the tasks."""
    estimate = subtotal_estimate(
        search,
        per_task,
        score_ranges,
        primary,
        design=design(search, column, len(order), None),
    )
    if estimate is None:
        return None
    rows = []
    for site, fold in zip(order, zip(*(per_task[t] for t in sorted(per_task)))):
        summed = summed_fold(fold)
        if summed is None:
            continue
        subjects, truth, predictions = summed
        rows.append(_site_row(site, len(subjects), fold[0].n_train, truth, predictions, primary))
    return {"by": column, **estimate, "sites": rows}


def site_rows(
    order: Sequence[str], results: Sequence[RepeatResult], primary: str
) -> list[dict[str, Any]]:
    return [
        _site_row(
            site,
            len(result.subjects),
            result.n_train,
            np.array(result.y_true),
            {name: np.array(values) for name, values in result.predictions.items()},
            primary,
            result.models[NETWORK].signature,
        )
        for site, result in zip(order, results)
    ]


def _site_row(
    site: str,
    n_subjects: int,
    n_train: int,
    truth: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    primary: str,
    signature: str | None = None,
) -> dict[str, Any]:
    def rmse(name: str) -> float | None:
        if name not in predictions:
            return None
        return float(np.sqrt(np.mean((predictions[name] - truth) ** 2)))

    return {
        "site": site,
        "n_subjects": n_subjects,
        "n_train": n_train,
        "network_rmse": rmse(NETWORK),
        "comparator_rmse": rmse(primary),
        "network_signature": signature,
    }
