"""Readable trial names from Tune's own trial generator (no Ray instance is started).

`ray_jobs.sweep.TrialName` names a trial `<task>-<signature or group>-<sample>` before it
runs, from Tune's trial counter; the sample must be the number `collect_rows` later gives
the trial (its rank by trial id within its task and signature group).
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.ray

SIGS = ["m2_tau1_eps0.055_lmin2", "m3_tau2_eps0.1_lmin2", "m4_tau3_eps0.1_lmin3"]


def _fn(config):  # the trainable: never run here
    pass


@pytest.mark.parametrize("per_trial", [0, 1, 2])
def test_names_follow_tunes_trial_order(tmp_path, per_trial):
    from ray import tune
    from ray.tune.experiment import Experiment
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from ray_jobs.sweep import TrialName, signature_groups

    tasks, samples = ["Q1", "Q3"], 3
    groups = signature_groups(SIGS, per_trial)
    space = {
        "task": tune.grid_search(tasks),
        "group": tune.grid_search(groups),
        "hp": {"training.lr": tune.loguniform(1e-3, 1e-2)},
    }
    namer = TrialName(len(tasks) * len(groups))
    generator = BasicVariantGenerator(random_state=0)
    generator.add_configurations(
        [
            Experiment(
                name="names",
                run=_fn,
                config=space,
                num_samples=samples,
                storage_path=str(tmp_path),
                trial_name_creator=namer,
                trial_dirname_creator=namer,
            )
        ]
    )
    trials = []
    while (trial := generator.next_trial()) is not None:
        trials.append(trial)
    assert len(trials) == len(tasks) * len(groups) * samples
    # collect_rows' numbering: rank by trial id within (task, group label).
    ranks: dict[tuple[str, str], list[str]] = {}
    for trial in trials:
        ranks.setdefault((trial.config["task"], trial.config["group"]["label"]), []).append(
            trial.trial_id
        )
    for trial in trials:
        key = (trial.config["task"], trial.config["group"]["label"])
        sample = sorted(ranks[key]).index(trial.trial_id)
        assert str(trial) == trial.custom_dirname == f"{key[0]}-{key[1]}-{sample}"
    assert len({str(t) for t in trials}) == len(trials)
    labels = {g["label"] for g in groups}
    assert labels == (
        {"all"} if per_trial == 0 else set(SIGS) if per_trial == 1 else {"g0", SIGS[2]}
    )
