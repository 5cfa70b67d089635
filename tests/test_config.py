import json

import pytest

from aekit.config import DataConfig, ModelConfig, RunConfig, TrainConfig, validate
from aekit.errors import ConfigError
from aekit.presets import PRESETS, get_preset
from aekit.resolve import build_config, resolve

SEED_SETUPS = {
    # preset: (hidden, latent, activation, latent act, output act, loss, loss_scale, scale, lr, batch, epochs)
    "classic-3d-tanh": ((128, 64, 12), 3, "tanh", "linear", "sigmoid", "mse", 1.0, "unit", 0.005, 64, 10),
    "classic-2d-relu": ((128, 64, 10), 2, "relu", "linear", "tanh", "mse", 1.0, "centered", 0.001, 256, 20),
    "classic-128-sigmoid": ((256,), 128, "sigmoid", "sigmoid", "sigmoid", "mse", 1.0, "unit", 0.01, 256, 5),
    "classic-100-sigmoid": ((256, 128), 100, "sigmoid", "sigmoid", "sigmoid", "mse", 0.5, "unit", 0.01, 256, 10),
    "classic-30-bce": ((), 30, "relu", "relu", "sigmoid", "bce", 1.0, "unit", 0.001, 100, 20),
}


@pytest.mark.parametrize("name", sorted(SEED_SETUPS))
def test_presets_reproduce_the_seed_setups(name):
    cfg = build_config(name)
    m, t = cfg.model, cfg.train
    got = (m.hidden, m.latent_dim, m.activation, m.latent_activation, m.output_activation, m.loss,
           m.loss_scale, cfg.data.scale, t.lr, t.batch_size, t.epochs)
    assert got == SEED_SETUPS[name]
    assert PRESETS[name]["source"] and PRESETS[name]["summary"]


def test_every_preset_resolves_and_default_is_the_3d_tanh():
    assert set(PRESETS) >= set(SEED_SETUPS)
    for name in PRESETS:
        assert build_config(name).preset == name
    assert build_config().preset == "classic-3d-tanh"


def test_flat_overrides_land_in_their_section():
    cfg = build_config("classic-3d-tanh", epochs=2, batch_size=32, lr=0.1, latent_dim=5,
                       hidden="64,32", activation="relu", loss="bce", seed=7, device="cpu",
                       dataset="mnist-sample")
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.lr, cfg.train.seed) == (2, 32, 0.1, 7)
    assert (cfg.model.latent_dim, cfg.model.hidden, cfg.model.activation) == (5, (64, 32), "relu")
    assert cfg.data.dataset == "mnist-sample"


@pytest.mark.parametrize("overrides, field", [
    ({"epochs": 0}, "train.epochs"),
    ({"batch_size": -1}, "train.batch_size"),
    ({"lr": 0}, "train.lr"),
    ({"latent_dim": 0}, "model.latent_dim"),
    ({"activation": "swish"}, "model.activation"),
    ({"loss": "huber"}, "model.loss"),
    ({"device": "tpu"}, "train.device"),
    ({"hidden": "128,0"}, "model.hidden[1]"),
    ({"hidden": "12x"}, "model.hidden"),
    ({"scale": "zscore"}, "data.scale"),
    ({"epochs": 1.5}, "train.epochs"),
    ({"wings": 2}, "wings"),
    ({"model": "nope"}, "model.model"),
])
def test_bad_values_name_the_field(overrides, field):
    with pytest.raises(ConfigError) as info:
        build_config("classic-3d-tanh", **overrides)
    assert str(info.value).startswith(field)


def test_choices_are_listed_in_the_message():
    with pytest.raises(ConfigError, match="relu, tanh, sigmoid"):
        build_config(activation="swish")


def test_bce_needs_unit_scale_and_sigmoid_output():
    with pytest.raises(ConfigError, match="data.scale"):
        build_config("classic-2d-relu", loss="bce", output_activation="sigmoid")
    with pytest.raises(ConfigError, match="model.output_activation"):
        build_config("classic-30-bce", output_activation="tanh")


def test_config_file_round_trip_and_unknown_keys(tmp_path):
    cfg = build_config("classic-2d-relu", epochs=3)
    path = tmp_path / "config.json"
    path.write_text(cfg.to_json())
    again = build_config(config=path)
    assert again == cfg
    assert build_config(config=path, epochs=4).train.epochs == 4  # flags beat the file

    data = json.loads(cfg.to_json())
    data["train"]["epochz"] = 3
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"^train.epochz: unknown field; allowed: epochs"):
        build_config(config=path)
    path.write_text(json.dumps({"optimiser": {}}))
    with pytest.raises(ConfigError, match="optimiser: unknown section"):
        build_config(config=path)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        build_config(config=path)
    with pytest.raises(ConfigError, match="cannot read"):
        build_config(config=tmp_path / "missing.json")


def test_unknown_preset_lists_the_presets():
    with pytest.raises(ConfigError, match="classic-3d-tanh"):
        get_preset("classic-4d")


def test_validate_catches_a_config_built_in_python():
    cfg = RunConfig(data=DataConfig(), model=ModelConfig(latent_dim=-2), train=TrainConfig())
    with pytest.raises(ConfigError, match="model.latent_dim: must be >= 1"):
        validate(cfg)


def test_switching_model_keeps_shared_fields():
    base = get_preset("classic-2d-relu")
    cfg = resolve(base, {"model": "mlp"})
    assert cfg.model.latent_dim == 2
