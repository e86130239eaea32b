"""Run configs: one recursive from_dict for every kind, typed overrides, clear errors."""

import json

import pytest

from bgan_jax.registry import KINDS, MODELS, kind_of_model
from bgan_jax.runs.config import ConfigError, LoopConfig, apply_overrides, from_dict


@pytest.mark.parametrize("model", sorted(MODELS))  # every registered model
def test_every_kind_round_trips_through_json(model):
    kind = kind_of_model(model)
    config = apply_overrides(kind.make_config(model, None), ["num_steps=7", "seed=3"])
    back = from_dict(kind.config_class(), json.loads(json.dumps(config.to_dict())))
    assert back == config and isinstance(back, LoopConfig)
    assert (back.num_steps, back.seed) == (7, 3)  # one budget vocabulary for every model


def test_nested_fields_lists_and_numbers():
    cfg = KINDS["snn"].make_config("snn", None)
    cfg = apply_overrides(cfg, ["model.hidden=[32,16]", "learning_rate=1", "spike_scaling=true"])
    assert cfg.model.hidden == (32, 16) and cfg.learning_rate == 1.0 and cfg.spike_scaling
    tav = apply_overrides(KINDS["tavrnn"].make_config("tavrnn", None),
                          ["windows.threshold=0.3", "windows.top_k=none"])
    assert tav.windows.threshold == 0.3 and tav.windows.top_k is None


@pytest.mark.parametrize("override, message", [
    ("epochs=3", "unknown config field 'epochs'.*num_steps"),
    ("model.nope=1", "unknown config field 'model.nope'"),
    ("num_steps=abc", "num_steps: expected an integer, got 'abc'"),
    ("num_steps=2.5", "num_steps: expected an integer"),
    ("spike_scaling=1", "spike_scaling: expected true or false"),
    ("model.hidden=5", "model.hidden: expected a list"),
    ("num_steps=0", "num_steps must be >= 1"),
    ("num_steps", "key=value"),
])
def test_bad_overrides_name_the_field(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(KINDS["snn"].make_config("snn", None), [override])


def test_saved_configs_with_unknown_or_wrongly_typed_fields_are_refused():
    cls = KINDS["bgan"].config_class()
    good = cls().to_dict()
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['colour'\]"):
        from_dict(cls, dict(good, colour="red"))
    with pytest.raises(ConfigError, match="model.hidden: expected an integer"):
        from_dict(cls, dict(good, model=dict(good["model"], hidden="64")))
    with pytest.raises(ConfigError, match="expected an object"):
        from_dict(cls, dict(good, model=[1, 2]))
    assert from_dict(cls, json.loads(json.dumps(good))) == cls()
