"""Each variant does what its paper says, checked against an existing implementation where one exists."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aekit.config import TrainConfig
from aekit.data import load_dataset
from aekit.errors import ConfigError
from aekit.models import create_model
from aekit.models.denoising import corrupt_images
from aekit.models.sparse import kl_sparsity
from aekit.models.vae import gaussian_kl
from aekit.training import Callback, Trainer


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("mnist-sample")
    return torch.from_numpy(data.x_train), torch.from_numpy(data.x_test)


# ----------------------------------------------------------------------------- linear


@pytest.mark.slow
def test_linear_autoencoder_comes_within_2_percent_of_pca(digits):
    from sklearn.decomposition import PCA

    x_train, x_test = digits
    k = 10
    flat = lambda x: x.reshape(len(x), -1).numpy().astype(np.float32) / 255  # noqa: E731
    pca = PCA(k).fit(flat(x_train))
    pca_mse = float(np.mean((pca.inverse_transform(pca.transform(flat(x_test))) - flat(x_test)) ** 2))

    torch.manual_seed(0)
    model = create_model("linear", hidden=(), latent_dim=k)  # random init: it has to learn the subspace
    history = Trainer(model, TrainConfig(epochs=30, batch_size=128, lr=0.003)).fit(x_train, x_test)
    assert history[0]["test_mse"] > 1.5 * pca_mse  # it started far away
    assert history[-1]["test_mse"] <= 1.02 * pca_mse
    assert not any(isinstance(m, (torch.nn.Sigmoid, torch.nn.Tanh, torch.nn.ReLU)) for m in model.modules())


def test_linear_refuses_bce():
    with pytest.raises(ConfigError, match="model.loss: the linear autoencoder"):
        create_model("linear", loss="bce")


# ----------------------------------------------------------------------------- denoising


def test_corruptions_do_what_they_say():
    torch.manual_seed(0)
    x = (torch.rand(64, 1, 28, 28) > 0.5).float() * 0.6 + 0.2  # pixels 0.2 or 0.8, never an extreme
    x[0, 0, 0, 0], x[0, 0, 0, 1] = 0.0, 1.0
    before = x.clone()

    noisy = corrupt_images(x, "gaussian", 0.3)
    assert abs(float((noisy - x).std()) - 0.3) < 0.01 and abs(float((noisy - x).mean())) < 0.01

    masked = corrupt_images(x, "mask", 0.25)
    changed = masked != x
    assert abs(float(changed.float().mean()) - 0.25 * 0.999) < 0.01
    assert torch.all(masked[changed] == 0.0)  # forced to the minimum

    sp = corrupt_images(x, "salt_pepper", 0.4)
    hit = sp != x
    assert abs(float(hit.float().mean()) - 0.4) < 0.01
    assert set(sp[hit].unique().tolist()) == {0.0, 1.0}
    assert abs(float((sp[hit] == 1.0).float().mean()) - 0.5) < 0.02  # a fair coin
    assert torch.equal(x, before)  # the clean input is never touched


@pytest.mark.parametrize("noise", ["gaussian", "mask", "salt_pepper"])
def test_denoising_corrupts_in_training_only_and_targets_the_clean_image(noise):
    torch.manual_seed(0)
    model = create_model("denoising", latent_dim=4, hidden=(32,), noise=noise, noise_level=0.5)
    x = torch.rand(8, 1, 28, 28)

    model.train()
    torch.manual_seed(1)
    out = model(x)
    torch.manual_seed(1)
    x_noisy = corrupt_images(x, noise, 0.5)
    assert not torch.equal(x_noisy, x)
    assert torch.allclose(out.recon_x, model.decode(model.encode(x_noisy)))
    assert torch.allclose(out.recon_loss, F.mse_loss(out.recon_x, x))  # clean target

    model.eval()
    assert torch.equal(model(x).recon_x, model.decode(model.encode(x)))


# ----------------------------------------------------------------------------- sparse


def test_kl_sparsity_is_the_bernoulli_kl():
    from torch.distributions import Bernoulli, kl_divergence

    z = torch.rand(50, 16) * 0.9 + 0.05
    rho = 0.05
    expected = kl_divergence(Bernoulli(probs=torch.full((16,), rho)), Bernoulli(probs=z.mean(0))).sum()
    assert torch.allclose(kl_sparsity(z, rho), expected, rtol=1e-5)


def test_kl_penalty_gradient_moves_mean_activation_toward_rho():
    torch.manual_seed(0)
    rho = 0.05
    model = create_model("sparse", latent_dim=16, hidden=(64,), activation="relu", latent_activation="sigmoid",
                         sparsity="kl", sparsity_target=rho, sparsity_weight=3.0)
    x = torch.rand(128, 1, 28, 28)
    start = float(model.encode(x).mean().detach())
    assert start > 0.3  # sigmoid units start near 0.5

    penalty = model(x).reg_loss
    penalty.backward()
    for name, p in model.encoder.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"the penalty does not reach encoder.{name}"

    opt = torch.optim.Adam(model.encoder.parameters(), lr=0.01)
    for _ in range(50):  # descend the penalty alone
        opt.zero_grad()
        model(x).reg_loss.backward()
        opt.step()
    rho_hat = model.encode(x).mean(0).detach()
    assert float(rho_hat.mean()) < 0.5 * start
    assert torch.all((rho_hat - rho).abs() < 0.05)


def test_l1_penalty_and_defaults():
    model = create_model("sparse", latent_dim=6, hidden=(16,))
    x = torch.rand(10, 1, 28, 28)
    out = model(x)
    assert torch.allclose(out.reg_loss, 0.1 * out.z.abs().sum(1).mean() / 784)  # unset weight: 0.1 for l1
    out.reg_loss.backward()
    assert model.encoder[1][0].weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="model.latent_activation: the kl sparsity penalty needs sigmoid"):
        create_model("sparse", sparsity="kl", latent_activation="relu")


# ----------------------------------------------------------------------------- contractive


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "linear"])
def test_contractive_closed_form_equals_autograd(activation):
    torch.manual_seed(0)
    model = create_model("contractive", hidden=(), latent_dim=7, latent_activation=activation)
    assert model.has_closed_form
    x = torch.rand(6, 1, 28, 28)
    closed = model.jacobian_norm_closed_form(model.encode(x))
    exact = model.jacobian_norm_autograd(x)
    assert closed.shape == (6,)
    assert torch.allclose(closed, exact, rtol=1e-5)
    # and against torch's own Jacobian of one image
    jac = torch.autograd.functional.jacobian(lambda v: model.encode(v[None])[0], x[0])  # (7, 1, 28, 28)
    assert torch.allclose(closed[0], jac.pow(2).sum(), rtol=1e-5)


def test_contractive_penalty_is_weighted_and_lowers_the_jacobian():
    torch.manual_seed(0)
    model = create_model("contractive", hidden=(32,), latent_dim=5, activation="tanh", contraction_weight=2.0)
    assert not model.has_closed_form  # a hidden layer: autograd
    x = torch.rand(16, 1, 28, 28)
    out = model(x)
    norm = model.jacobian_norm_autograd(x).detach()
    assert torch.allclose(out.reg_loss, 2.0 * norm.mean() / 784)
    opt = torch.optim.Adam(model.encoder.parameters(), lr=0.01)
    for _ in range(10):
        opt.zero_grad()
        model(x).reg_loss.backward()
        opt.step()
    assert float(model.jacobian_norm_autograd(x).detach().mean()) < 0.5 * float(norm.mean())
    with torch.no_grad():  # evaluation runs under no_grad; the norm must still be computed
        assert torch.isfinite(model.eval()(x).reg_loss)


# ----------------------------------------------------------------------------- vae


def test_vae_kl_equals_torch_distributions():
    from torch.distributions import Normal, kl_divergence

    torch.manual_seed(0)
    mu, log_var = torch.randn(20, 6) * 2, torch.randn(20, 6)
    expected = kl_divergence(Normal(mu, torch.exp(0.5 * log_var)), Normal(0.0, 1.0)).sum(1)
    assert torch.allclose(gaussian_kl(mu, log_var), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_vae_loss_is_recon_plus_beta_kl_per_pixel(loss):
    torch.manual_seed(0)
    model = create_model("vae", latent_dim=3, hidden=(32,), beta=4.0, loss=loss).eval()
    x = torch.rand(8, 1, 28, 28)
    out = model(x)
    mu, log_var = model.encode_distribution(x)
    assert torch.equal(out.z, mu) and torch.equal(model.encode(x), mu)  # eval: the mean code
    recon = F.binary_cross_entropy(out.recon_x, x) if loss == "bce" else F.mse_loss(out.recon_x, x)
    assert torch.allclose(out.recon_loss, recon)
    assert torch.allclose(out.reg_loss, 4.0 * gaussian_kl(mu, log_var).mean() / 784)


def test_vae_reparameterisation_samples_the_posterior_and_passes_gradients():
    model = create_model("vae", latent_dim=2, hidden=(8,))
    mu = torch.tensor([[1.0, -2.0]]).repeat(20000, 1).requires_grad_()
    log_var = torch.tensor([[0.0, 2 * float(np.log(0.5))]]).repeat(20000, 1).requires_grad_()
    torch.manual_seed(0)
    z = model.reparameterize(mu, log_var)
    assert torch.allclose(z.mean(0), torch.tensor([1.0, -2.0]), atol=0.03)
    assert torch.allclose(z.std(0), torch.tensor([1.0, 0.5]), atol=0.03)
    z.sum().backward()
    assert mu.grad is not None and log_var.grad is not None and log_var.grad.abs().sum() > 0
    model.train()
    x = torch.rand(4, 1, 28, 28)
    assert not torch.equal(model(x).z, model.encode(x))  # training draws a sample


def test_kl_warmup_ramps_beta_through_the_trainer_hook():
    model = create_model("vae", latent_dim=2, hidden=(8,), beta=2.0, kl_warmup_epochs=4)
    model.train()
    for progress, weight in [(0.0, 0.0), (1.0, 0.5), (3.0, 1.5), (4.0, 2.0), (9.5, 2.0)]:
        model.on_train_step(progress)
        assert model.kl_weight == pytest.approx(weight)
    model.on_train_step(1.0)
    assert model.eval().kl_weight == 2.0  # evaluation always uses the full beta

    seen = []
    model.train()
    model.on_train_step = lambda p: seen.append(p)  # what the trainer reports
    x = torch.zeros(100, 1, 28, 28, dtype=torch.uint8)
    Trainer(model, TrainConfig(epochs=2, batch_size=25)).fit(x, x[:10])
    assert seen == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]


def test_vae_samples_from_its_prior():
    model = create_model("vae", (3, 32, 32), latent_dim=5, arch="conv", channels=(8, 16)).eval()
    assert model.is_generative and not create_model("mlp").is_generative
    images = model.sample(7, generator=torch.Generator().manual_seed(0))
    assert images.shape == (7, 3, 32, 32) and 0 <= float(images.min()) <= float(images.max()) <= 1
    again = model.sample(7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(images, again)


# ----------------------------------------------------------------------------- stacked


def test_stacked_pretrains_layer_by_layer_then_fine_tunes_every_layer(digits):
    x_train, x_test = digits[0][:1000], digits[1][:200]
    torch.manual_seed(0)
    model = create_model("stacked", hidden=(64, 32), latent_dim=8, activation="sigmoid", pretrain_epochs=1)
    snap = lambda: {k: v.detach().clone() for k, v in model.state_dict().items()}  # noqa: E731
    start, after_stage, stages = snap(), [], []

    class Spy(Callback):
        def on_pretrain_epoch_end(self, trainer, stage, metrics):
            stages.append(stage)
            after_stage.append(snap())

        def on_fit_start(self, trainer):
            self.before_fine_tuning = snap()

    spy = Spy()
    Trainer(model, TrainConfig(epochs=1, batch_size=100, lr=0.01), callbacks=[spy]).fit(x_train, x_test)
    assert stages == ["layer 1/3", "layer 2/3", "layer 3/3"]

    def changed(a, b):
        return {k for k in a if not torch.equal(a[k], b[k])}

    layer = lambda i: {f"{part}_layers.{i}.0.{w}" for part in ("encoder", "decoder") for w in ("weight", "bias")}  # noqa: E731
    # each stage trains exactly its own encoder and decoder layer; the others stay as they were
    assert changed(start, after_stage[0]) == layer(0)
    assert changed(after_stage[0], after_stage[1]) == layer(1)
    assert changed(after_stage[1], after_stage[2]) == layer(2)
    # fine-tuning moves every weight of every layer
    assert changed(spy.before_fine_tuning, snap()) == set(start)
    assert all(p.requires_grad for p in model.parameters())


def test_stacked_pretraining_reports_image_space_error(digits, capsys):
    from aekit.training import EpochPrinter

    torch.manual_seed(0)
    model = create_model("stacked", hidden=(32,), latent_dim=4, pretrain_epochs=2)
    Trainer(model, TrainConfig(epochs=1, batch_size=200), callbacks=[EpochPrinter()]).fit(
        digits[0][:400], digits[1][:100])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[0] for line in lines] == [
        "pretrain layer 1/2 epoch 1/2", "pretrain layer 1/2 epoch 2/2",
        "pretrain layer 2/2 epoch 1/2", "pretrain layer 2/2 epoch 2/2", "epoch 1/1"]


# ----------------------------------------------------------------------------- any model's codes


def test_sample_from_codes_fits_a_gaussian_to_them():
    model = create_model("mlp", latent_dim=3)
    model.decode = lambda z: z  # look at the codes it draws
    g = torch.Generator().manual_seed(0)
    cov = torch.tensor([[2.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 0.1]])
    codes = torch.randn(5000, 3, generator=g) @ torch.linalg.cholesky(cov).T + torch.tensor([5.0, -1.0, 0.0])
    drawn = model.sample_from_codes(codes, 20000, generator=g)
    assert torch.allclose(drawn.mean(0), codes.mean(0), atol=0.05)
    assert torch.allclose(torch.cov(drawn.T), torch.cov(codes.T), atol=0.08)


def test_interpolate_and_traverse():
    torch.manual_seed(0)
    model = create_model("mlp", latent_dim=3).eval()
    a, b = torch.rand(1, 28, 28), torch.rand(1, 28, 28)
    strip = model.interpolate(a, b, steps=5)
    assert strip.shape == (5, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(strip[0], model.decode(model.encode(a[None]))[0], atol=1e-6)
        assert torch.allclose(strip[-1], model.decode(model.encode(b[None]))[0], atol=1e-6)
        z = model.encode(a[None])[0]
        row = model.traverse(z, 1, torch.linspace(-2, 2, 4))
        codes = z.repeat(4, 1)
        codes[:, 1] = torch.linspace(-2, 2, 4)
        assert torch.allclose(row, model.decode(codes))


# ----------------------------------------------------------------------------- conv


@pytest.mark.parametrize("shape", [(1, 27, 27), (3, 30, 20), (1, 5, 9), (3, 64, 64)])
@pytest.mark.parametrize("channels", [(8,), (8, 16, 32)])
def test_conv_body_lands_on_any_image_size(shape, channels):
    model = create_model("conv", shape, latent_dim=3, channels=channels)
    assert model(torch.rand(2, *shape)).recon_x.shape == (2, *shape)
    convs = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == list(channels) and all(c.stride == (2, 2) for c in convs)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 27, 30)])
def test_conv_decoder_has_no_wide_full_size_layer_unless_asked_for(shape):
    c, h, w = shape

    def full_size_widths(model):  # channels of every layer output at the image's size (before a crop: larger)
        widths = []
        hooks = [m.register_forward_hook(lambda m, i, out: widths.append(out.shape[1])
                                         if out.shape[2] >= h and out.shape[3] >= w else None)
                 for m in model.decoder.convs]
        model.decode(torch.zeros(2, 3))
        for hook in hooks:
            hook.remove()
        return widths

    assert max(full_size_widths(create_model("conv", shape, latent_dim=3, channels=(8, 16)))) == c
    refine = create_model("conv", shape, latent_dim=3, channels=(8, 16), conv_decoder="refine")
    assert max(full_size_widths(refine)) == 8
    # refine is the earlier body, layer for layer, so the runs trained with it load
    assert [k for k in refine.state_dict() if k.startswith("decoder.convs")] == [
        f"decoder.convs.{i}.{p}" for i in (0, 1, 3, 4, 6) for p in ("weight", "bias")]


@pytest.mark.slow
def test_relu_conv_with_sigmoid_output_does_not_collapse_to_black(digits):
    # Without the group norm in the conv body this run ends at an all-black guess
    # (test MSE 0.1135, outputs ~1e-7): the sigmoid saturates and passes no gradient.
    torch.manual_seed(0)
    model = create_model("conv", latent_dim=16, channels=(32, 64), activation="relu")
    history = Trainer(model, TrainConfig(epochs=2, batch_size=64, lr=0.001)).fit(digits[0][:1280], digits[1][:200])
    assert history[-1]["test_mse"] < 0.09
    with torch.no_grad():
        recon = model.eval()(digits[1][:100].float() / 255).recon_x
    assert float(recon.std()) > 0.05  # images, not a constant
