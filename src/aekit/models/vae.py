"""The variational autoencoder and the beta-VAE, on an MLP or conv body.

Kingma & Welling 2014, "Auto-encoding variational Bayes": the encoder gives a Gaussian
q(z|x) = N(mu, diag(exp(log_var))), a code is drawn by reparameterisation
z = mu + exp(log_var / 2) * eps, eps ~ N(0, I), and the loss is the negative ELBO,
-log p(x|z) + KL(q(z|x) || N(0, I)). Higgins et al. 2017, "beta-VAE", weight the KL
term by beta.

Normalisation. The reconstruction loss here is a mean over the D pixels, so the KL
term, a sum over the latent units, is divided by D as well: the loss is the negative
ELBO per image divided by D, and beta is the beta-VAE paper's ratio of the two terms
(no hidden weight). With ``loss="bce"`` the reconstruction term is the Bernoulli
decoder's -log p(x|z) exactly; with ``mse`` it is a Gaussian decoder's with variance
1/2, up to a constant.

KL warm-up (``kl_warmup_epochs``): the KL weight rises linearly from 0 to beta over
that many epochs, read from the trainer's ``on_train_step`` hook. Evaluation always
uses the full beta and the mean code (z = mu), so test losses are deterministic and
comparable from epoch to epoch; ``encode`` returns mu.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aekit.models.base import AutoEncoder, ModelOutput
from aekit.models.bodies import make_decoder, make_encoder
from aekit.models.configs import VAEConfig
from aekit.models.registry import register_model


def gaussian_kl(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(log_var)) || N(0, I)) per image ``(B,)``, summed over the latent units.

    Kingma & Welling 2014, Appendix B: -KL = 1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2).
    """
    return -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp(), dim=1)


@register_model("vae")
class VAE(AutoEncoder):
    summary = "variational autoencoder; beta > 1 gives the beta-VAE; KL warm-up; can sample from its prior"
    config_class = VAEConfig
    is_generative = True

    def __init__(self, config, input_shape):
        super().__init__(config, input_shape)
        # the encoder's one output holds mu and log_var side by side: (B, 2k)
        self.encoder = make_encoder(config, input_shape, 2 * config.latent_dim, "linear")
        self.decoder = make_decoder(config, input_shape, config.latent_dim)
        self.epoch_progress = float("inf")  # outside training the full beta applies

    def encode_distribution(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``mu, log_var``, each ``(B, latent_dim)``."""
        mu, log_var = self.encoder(x).chunk(2, dim=1)  # (B, 2k) -> 2 x (B, k)
        return mu, log_var

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode_distribution(x)[0]  # the mean: deterministic codes for plots and metrics

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def reparameterize(self, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        return mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)

    def on_train_step(self, epoch_progress: float) -> None:
        self.epoch_progress = epoch_progress

    @property
    def kl_weight(self) -> float:
        """beta, ramped linearly over the warm-up while training."""
        warmup = self.config.kl_warmup_epochs
        if not self.training or warmup <= 0:
            return self.config.beta
        return self.config.beta * min(1.0, self.epoch_progress / warmup)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        mu, log_var = self.encode_distribution(x)
        z = self.reparameterize(mu, log_var) if self.training else mu
        recon_x = self.decode(z)
        recon_loss = self.reconstruction_loss(recon_x, x)  # mean over pixels and images
        # in fp32 under autocast: a low-precision sum over the code units would lose the KL's digits
        kl = self.kl_weight * gaussian_kl(mu.float(), log_var.float()).mean() / self.input_dim
        return ModelOutput(recon_x, z, terms={"recon": recon_loss, "kl": kl})

    @torch.no_grad()
    def anomaly_score(self, x: torch.Tensor) -> torch.Tensor:
        """Negative ELBO per feature of each image ``x`` ``(B, C, H, W)``: ``(B,)`` float64.

        The reconstruction term is the model's own loss (``bce`` or ``mse``, times
        ``loss_scale``) at the mean code, per feature; the KL term is :func:`gaussian_kl`
        divided by the number of features, at full weight whatever ``beta`` (the ELBO, not
        the beta-VAE objective). With ``loss="bce"`` this is the Bernoulli decoder's
        negative ELBO divided by ``D`` (Kingma & Welling 2014, eq. 10), its expectation
        taken at ``z = mu``. Sums in float64, as the base class's score.
        """
        mu, log_var = self.encode_distribution(x)  # 2 x (B, k)
        recon_x = self.decode(mu)
        if self.config.loss == "bce":
            recon = F.binary_cross_entropy(recon_x, x, reduction="none")
        else:
            recon = (recon_x - x).pow(2)
        kl = gaussian_kl(mu.double(), log_var.double())  # (B,)
        return self.config.loss_scale * recon.flatten(1).double().mean(1) + kl / self.input_dim

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator).to(device)  # the prior N(0, I)
        return self.decode(z)
