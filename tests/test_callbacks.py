"""Callbacks (no Ray): the typed context every hook gets, and state kept under `state_key`."""

import numpy as np
import pytest

from mmse_model.core.config import Config
from mmse_model.training.callbacks import (
    Callback,
    CallbackManager,
    DirectoryReporter,
    History,
    LoopContext,
)
from mmse_model.training.checkpoint import load_checkpoint
from mmse_model.training.loop import RunSpec, train_run
from mmse_model.training.model import MemberMLPs
from tests.conftest import SIG, WEAK_SIG
from tests.test_trainer import Recorder

CONFIG = ["split.folds=3", "training.checkpoint_every=1", "early_stopping.enable=false"]


class EpochCounter(Callback):
    """Counts the epochs divisible by `every`: state that differs between two instances."""

    def __init__(self, every: int, state_key: str | None = None):
        super().__init__(state_key)
        self.every, self.count = every, 0

    def on_epoch_end(self, ctx: LoopContext) -> None:
        self.count += ctx.epoch % self.every == 0

    def state_dict(self):
        return {"count": self.count}

    def load_state_dict(self, state):
        self.count = state["count"]


class Witness(Callback):
    """Writes down what each hook was told."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_begin(self, ctx):
        self.seen.append(("begin", ctx.epoch, type(ctx.model), ctx.signatures))

    def on_epoch_begin(self, ctx):
        self.seen.append(("epoch_begin", ctx.epoch, dict(ctx.record)))

    def on_epoch_end(self, ctx):
        self.seen.append(
            (
                "epoch_end",
                ctx.epoch,
                int(ctx.record["epoch"]),
                ctx.improved.shape,
                ctx.final,
                ctx.stop_reason,
            )
        )

    def on_train_end(self, ctx):
        self.seen.append(("end", ctx.epoch, ctx.stop_reason))


def test_every_hook_gets_a_typed_context(data_root):
    witness = Witness()
    config = Config().with_overrides([*CONFIG, "training.epochs=3"])
    train_run(
        RunSpec(str(data_root), (SIG, WEAK_SIG), "Q1", config),
        Recorder(),
        extra_callbacks=[witness],
    )
    assert witness.seen[0] == ("begin", 0, MemberMLPs, (SIG, WEAK_SIG))
    assert witness.seen[1] == ("epoch_begin", 1, {})
    ends = [s for s in witness.seen if s[0] == "epoch_end"]
    assert ends == [
        ("epoch_end", e, e, (2,), e == 3, "epoch limit" if e == 3 else "") for e in (1, 2, 3)
    ]
    assert witness.seen[-1] == ("end", 3, "epoch limit")


def test_two_callbacks_of_one_class_keep_their_state_apart_through_a_resume(data_root, tmp_path):
    run = RunSpec(
        str(data_root), (SIG,), "Q1", Config().with_overrides([*CONFIG, "training.epochs=4"])
    )
    train_run(
        run,
        DirectoryReporter(tmp_path),
        extra_callbacks=[EpochCounter(1), EpochCounter(2, state_key="even")],
    )
    payload = load_checkpoint(tmp_path / "checkpoints" / "latest")
    assert payload.epoch == 4
    assert payload.callbacks["EpochCounter"] == {"count": 4} and payload.callbacks["even"] == {
        "count": 2
    }
    assert len(payload.callbacks["History"]["records"]) == 4
    # A resumed run restores each from its own key and counts on.
    every, even = EpochCounter(1), EpochCounter(2, state_key="even")
    longer = RunSpec(
        str(data_root), (SIG,), "Q1", Config().with_overrides([*CONFIG, "training.epochs=7"])
    )
    train_run(
        longer,
        Recorder(),
        resume=payload.model_copy(update={"finished": False}),
        extra_callbacks=[every, even],
    )
    assert (every.count, even.count) == (7, 3)


def test_callbacks_that_would_collide_are_refused():
    with pytest.raises(ValueError, match="share the state_key EpochCounter"):
        CallbackManager([EpochCounter(1), EpochCounter(2)])
    with pytest.raises(ValueError, match="share the state_key History"):
        CallbackManager([History(), History()])
    # State-free callbacks keep nothing, so two of one class are fine.
    CallbackManager([Witness(), Witness()])
    assert CallbackManager([History(), History(state_key="again")]).state_dict() == {
        "History": {"records": []},
        "again": {"records": []},
    }


def test_a_checkpoint_with_the_old_class_name_keys_still_resumes(data_root, tmp_path):
    # Checkpoints written before `state_key` hold every callback under its class name, the
    # checkpoint writer's as "ModelCheckpoint" (now CheckpointReporter, still stateless).
    run3 = RunSpec(
        str(data_root), (SIG,), "Q1", Config().with_overrides([*CONFIG, "training.epochs=3"])
    )
    train_run(run3, DirectoryReporter(tmp_path))
    payload = load_checkpoint(tmp_path / "checkpoints" / "latest")
    old = {"History": payload.callbacks["History"], "LRLogger": {}, "ModelCheckpoint": {}}
    run5 = RunSpec(
        str(data_root), (SIG,), "Q1", Config().with_overrides([*CONFIG, "training.epochs=5"])
    )
    resumed = train_run(
        run5, Recorder(), resume=payload.model_copy(update={"finished": False, "callbacks": old})
    )
    assert [r["epoch"] for r in resumed.fit.history] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert resumed.fit.history[:3] == payload.callbacks["History"]["records"]
    assert np.isfinite([r["val/loss"] for r in resumed.fit.history]).all()
