"""The residual conv family (``resconv``): depth from the image size, shapes from 28 to 256 pixels, its
config's rules, its presets; and the older conv presets unchanged beside it.

The registry-driven checks (gradients on every parameter, save/load, eval determinism, one
epoch through the CLI) are in tests/test_models.py and cover resconv like every model.
"""

import pytest
import torch

from aekit.errors import ConfigError
from aekit.models import create_model
from aekit.presets import PRESETS
from aekit.resolve import build_config

SMALL = {"width": 4, "max_width": 16}  # the shapes of the defaults at a fraction of the arithmetic
# the stages down and the last map's side: round(log2(side / 4)) halvings, the side padded to a multiple
STAGES = {28: (3, 4), 32: (3, 4), 48: (4, 3), 64: (4, 4), 96: (5, 3), 128: (5, 4), 256: (6, 4)}


@pytest.mark.parametrize("side", sorted(STAGES))
@pytest.mark.parametrize("channels", [1, 3, 4], ids=["grey", "rgb", "rgba"])
def test_output_has_the_input_shape_at_every_size(side, channels):
    torch.manual_seed(0)
    model = create_model("resconv", (channels, side, side), latent_dim=8, **SMALL)
    stages, last = STAGES[side]
    assert model.stages == stages and model.feature_shape[1:] == (last, last)
    x = torch.rand(2, channels, side, side)
    out = model(x)
    assert out.z.shape == (2, 8) and out.recon_x.shape == x.shape and torch.isfinite(out.loss)
    assert model.decode(torch.zeros(3, 8)).shape == (3, channels, side, side)


