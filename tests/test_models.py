"""Registry-driven checks: every registered model gets them."""

import pytest
import torch

from aekit.config import ModelConfig
from aekit.errors import ConfigError
from aekit.models import AutoEncoder, ModelOutput, create_model, get_model_class, list_models, register_model

SHAPES = [(1, 28, 28)]


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("shape", SHAPES)
def test_shapes_loss_and_gradients(name, shape):
    torch.manual_seed(0)
    model = create_model(name, shape, latent_dim=4)
    x = torch.rand(5, *shape)
    out = model(x)
    assert isinstance(out, ModelOutput)
    assert out.recon_x.shape == x.shape
    assert out.z.shape == (5, 4)
    assert model.encode(x).shape == (5, 4)
    assert model.decode(out.z).shape == x.shape
    assert torch.isfinite(out.loss) and out.loss.ndim == 0
    out.loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.any(p.grad != 0), f"{name}: no gradient reaches {pname}"


@pytest.mark.parametrize("name", list_models())
def test_every_model_has_a_summary_and_config_class(name):
    cls = get_model_class(name)
    assert cls.summary
    assert issubclass(cls.config_class, ModelConfig)


def test_mlp_architecture_matches_the_seed():
    model = create_model("mlp", hidden=(128, 64, 12), latent_dim=3, activation="tanh",
                         latent_activation="linear", output_activation="sigmoid")
    linears = [m for m in model.encoder if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 128), (128, 64), (64, 12), (12, 3)]
    assert isinstance(model.encoder[-1], torch.nn.Linear)  # linear code
    assert [type(m).__name__ for m in model.decoder][-2:] == ["Linear", "Sigmoid"]
    assert sum(isinstance(m, torch.nn.Tanh) for m in model.decoder) == 3


def test_sigmoid_code_and_half_mse():
    model = create_model("mlp", hidden=(256, 128), latent_dim=100, activation="sigmoid",
                         latent_activation="sigmoid", loss_scale=0.5)
    assert isinstance(model.encoder[-1], torch.nn.Sigmoid)
    x = torch.rand(3, 1, 28, 28)
    out = model(x)
    assert torch.allclose(out.loss, 0.5 * torch.mean((out.recon_x - x) ** 2))


def test_bce_loss_is_torch_bce():
    model = create_model("mlp", hidden=(), latent_dim=30, activation="relu", latent_activation="relu",
                         loss="bce")
    x = torch.rand(3, 1, 28, 28)
    out = model(x)
    assert torch.allclose(out.loss, torch.nn.functional.binary_cross_entropy(out.recon_x, x))
    assert len([m for m in model.encoder if isinstance(m, torch.nn.Linear)]) == 1


def test_unknown_model_and_bad_field():
    with pytest.raises(ConfigError, match="unknown model 'nope'; choose one of: .*mlp"):
        create_model("nope")
    with pytest.raises(ConfigError, match="model.latent_dim"):
        create_model("mlp", latent_dim=0)


def test_registering_twice_is_refused():
    with pytest.raises(RuntimeError):
        register_model("mlp")(type("Dup", (AutoEncoder,), {}))
