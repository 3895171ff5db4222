"""Repeated nested cross-validation: the whole selection run again inside every outer fold.

The headline estimate of the procedure uses every subject. Each of `repeats` (R) repeats
partitions the subjects into `outer_folds` (K) folds, stratified on the five-task total
(`data/dataset.outer_fold_split`, the repeat's seed `split.seed` + 1 + r, never the shipped
models' own); in each outer fold the selection runs again on the other K-1 folds alone,
`samples` hyper-parameter samples drawn from the sweep's search space
(mmse_model/sweeps/sampling.py, a seed per fold) x every signature, one packed training run
per sample with `split.folds` inner folds, early stopping as configured and, by default,
successive halving at the sweep's ASHA rungs (`search`); the (sample, signature) with the
lowest inner-fold validation loss among those that trained to their end is chosen, and its
fold ensemble predicts the outer fold's subjects. Every baseline does the same: it chooses its
own signature and settings by cross-validation on the inner folds and predicts the outer
fold. Every subject is predicted once per repeat by models that neither trained on it nor
chose anything with it; `summary.py` turns those predictions into the estimate
(mmse_model/evaluation/cv_estimate.py).

The sweep's winning hyper-parameters are never used: they were chosen with every subject.
The search is smaller than the sweep's (fewer samples; its halving is synchronous where
the sweep's ASHA is not), so the estimate is of that stated procedure, and every output
says so.

`summarise_sweep` hands every task's outer folds in one list to a `RepeatRunner`, which maps
them to their results in the same order: `run_repeats_in_process` here (unit tests, the
Ray-free path) or `ray_jobs.repeats.run_repeats_on_ray`, one Ray task per outer fold placed
like a Train worker. Runs are deterministic, so a fold gives the same numbers wherever it
runs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from mmse_model.core.config import Config
from mmse_model.evaluation.baselines import baselines_over_signatures
from mmse_model.sweeps.config import SweepConfig, apply_sample
from mmse_model.sweeps.rungs import rungs
from mmse_model.sweeps.sampling import draw_samples
from mmse_model.sweeps.summary_schema import halving_words
from mmse_model.training.callbacks import NullReporter
from mmse_model.training.checkpoint import CheckpointPayload, select_signatures
from mmse_model.training.held_out import test_predictions
from mmse_model.training.loop import RunSpec, load_run_data, train_run

IN_PROCESS = "in-process"
NETWORK = "network"


@dataclass(frozen=True)
class Halving:
    """Successive halving inside an outer fold's search: at each rung (an epoch) the
    candidates still in, (sample, signature) pairs ranked by their best validation loss so
    far, are cut to the best 1/`reduction_factor` (at least one); the rest stop there.
    The sweep's own trials meet ASHA at the same rungs."""

    rungs: tuple[int, ...]
    reduction_factor: float

    def keep(self, n: int) -> int:
        return max(1, math.ceil(n / self.reduction_factor - 1e-9))

    def to_dict(self) -> dict[str, Any]:
        return {"rungs": list(self.rungs), "reduction_factor": self.reduction_factor}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Halving | None:
        return None if data is None else cls(tuple(data["rungs"]), float(data["reduction_factor"]))

    def describe(self) -> str:
        return halving_words(self.rungs, self.reduction_factor)


