"""Trials as planned, named from their configs, by Tune's own trial generator (no Ray
instance is started).

The sweep hands Tune its planned points (`mmse_model/sweeps/plan.py`) as one grid axis:
Tune must make exactly those trials, in that order (sample by sample, so early trials cover
every task), and `ray_jobs.sweep.trial_name` names each `<task>-<group label>-<sample>`
from its config, the numbers its rows later carry.
"""

from __future__ import annotations

import pytest

from mmse_model.sweeps.plan import hyperparameter_samples, plan_trials, signature_groups

pytestmark = pytest.mark.ray

SIGS = ["m2_tau1_eps0.055_lmin2", "m3_tau2_eps0.1_lmin2", "m4_tau3_eps0.1_lmin3"]


def _fn(config):  # the trainable: never run here
    pass


@pytest.mark.parametrize("per_trial", [0, 1, 2])
def test_tune_makes_the_planned_trials_in_order_named_from_their_config(tmp_path, per_trial):
    from ray import tune
    from ray.tune.experiment import Experiment
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from ray_jobs.sweep import trial_name

    tasks = ["Q1", "Q3"]
    groups = signature_groups(SIGS, per_trial)
    samples = hyperparameter_samples({"training.lr": {"loguniform": [1e-3, 1e-2]}}, 3, seed=0)
    points = plan_trials(tasks, groups, samples)
    generator = BasicVariantGenerator(random_state=0)
    generator.add_configurations(
        [
            Experiment(
                name="names",
                run=_fn,
                config={"trial": tune.grid_search([p.to_config() for p in points])},
                num_samples=1,
                storage_path=str(tmp_path),
                trial_name_creator=trial_name,
                trial_dirname_creator=trial_name,
            )
        ]
    )
    trials = []
    while (trial := generator.next_trial()) is not None:
        trials.append(trial)
    assert [t.config["trial"] for t in trials] == [p.to_config() for p in points]
    assert (
        [str(t) for t in trials] == [t.custom_dirname for t in trials] == [p.name for p in points]
    )
    assert len({str(t) for t in trials}) == len(trials) == len(tasks) * len(groups) * 3
    # Sample by sample: every task and group of sample 0 before any of sample 1.
    assert [p.sample for p in points] == sorted(p.sample for p in points)
    # One set of hyper-parameters per sample, the same for every task and group.
    for point in points:
        assert point.hyperparameters == samples[point.sample]
    labels = {g.label for g in groups}
    assert labels == (
        {"all"} if per_trial == 0 else set(SIGS) if per_trial == 1 else {"g0", SIGS[2]}
    )