@pytest.mark.parametrize("shape", [(3, 64, 48), (3, 48, 64), (1, 33, 17), (3, 7, 5), (1, 2, 2), (1, 300, 200)])
def test_non_square_odd_and_tiny_sizes(shape):
    model = create_model("resconv", shape, latent_dim=4, **SMALL)
    x = torch.rand(2, *shape)
    assert model(x).recon_x.shape == x.shape
    c, h, w = shape
    side = 2 ** model.stages
    assert model.feature_shape[1:] == (-(-h // side), -(-w // side))  # the padded size, halved stages times


def test_an_odd_size_is_padded_with_its_edges_and_cropped_back():
    model = create_model("resconv", (1, 28, 28), latent_dim=4, **SMALL)
    assert model.padding == (2, 2, 2, 2)  # 28 -> 32 for 3 stages
    x = torch.rand(1, 1, 28, 28)
    seen = {}
    model.encoder[0].register_forward_hook(lambda m, inputs, output: seen.update(x=inputs[0]))
    model.encode(x)
    assert seen["x"].shape == (1, 1, 32, 32)
    assert torch.equal(seen["x"][..., 2:30, 2:30], x) and torch.equal(seen["x"][..., 0, 2:30], x[..., 0, :])


def test_the_decoder_upsamples_by_nearest_neighbour_with_no_transposed_or_sub_pixel_convolution():
    model = create_model("resconv", (3, 64, 64), latent_dim=4, **SMALL)
    kinds = {type(m).__name__ for m in model.modules()}
    assert not kinds & {"ConvTranspose2d", "PixelShuffle", "BatchNorm2d"}
    assert {"GroupNorm", "SiLU", "Upsample"} <= kinds
    assert sum(type(m).__name__ == "Upsample" for m in model.decoder) == model.stages


def test_the_upsampling_steps_keep_a_flat_map_flat_where_a_transposed_convolution_does_not():
    """The checkerboard (Odena et al. 2016) shows on flat regions: a stride-2 3x3 transposed
    convolution gives pixels of either parity a different number of taps, so a constant map
    comes out in a 2x2 pattern; nearest-neighbour upsampling and a 3x3 convolution give each
    pixel the same weights' sum, so it comes out constant (but for the zero-padded border).
    """
    torch.manual_seed(0)
    model = create_model("resconv", (3, 64, 64), latent_dim=4, **SMALL)
    for up in [m for m in model.decoder if type(m).__name__ == "Upsample"]:
        flat = torch.full((1, up.conv.in_channels, 8, 8), 0.7)
        with torch.no_grad():
            inner = up(flat)[..., 1:-1, 1:-1]  # (1, c_out, 14, 14)
            assert torch.allclose(inner, inner[..., :1, :1].expand_as(inner), atol=1e-5)
            transposed = torch.nn.ConvTranspose2d(up.conv.in_channels, up.conv.out_channels, 3, stride=2, padding=1,
                                                  output_padding=1)
            inner = transposed(flat)[..., 1:-1, 1:-1]
            assert not torch.allclose(inner, inner[..., :1, :1].expand_as(inner), atol=1e-3)


def test_widths_double_per_stage_up_to_max_width():
    model = create_model("resconv", (3, 256, 256), latent_dim=4, width=8, max_width=32)
    down = [m.out_channels for m in model.encoder if isinstance(m, torch.nn.Conv2d)]
    assert down == [8, 16, 32, 32, 32, 32]
    assert model.feature_shape == (32, 4, 4)


def test_parameter_count_grows_with_the_image_only_where_a_stage_is_added():
    def count(side, **fields):
        model = create_model("resconv", (3, side, side), **{"latent_dim": 16, **fields})
        return sum(p.numel() for p in model.parameters())

    counts = {side: count(side) for side in (28, 32, 64, 128, 256)}
    assert counts[28] == counts[32]  # 28 is padded to 32: the same network
    assert counts[32] < counts[64] < counts[128] < counts[256] < 12_000_000
    # past max_width a stage adds one residual block a side and an up and a down convolution at 256 channels
    cap = 256
    per_capped_stage = 2 * (2 * (9 * cap * cap + cap) + 2 * 2 * cap) + 2 * (9 * cap * cap + cap)
    assert counts[256] - counts[128] == per_capped_stage
    # the code's linear maps stay the size of a 4x4 map at every size
    assert count(64, width=32) - count(64, width=32, latent_dim=8) == 2 * 8 * 256 * 4 * 4 + 8
    assert count(32, blocks=2) > count(32) > count(32, blocks=0)


@pytest.mark.parametrize("fields, field", [
    ({"width": 0}, "model.width"), ({"max_width": 0}, "model.max_width"), ({"blocks": -1}, "model.blocks"),
    ({"stages": 17}, "model.stages"), ({"width": 64, "max_width": 32}, "model.max_width"),
    ({"activation": "swish"}, "model.activation"),
])
def test_bad_fields_are_named(fields, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        create_model("resconv", (3, 32, 32), **fields)


def test_too_many_stages_for_the_image_is_refused_with_the_field_name():
    assert create_model("resconv", (1, 28, 28), stages=5, **SMALL).feature_shape[1:] == (1, 1)
    with pytest.raises(ConfigError, match=r"model\.stages: 6 stages would halve 28x28 .* at most 5 here"):
        create_model("resconv", (1, 28, 28), stages=6, **SMALL)


def test_silu_is_the_default_activation_and_the_others_are_allowed():
    assert create_model("resconv", (1, 28, 28)).config.activation == "silu"
    assert build_config("resconv-16").model.activation == "silu"
    model = create_model("resconv", (1, 28, 28), activation="relu", **SMALL)
    assert any(isinstance(m, torch.nn.ReLU) for m in model.modules())
    assert not any(isinstance(m, torch.nn.SiLU) for m in model.modules())


@pytest.mark.parametrize("preset, latent_dim", [("resconv-16", 16), ("resconv-64", 64)])
def test_resconv_presets(preset, latent_dim):
    cfg = build_config(preset)
    assert cfg.model.model == "resconv" and cfg.model.latent_dim == latent_dim
    assert cfg.model.activation == "silu" and cfg.model.output_activation == "sigmoid"
    for shape in [(1, 28, 28), (3, 32, 32), (4, 64, 64)]:
        model = create_model(cfg.model, shape)
        x = torch.rand(2, *shape)
        assert model(x).recon_x.shape == x.shape


# The conv presets' networks as they were before resconv came (counted on main at f794f0f):
# adding a family must not change a single parameter of theirs.
OLD_CONV = {"conv-16": (107060, 18), "denoising-conv": (242564, 18), "beta-vae-conv": (135928, 18)}


@pytest.mark.parametrize("preset", sorted(OLD_CONV))
def test_the_older_conv_presets_build_the_same_networks(preset):
    cfg = build_config(preset)
    assert PRESETS[preset]["model"]["model"] in ("conv", "denoising", "vae")
    state = create_model(cfg.model, (1, 28, 28)).state_dict()
    assert (sum(t.numel() for t in state.values()), len(state)) == OLD_CONV[preset]


# ----------------------------------------------------------------- the linear path (started at PCA)

def _images(n=300, shape=(3, 16, 16), seed=0):
    """Images in [0, 1] with a few strong directions (as photos have), so PCA's axes are well defined."""
    g = torch.Generator().manual_seed(seed)
    d = torch.tensor(shape).prod().item()
    basis = torch.randn(6, d, generator=g)
    x = 0.5 + 0.08 * (torch.randn(n, 6, generator=g) * torch.tensor([4., 3., 2., 1.5, 1., .5])) @ basis / 6
    return (x + 0.01 * torch.rand(n, d, generator=g)).clamp(0, 1).view(n, *shape)


def _pca_error(x, k):
    flat = x.flatten(1).double()
    mean = flat.mean(0)
    v = torch.linalg.svd(flat - mean, full_matrices=False).Vh[:k]  # (k, D)
    return (((flat - mean) @ v.T @ v + mean).clamp(0, 1) - flat).pow(2).mean().item()


def test_the_linear_path_starts_at_pca_exactly_and_its_network_at_zero():
    x = _images()
    model = create_model("resconv", (3, 16, 16), latent_dim=4, linear_path=True, **SMALL)
    assert model.init_sample >= 8 * 4
    model.init_from_data(x)
    model.eval()
    with torch.no_grad():
        recon = model.decode(model.encode(x))
    error = (recon - x).pow(2).mean().item()
    assert error == pytest.approx(_pca_error(x, 4), rel=1e-4)  # PCA-4's reconstruction, before any step
    assert recon.min() >= 0 and recon.max() <= 1  # clamped to the sigmoid's range
    basis = model.basis.detach().double()
    assert torch.allclose(basis @ basis.T, torch.eye(4, dtype=torch.float64), atol=1e-5)  # orthonormal axes
    # a second call (a second fit, or a model whose checkpoint holds them) leaves them alone
    before = model.basis.detach().clone()
    model.init_from_data(torch.rand(50, 3, 16, 16))
    assert torch.equal(model.basis, before)


def test_the_linear_path_trains_every_part_and_keeps_its_start_in_the_state_dict():
    x = _images()
    model = create_model("resconv", (3, 16, 16), latent_dim=4, linear_path=True, **SMALL)
    model.init_from_data(x)
    out = model(x[:16])
    out.loss.backward()
    assert "basis" not in dict(model.named_parameters())  # PCA's axes stay as they started
    assert model.to_code[1].weight.grad.abs().sum() > 0  # the zero-started layers still get gradients
    assert model.decoder[-1].conv.weight.grad.abs().sum() > 0
    state = model.state_dict()
    assert {"pixel_mean", "pca_ready", "basis"} <= set(state)
    fresh = create_model("resconv", (3, 16, 16), latent_dim=4, linear_path=True, **SMALL)
    fresh.load_state_dict(state)
    fresh.eval(), model.eval()
    assert torch.equal(fresh.encode(x[:4]), model.encode(x[:4]))


def test_in_training_the_clamp_passes_the_gradient_through():
    model = create_model("resconv", (1, 8, 8), latent_dim=2, linear_path=True, **SMALL)
    model.init_from_data(torch.rand(40, 1, 8, 8))
    with torch.no_grad():
        model.pixel_mean.fill_(1.5)  # every pixel past the range: a plain clamp would pass no gradient
    model.train()
    out = model(torch.full((4, 1, 8, 8), 0.25))
    assert out.recon_x.max() <= 1  # the loss sees the clamped image
    out.loss.backward()
    assert model.decoder[-1].conv.bias.grad.sum() > 0  # pulls every pixel down, towards 0.25


def test_the_trainer_starts_the_linear_path_on_a_new_run_only(tmp_path):
    from aekit.config import TrainConfig
    from aekit.training.trainer import Trainer

    x = (_images(200) * 255).round().to(torch.uint8)
    model = create_model("resconv", (3, 16, 16), latent_dim=4, linear_path=True, **SMALL)
    trainer = Trainer(model, TrainConfig(epochs=1, batch_size=50, lr=1e-3, seed=3), precision="fp32")
    history = trainer.fit(x[:150], x[150:])
    assert bool(model.pca_ready)
    # the first epoch's test error is PCA's or better: training started from it
    assert history[0]["test_recon_loss"] <= _pca_error(x[150:].float() / 255, 4) * 1.5
    start = model.basis.detach().clone()
    again = Trainer(model, TrainConfig(epochs=1, batch_size=50, lr=0.0, seed=3), precision="fp32")
    again.fit(x[:150], x[150:])
    assert torch.equal(model.basis, start)  # a trained model is not started again


def test_the_linear_path_needs_a_linear_code():
    with pytest.raises(ConfigError, match="model.latent_activation"):
        create_model("resconv", (3, 16, 16), latent_dim=4, linear_path=True, latent_activation="tanh", **SMALL)
