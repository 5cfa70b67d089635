"""Model-specific flags share one name across the models that have the field, and say which model means what."""

import dataclasses

import pytest

from aekit.config import ModelConfig, rule
from aekit.errors import ConfigError
from aekit.models.configs import MODEL_CONFIGS
from aekit.resolve import build_config


@pytest.fixture
def second_beta(monkeypatch):
    """A second model with a field named ``beta`` that means something else than the VAE's."""

    @dataclasses.dataclass
    class TwinConfig(ModelConfig):
        beta: float = rule(0.5, min=0.0, help="momentum of the codebook's moving average")

    monkeypatch.setitem(MODEL_CONFIGS, "twin", TwinConfig)
    return TwinConfig


def _help_of(flag: str) -> str:
    from aekit.cli.main import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices["train"]
    action = next(a for a in sub._actions if flag in a.option_strings)
    group = next(g for g in sub._action_groups if action in g._group_actions)
    return f"{group.title}: {action.help}"


def test_a_field_two_models_declare_differently_shows_each_models_help(second_beta):
    text = _help_of("--beta")
    assert text.startswith("model 'twin', 'vae':")
    assert "twin: momentum of the codebook's moving average [default: 0.5]" in text
    assert "vae: weight of the KL term (1: the VAE, >1: a beta-VAE) [default: 1.0]" in text


def test_a_field_declared_alike_keeps_one_help():
    text = _help_of("--beta")
    assert text == "model 'vae': weight of the KL term (1: the VAE, >1: a beta-VAE) [default: 1.0]"
    assert _help_of("--arch").count("network: mlp") == 1  # four models share it, declared once


def test_the_flag_keeps_its_name_for_every_model_that_has_it(second_beta):
    assert build_config("vae-2d", beta=4.0).model.beta == 4.0
    assert build_config("classic-2d-relu", model="twin", beta=0.9).model.beta == 0.9


def test_a_flag_of_another_model_is_one_line_naming_the_model_and_its_own(capsys, tmp_path):
    from aekit.cli.main import main

    with pytest.raises(ConfigError, match=r"^noise_level: model 'sparse' has no noise_level \(it is a setting of "
                                          r"denoising\); its own settings: .*sparsity, sparsity_target"):
        build_config("classic-2d-relu", model="sparse", noise_level=0.2)
    assert main(["train", "--model", "vae", "--noise", "mask", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("aekit train: error: --noise: model 'vae' has no --noise (it is a setting of denoising); its own "
                   "settings: --arch, --beta, --channels, --conv-decoder, --kl-warmup-epochs")
    assert not (tmp_path / "r").exists()


def test_a_pcamlp_flag_under_auto_points_to_the_preset_that_names_pcamlp(tmp_path):
    """The auto preset's model is chosen once the data loads (pcamlp for large sets of small colour photos), so
    its config is resconv's when flags are read; the refusal of pcamlp's --depth says how to set it.
    """
    with pytest.raises(ConfigError, match=r"^depth: model 'resconv' has no depth \(it is a setting of pcamlp\); "
                                          r"its own settings: .*; the auto plan chooses pcamlp only once the data "
                                          r"loads, so to set pcamlp's own settings name it: --preset pcamlp-16$"):
        build_config("auto", depth=2)
    assert build_config("pcamlp-16", depth=2).model.depth == 2
    with pytest.raises(ConfigError) as refused:  # no hint where the preset is not auto
        build_config("classic-2d-relu", model="resconv", depth=2)
    assert "pcamlp-16" not in str(refused.value)