@dataclass(frozen=True)
class NestedSearch:
    """What every outer fold searches: the sweep's training config before any sample
    (`base`), its search space, how many samples, repeats and outer folds, and the seed
    samples come from."""

    base: Config
    search_space: Mapping[str, Mapping[str, list]]
    samples: int
    repeats: int
    outer_folds: int = 5
    search_seed: int = 0
    halving: Halving | None = None

    @classmethod
    def of_sweep(cls, sweep: SweepConfig) -> NestedSearch | None:
        """The sweep's nested search (None with `evaluation.outer_repeats` 0). Runs end at the
        epoch the sweep's trials could reach at most (ASHA's max_t, when below the limit);
        with `evaluation.nested_halving`, successive halving at the rungs of the sweep's
        ASHA (its grace period and reduction factor, one bracket)."""
        if not sweep.evaluation.outer_repeats:
            return None
        base = sweep.base_config()
        epochs = min(sweep.max_t(), base.training.epochs)
        base = base.with_values({"training.epochs": epochs})
        halving = None
        if sweep.evaluation.nested_halving:
            asha = sweep.asha
            at = rungs(epochs, asha.grace_period, asha.reduction_factor)
            halving = Halving(at, float(asha.reduction_factor)) if at else None
        return cls(
            base,
            sweep.search_space,
            sweep.evaluation.nested_samples,
            sweep.evaluation.outer_repeats,
            sweep.evaluation.outer_folds,
            sweep.search_seed,
            halving,
        )

    def describe(self, signatures: str) -> str:
        """The search in words: '4 hyper-parameter samples x 36 signatures on 5 inner folds,
        successive halving at epochs 10, 30, 90 (best 1/3 on)'."""
        return (
            f"{self.samples_per_repeat} hyper-parameter samples x {signatures} signatures on "
            f"{self.base.split.folds} inner folds, "
            + (self.halving.describe() if self.halving else "no early cut")
        )

    @property
    def samples_per_repeat(self) -> int:
        """Samples of an empty search space are all the same config: one is enough."""
        return self.samples if self.search_space else 1

    def repeats_of(
        self, data_root: str | Path, task: str, signatures: list[str] | tuple[str, ...]
    ) -> list[OuterRepeat]:
        """The task's outer folds, repeat by repeat: repeat r partitions the subjects with
        seed base's + 1 + r (never the shipped models' own split), and fold k's samples are
        drawn with the seed (search_seed, that split seed, k), the same for every task."""
        repeats = []
        for r in range(self.repeats):
            split_seed = self.base.split.seed + 1 + r
            for k in range(self.outer_folds):
                samples = draw_samples(
                    self.search_space, self.samples_per_repeat, (self.search_seed, split_seed, k)
                )
                config = self.base.with_values(
                    {
                        "split.seed": split_seed,
                        "split.outer_folds": self.outer_folds,
                        "split.outer_fold": k,
                    }
                )
                repeats.append(
                    OuterRepeat(
                        str(data_root),
                        task,
                        tuple(signatures),
                        config,
                        tuple(samples),
                        self.halving,
                    )
                )
        return repeats


