"""Reconstruction losses for photos beside MSE and BCE: L1, and an SSIM mix; and any of them masked by alpha.

SSIM (Wang et al. 2004, "Image quality assessment: from error visibility to structural
similarity") compares local means, variances and covariance under an 11x11 Gaussian
window (sigma 1.5), with ``C1 = (0.01 L)^2`` and ``C2 = (0.03 L)^2`` for a data range
``L`` of 1 (both pixel scales span 1). Zhao et al. 2017 ("Loss functions for image
restoration with neural networks") train on ``0.84 (1 - SSIM) + 0.16 L1``; that mix is the
``ssim`` loss here (the Gaussian weighting they put on the L1 term is left out).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_MIX = 0.84  # Zhao et al. 2017, section 3.3


def _window(size: int, sigma: float, channels: int, like: torch.Tensor) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    g = (g / g.sum()).to(like)
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()  # (C, 1, k, k), one per channel


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM of ``x`` and ``y`` ``(B, C, H, W)`` over every valid window position, channel and image.

    Images smaller than 11 pixels a side use the largest odd window that fits.
    """
    c, h, w = x.shape[1:]
    size = min(SSIM_WINDOW, h - (h % 2 == 0), w - (w % 2 == 0))
    win = _window(size, SSIM_SIGMA, c, x)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def blur(t):
        return F.conv2d(t, win, groups=c)  # (B, C, H-k+1, W-k+1): valid positions only

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return index.mean()


def ssim_mix(recon_x: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``0.84 (1 - SSIM) + 0.16 L1`` (Zhao et al. 2017)."""
    return SSIM_MIX * (1 - ssim(recon_x, x)) + (1 - SSIM_MIX) * F.l1_loss(recon_x, x)


LOSSES = {"l1": F.l1_loss, "ssim": ssim_mix}  # beside mse and bce, which the model base has itself


def _per_value(loss: str, recon_x: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The elementwise error of ``loss`` (mse, l1 or bce), shaped as ``x``; a NaN in ``recon_x`` stays NaN."""
    if loss == "bce":
        bad = recon_x.isnan()
        return F.binary_cross_entropy(recon_x.masked_fill(bad, 0.5), x, reduction="none").masked_fill(bad, torch.nan)
    if loss == "l1":
        return (recon_x - x).abs()
    return (recon_x - x) ** 2


def alpha_masked(loss: str, recon_x: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``loss`` on RGBA ``(B, 4, H, W)`` in the unit range with the colour error weighted by the true alpha.

    Elementwise losses: a weighted mean over every value, the colour channels weighted
    by ``x``'s alpha and the alpha channel by 1, so a fully transparent pixel's colour
    does not count and an opaque image scores as the plain loss. ``ssim``: the mix on
    both images with their colour multiplied by ``x``'s alpha (premultiplied), the
    alpha channel as it is.
    """
    if loss == "ssim":
        alpha = x[:, 3:]  # (B, 1, H, W): the true mask, a weight in [0, 1] (the config asks for the unit scale)
        premultiplied = torch.cat([recon_x[:, :3] * alpha, recon_x[:, 3:]], 1), torch.cat([x[:, :3] * alpha, alpha], 1)
        return ssim_mix(*premultiplied)
    error, weight = alpha_masked_sums(loss, recon_x, x)
    return error / weight


def alpha_masked_sums(loss: str, recon_x: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The weighted error sum and the weight sum whose ratio :func:`alpha_masked` is (elementwise losses).

    Apart, so that the evaluation can add them up over the test set a chunk at a time and
    give the mean the training loss would give on the whole set as one batch.
    """
    alpha = x[:, 3:]  # (B, 1, H, W): the true mask, a weight in [0, 1] (the config asks for the unit scale)
    weight = torch.cat([alpha.expand(-1, 3, -1, -1), torch.ones_like(alpha)], 1)  # (B, 4, H, W)
    return (_per_value(loss, recon_x, x) * weight).sum(), weight.sum()
