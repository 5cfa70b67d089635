"""A denoising autoencoder: corrupt the input, reconstruct the clean image.

Vincent et al. 2010, "Stacked denoising autoencoders", section 4.2 names the three
corruptions: additive isotropic Gaussian noise (``gaussian``, sigma = ``noise_level``),
masking noise (``mask``: a fraction of the pixels forced to the minimum) and salt-and-
pepper noise (``salt_pepper``: a fraction set to the minimum or the maximum by a fair
coin flip). The minimum and maximum are the batch's darkest and brightest values
(0 and 1 for pixels in [0,1], -0.5 and 0.5 when centred), so the model needs no
knowledge of the pixel scale. Corruption happens in training mode only; the loss
compares the reconstruction with the clean image (``AutoEncoder.forward``).
"""

from __future__ import annotations

import torch

from aekit.models.bodies import BodyAutoEncoder
from aekit.models.configs import DenoisingConfig
from aekit.models.registry import register_model


def corrupt_images(x: torch.Tensor, noise: str, level: float) -> torch.Tensor:
    """A corrupted copy of ``x`` ``(B, C, H, W)``; ``x`` itself is left alone."""
    if noise == "gaussian":
        return x + level * torch.randn_like(x)
    lo, hi = x.amin(), x.amax()
    hit = torch.rand_like(x) < level  # each pixel is corrupted with probability `level`
    if noise == "mask":
        return torch.where(hit, lo, x)
    salt = torch.rand_like(x) < 0.5
    return torch.where(hit, torch.where(salt, hi, lo), x)


@register_model("denoising")
class DenoisingAutoEncoder(BodyAutoEncoder):
    summary = "reconstructs clean images from corrupted ones (gaussian, mask or salt_pepper noise)"
    config_class = DenoisingConfig

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        return corrupt_images(x, self.config.noise, self.config.noise_level)
