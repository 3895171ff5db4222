from pathlib import Path

import pytest
import yaml

from mmse_model.core.config import Config, load_config
from mmse_model.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_default_yaml_spells_out_the_schema_defaults():
    assert load_config(REPO / "configs" / "default.yaml") == Config()


def test_default_yaml_names_every_key_of_the_schema():
    def keys(tree, prefix=""):
        out = set()
        for key, value in tree.items():
            out.add(prefix + key)
            if isinstance(value, dict) and key != "score_ranges" and value:
                out |= keys(value, f"{prefix}{key}.")
        return out

    written = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    assert keys(written) == keys(Config().to_dict())


def test_round_trip_through_dict():
    config = Config().with_overrides(["arch.h1=8", "training.lr=0.01"])
    assert Config.from_dict(config.to_dict()) == config
    assert config.arch.h1 == 8 and config.training.lr == 0.01


def test_missing_keys_take_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  lr: 0.05\n")
    config = load_config(path)
    assert config.training.lr == 0.05
    assert config.split.folds == Config().split.folds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("trainig:\n  lr: 0.1\n", "trainig: unknown key"),
        ("training:\n  lrr: 0.1\n", "training.lrr: unknown key"),
        ("training:\n  lr: fast\n", "training.lr: expected a number, got 'fast' (a string)"),
        ("training:\n  lr: -0.1\n", "training.lr: expected a number > 0, got -0.1"),
        ("arch:\n  dropout: 1.0\n", "arch.dropout: expected a number < 1, got 1.0"),
        ("split:\n  folds: 1\n", "split.folds: expected an integer >= 2, got 1"),
        ("seed: true\n", "seed: expected an integer, got True"),
        ("arch:\n  hidden_layers: 3\n", "arch.hidden_layers: expected an integer <= 2, got 3"),
        ("training:\n  epochs: 2.5\n", "training.epochs: expected an integer, got 2.5"),
        ("arch:\n  use_batch_norm: 1\n", "arch.use_batch_norm: expected true or false, got 1"),
        ("score_ranges:\n  Q1: [5, 0]\n", "score_ranges: Q1: expected [low, high] with low < high"),
        ("- a\n- b\n", "expected a mapping at the top level"),
        ("training: [\n", "not valid YAML"),
    ],
)
def test_bad_config_names_file_key_and_expectation(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.lr=-1", "training.lr: expected a number > 0"),
        ("training.nope=1", "training.nope: unknown key"),
        ("nope.lr=1", "nope: unknown key"),
        ("training.lr", "expected key.path=value"),
        ("arch.h1=big", "arch.h1: expected an integer"),
    ],
)
def test_set_overrides_go_through_validation(override, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(None, [override])


def test_set_override_parses_yaml_scalars():
    config = load_config(None, ["arch.use_batch_norm=true", "training.lr=1e-2", "arch.dropout=0"])
    assert config.arch.use_batch_norm is True
    assert config.training.lr == pytest.approx(0.01)
    assert config.arch.dropout == 0.0


def test_missing_config_file_is_an_input_error(tmp_path):
    with pytest.raises(ConfigError, match="absent.yaml: cannot read"):
        load_config(tmp_path / "absent.yaml")