@dataclass(frozen=True)
class OuterRepeat:
    """One task's selection re-run in one outer fold: `config` carries the repeat's seed and
    the outer fold (`split.outer_folds`, `split.outer_fold`)."""

    data_root: str
    task: str
    signatures: tuple[str, ...]
    config: Config
    samples: tuple[dict[str, Any], ...]
    halving: Halving | None = None

    def runs(self) -> list[RunSpec]:
        """One packed training run (every signature) per hyper-parameter sample."""
        return [
            RunSpec(self.data_root, self.signatures, self.task, apply_sample(self.config, sample))
            for sample in self.samples
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "data_root": self.data_root,
            "task": self.task,
            "signatures": list(self.signatures),
            "config": self.config.to_dict(),
            "samples": [dict(s) for s in self.samples],
            "halving": self.halving.to_dict() if self.halving else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OuterRepeat:
        return cls(
            data["data_root"],
            data["task"],
            tuple(data["signatures"]),
            Config.from_dict(data["config"]),
            tuple(dict(s) for s in data["samples"]),
            Halving.from_dict(data.get("halving")),
        )


@dataclass(frozen=True)
class Choice:
    """What one model chose on the inner folds and how it did on the split's test subjects."""

    signature: str
    rmse: float  # on the outer split's test subjects, in points
    selection: float  # what chose it: the network's validation loss, a baseline's CV RMSE


@dataclass(frozen=True)
class Candidate:
    """One (sample, signature) of the inner search and its inner-fold validation loss."""

    sample: int
    signature: str
    val_loss: float  # its best, over the epochs it trained
    epochs: int = 0  # epochs it trained: where early stopping, a rung's cut or the limit ended it


@dataclass(frozen=True)
class RepeatResult:
    """What one outer fold sends back, by value: each model's choice and its predictions of
    the outer fold's subjects (no weights, no files)."""

    models: dict[str, Choice]  # "network" first, then every baseline
    sample: int  # the network's chosen hyper-parameter sample (an index into the repeat's samples)
    candidates: tuple[Candidate, ...] = ()
    ran_on: str = IN_PROCESS  # a Ray node id, or "in-process"
    subjects: tuple[str, ...] = ()  # the outer fold's subjects, one per row
    y_true: tuple[float, ...] = ()
    predictions: dict[str, tuple[float, ...]] = field(default_factory=dict)  # model -> per row
    n_train: int = 0  # subjects the fold's models learnt from
    # CPU seconds the fold's process spent: "fold training", "fold baselines" (sweeps/phases.py)
    # (timings, not results: two runs of the same fold are equal whatever they took)
    seconds: dict[str, float] = field(default_factory=dict, compare=False)


# Repeats -> their results, in the repeats' order.
RepeatRunner = Callable[[list[OuterRepeat]], list[RepeatResult]]


def search(
    repeat: OuterRepeat, device: str = "cpu"
) -> tuple[list[Candidate], Candidate, CheckpointPayload]:
    """The network's search on the split's inner folds: every candidate as it ended, the
    chosen one (lowest best validation loss among those that trained to their end; ties go
    to the earlier sample, then signature) and a payload holding its weights.

    Without halving each sample's packed run trains every signature to its end. With it,
    the runs go rung by rung: every sample's run trains to the rung's epoch and pauses, the
    candidates still in are ranked together and cut, and each run goes on from its pause
    with its survivors only (`select_signatures`), which follow the path they would have
    followed in the whole run, at a fraction of its members."""
    runs = repeat.runs()
    order = {signature: i for i, signature in enumerate(repeat.signatures)}
    limit = repeat.config.training.epochs
    halving = repeat.halving
    stops = [r for r in (halving.rungs if halving else ()) if r < limit] + [limit]
    training = {index: run.signatures for index, run in enumerate(runs)}  # still training
    paused: dict[int, CheckpointPayload] = {}
    standing: dict[tuple[int, str], tuple[Candidate, CheckpointPayload]] = {}  # still in
    ended: list[Candidate] = []  # cut at a rung
    for stop in stops:
        for index, run in enumerate(runs):
            signatures = training[index]
            if not signatures:
                continue
            resume = paused.get(index)
            if resume is not None and tuple(resume.signatures) != signatures:
                resume = select_signatures(resume, signatures)
            outcome = train_run(
                replace(run, signatures=signatures),
                NullReporter(),
                device=device,
                resume=resume,
                pause_at=stop,
            )
            payload = outcome.checkpoint
            paused[index] = payload
            for state in payload.states:
                # A diverged signature (no finite loss) is never chosen over one that learnt.
                loss = state.best_val_loss if math.isfinite(state.best_val_loss) else math.inf
                epochs = payload.epoch if state.active else state.stop_epoch
                candidate = Candidate(index, state.signature, float(loss), epochs)
                standing[(index, state.signature)] = (candidate, payload)
            training[index] = (
                tuple(s.signature for s in payload.states if s.active)
                if not payload.finished
                else ()
            )
        if stop == limit or halving is None:
            break
        ranked = sorted(
            standing, key=lambda key: (standing[key][0].val_loss, key[0], order[key[1]])
        )
        for key in ranked[halving.keep(len(ranked)) :]:
            ended.append(standing.pop(key)[0])
        training = {
            index: tuple(s for s in signatures if (index, s) in standing)
            for index, signatures in training.items()
        }
    best, payload = min(
        standing.values(),
        key=lambda entry: (entry[0].val_loss, entry[0].sample, order[entry[0].signature]),
    )
    candidates = sorted(
        ended + [candidate for candidate, _ in standing.values()],
        key=lambda c: (c.sample, order[c.signature]),
    )
    return candidates, best, payload


def run_repeat(repeat: OuterRepeat, device: str = "cpu") -> RepeatResult:
    """Search on the split's inner folds, keep the best (sample, signature), score it and
    every baseline on the split's test subjects."""
    started = time.process_time()
    candidates, best, checkpoint = search(repeat, device)
    loss, sample, signature = best.val_loss, best.sample, best.signature
    group, split = load_run_data(repeat.runs()[0])
    subjects, y_true, y_pred, _ = test_predictions(
        checkpoint, group.task_data(signature), split, signature
    )
    models = {NETWORK: Choice(signature, _rmse(y_true, y_pred), loss)}
    predictions = {NETWORK: tuple(float(v) for v in y_pred)}
    trained = time.process_time()
    datas = {s: group.task_data(s) for s in repeat.signatures}
    score_range = repeat.config.score_range(repeat.task)
    for name, (predicted, settings) in baselines_over_signatures(
        datas, split, score_range, repeat.config.seed
    ).items():
        models[name] = Choice(
            settings["signature"], _rmse(y_true, predicted), float(settings["cv_rmse"])
        )
        predictions[name] = tuple(float(v) for v in predicted)
    return RepeatResult(
        models,
        sample,
        tuple(candidates),
        subjects=tuple(str(s) for s in subjects),
        y_true=tuple(float(v) for v in y_true),
        predictions=predictions,
        n_train=len(split.fold_of_subject),
        seconds={
            "fold training": trained - started,
            "fold baselines": time.process_time() - trained,
        },
    )


def _rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def run_repeats_in_process(repeats: list[OuterRepeat]) -> list[RepeatResult]:
    """The runner without Ray: one repeat after the other, in this process, on the CPU."""
    return [run_repeat(repeat) for repeat in repeats]
