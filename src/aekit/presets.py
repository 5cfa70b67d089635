"""Presets: named sets of data, model and training fields. Data, not code.

Each seed tutorial's setup is reproduced exactly (architecture, activations, loss,
optimiser settings, batch size, epochs); ``source`` says where it comes from and
``summary`` what it is. Our own presets (``source`` "aekit") follow them; each
``summary`` says what the setup is good at. The seeds train on full MNIST; with no network, ``mnist``
falls back to the bundled 5,000-digit sample (see ``aekit datasets``).
"""

from __future__ import annotations

import copy
from typing import Any

from aekit.errors import ConfigError

DEFAULT_PRESET = "classic-3d-tanh"

# the residual conv network of resconv-16, resconv-64 and auto (get_preset hands out deep copies)
RESCONV_16 = {"model": "resconv", "width": 16, "max_width": 256, "blocks": 1, "latent_dim": 16, "activation": "silu",
              "latent_activation": "linear", "output_activation": "sigmoid", "loss": "mse"}

PRESETS: dict[str, dict[str, Any]] = {
    "classic-3d-tanh": {
        "source": "seeds 000/001 and 003: MorvanZhou PyTorch tutorial 4.4 'AutoEncoder'",
        "summary": "784-128-64-12-3 tanh, linear 3-D code, mirrored decoder with sigmoid output; MSE; "
                   "Adam lr 0.005, batch 64, 10 epochs",
        "data": {"dataset": "mnist", "scale": "unit"},
        "model": {"model": "mlp", "hidden": [128, 64, 12], "latent_dim": 3, "activation": "tanh",
                  "latent_activation": "linear", "output_activation": "sigmoid", "loss": "mse"},
        "train": {"epochs": 10, "batch_size": 64, "lr": 0.005},
    },
    "classic-2d-relu": {
        "source": "seed 003: MorvanZhou Keras tutorial 2-6 'Autoencoder'",
        "summary": "784-128-64-10-2 ReLU, linear 2-D code, decoder ending in tanh, pixels centred to "
                   "[-0.5,0.5]; MSE; Adam lr 0.001, batch 256, 20 epochs",
        "data": {"dataset": "mnist", "scale": "centered"},
        "model": {"model": "mlp", "hidden": [128, 64, 10], "latent_dim": 2, "activation": "relu",
                  "latent_activation": "linear", "output_activation": "tanh", "loss": "mse"},
        "train": {"epochs": 20, "batch_size": 256, "lr": 0.001},
    },
    "classic-128-sigmoid": {
        "source": "seed 003: MorvanZhou TensorFlow autoencoder",
        "summary": "784-256-128 sigmoid encoder, 128-256-784 sigmoid decoder; MSE; "
                   "Adam lr 0.01, batch 256, 5 epochs",
        "data": {"dataset": "mnist", "scale": "unit"},
        "model": {"model": "mlp", "hidden": [256], "latent_dim": 128, "activation": "sigmoid",
                  "latent_activation": "sigmoid", "output_activation": "sigmoid", "loss": "mse"},
        "train": {"epochs": 5, "batch_size": 256, "lr": 0.01},
    },
    "classic-100-sigmoid": {
        "source": "seed 004: textbook chapter 15 'autoencoder' (reports mean train loss 0.0311 after "
                  "epoch 1 and 0.0067 after epoch 10 on full MNIST)",
        "summary": "784-256-128-100 with sigmoid after every layer including the code, mirrored decoder; "
                   "loss 0.5*MSE; Adam lr 0.01, batch 256, 10 epochs",
        "data": {"dataset": "mnist", "scale": "unit"},
        "model": {"model": "mlp", "hidden": [256, 128], "latent_dim": 100, "activation": "sigmoid",
                  "latent_activation": "sigmoid", "output_activation": "sigmoid", "loss": "mse",
                  "loss_scale": 0.5},
        "train": {"epochs": 10, "batch_size": 256, "lr": 0.01},
    },
    "classic-30-bce": {
        "source": "seed 002: LitoNeo pytorch-AutoEncoders AE.py",
        "summary": "one hidden ReLU layer of 30 units as the code, sigmoid output; BCE; "
                   "Adam lr 0.001, batch 100, 20 epochs",
        "data": {"dataset": "mnist", "scale": "unit"},
        "model": {"model": "mlp", "hidden": [], "latent_dim": 30, "activation": "relu",
                  "latent_activation": "relu", "output_activation": "sigmoid", "loss": "bce"},
        "train": {"epochs": 20, "batch_size": 100, "lr": 0.001},
    },
    "conv-16": {
        "source": "aekit",
        "summary": "compact codes that reconstruct well: a conv AE (32, 48 channels, sub-pixel decoder) with a "
                   "16-D code; the conv AE beats PCA's test MSE at every code size on Fashion-MNIST "
                   "(docs/models.md); MSE; Adam lr 0.003, batch 128, 10 epochs",
        "data": {"dataset": "mnist", "scale": "unit"},
        "model": {"model": "conv", "channels": [32, 48], "latent_dim": 16, "activation": "relu",
                  "latent_activation": "linear", "output_activation": "sigmoid", "loss": "mse",
                  "conv_decoder": "subpixel"},
        "train": {"epochs": 10, "batch_size": 128, "lr": 0.003},
    },
    "vae-2d": {
        "source": "aekit",
        "summary": "a 2-D map you can read and walk: the VAE's prior keeps the codes centred in N(0, I), "
                   "so the latent scatter has no empty far-off regions and the plane around the origin "
                   "decodes to images (generate, traverse); 784-512-256-2 ReLU, BCE, beta 1 with 2 warm-up "
                   "epochs; Adam lr 0.001, batch 128, 20 epochs",
        "data": {"dataset": "mnist", "scale": "unit"},
        "model": {"model": "vae", "arch": "mlp", "hidden": [512, 256], "latent_dim": 2, "activation": "relu",
                  "latent_activation": "linear", "output_activation": "sigmoid", "loss": "bce",
                  "beta": 1.0, "kl_warmup_epochs": 2.0},
        "train": {"epochs": 20, "batch_size": 128, "lr": 0.001},
    },
    "denoising-conv": {
        "source": "aekit",
        "summary": "cleans noisy images: trained to map inputs with Gaussian noise (sigma 0.5) to the "
                   "clean images, on the conv body; 32-D code; MSE; Adam lr 0.001, batch 128, 10 epochs",
        "data": {"dataset": "mnist", "scale": "unit"},
        "model": {"model": "denoising", "arch": "conv", "channels": [32, 64], "latent_dim": 32,
                  "activation": "relu", "latent_activation": "linear", "output_activation": "sigmoid",
                  "loss": "mse", "noise": "gaussian", "noise_level": 0.5},
        "train": {"epochs": 10, "batch_size": 128, "lr": 0.001},
    },
    "beta-vae-conv": {
        "source": "aekit",
        "summary": "for traversals (aekit traverse): a conv beta-VAE with beta 4, the pressure towards "
                   "independent code units that Higgins et al. 2017 use to disentangle; 10-D code, BCE, "
                   "5 warm-up epochs; Adam lr 0.001, batch 128, 20 epochs",
        "data": {"dataset": "mnist", "scale": "unit"},
        "model": {"model": "vae", "arch": "conv", "channels": [32, 64], "latent_dim": 10, "activation": "relu",
                  "latent_activation": "linear", "output_activation": "sigmoid", "loss": "bce",
                  "beta": 4.0, "kl_warmup_epochs": 5.0},
        "train": {"epochs": 20, "batch_size": 128, "lr": 0.001},
    },
    "resconv-16": {
        "source": "aekit",
        "summary": "colour photos at any size, 28x28 to 256x256: a residual conv AE whose depth follows the "
                   "image size (stride-2 stages down to about 4x4, group norm, SiLU, nearest-neighbour "
                   "upsampling, no checkerboard), 16-D code; MSE; Adam lr 0.002, batch 64, 10 epochs (more "
                   "for a small set: docs/models.md)",
        "data": {"dataset": "mnist", "scale": "unit"},
        "model": RESCONV_16,
        "train": {"epochs": 10, "batch_size": 64, "lr": 0.002},
    },
    "resconv-64": {
        "source": "aekit",
        "summary": "sharper reconstructions of colour photos at any size: resconv-16's network with a 64-D "
                   "code; MSE; Adam lr 0.002, batch 64, 10 epochs",
        "data": {"dataset": "mnist", "scale": "unit"},
        "model": {**RESCONV_16, "latent_dim": 64},
        "train": {"epochs": 10, "batch_size": 64, "lr": 0.002},
    },
    "pcamlp-16": {
        "source": "aekit",
        "summary": "large sets of small colour photos (CIFAR-10) on a CPU: an MLP (3 layers of 1,024, layer norm, "
                   "SiLU) on the images' top 256 principal components, started at PCA, 16-D code, 3 inference steps "
                   "per code when encoding; MSE; AdamW lr "
                   "0.006, weight decay 0.05, batch 2048, 6,100 steps with warm-up and cosine decay, flips and "
                   "shifts of 3 px, 4% validation, the step compiled (what auto trains on CIFAR-10)",
        "data": {"dataset": "mnist", "scale": "unit"},
        "model": {"model": "pcamlp", "latent_dim": 16, "components": 256, "width": 1024, "depth": 3,
                  "activation": "silu", "latent_activation": "linear", "output_activation": "sigmoid", "loss": "mse",
                  "linear_path": True, "inference_steps": 3},
        "train": {"steps": 6100, "batch_size": 2048, "lr": 0.006, "optimizer": "adamw", "weight_decay": 0.05,
                  "lr_schedule": "cosine", "warmup_steps": 200, "augment": "flips+shifts", "shift": 3,
                  "val_fraction": 0.04, "patience": 50, "compile": True},
    },
    "auto": {
        "source": "aekit",
        "summary": "your own images without tuning: resconv with a 16-D code (started at PCA on a small set: a "
                   "linear path beside it; pcamlp on 20,000 colour photos or more of at most 48x48), and a "
                   "training budget chosen from "
                   "the data when it loads (steps from the data and image size, warm-up and cosine decay from lr "
                   "0.005, AdamW, flips and shifts for colour images seen 30 times or more (such a small set also "
                   "gets four times the steps and 20 inference steps per code), a 10% validation "
                   "split with early stopping), said in one line; the default for a dataset other than the "
                   "seeds' MNIST digits (aekit.training.budget)",
        "data": {"dataset": "mnist", "scale": "unit"},
        "model": RESCONV_16,
        "train": {"epochs": 10, "batch_size": 64, "lr": 0.005, "lr_schedule": "cosine", "optimizer": "adamw"},
    },
}

AUTO_PRESET = "auto"
SEED_DATASETS = ("mnist", "mnist-sample")  # the seeds' digits: the classic default keeps training them


def default_preset(overrides: dict[str, Any]) -> str:
    """The preset when none is named: ``auto`` for a dataset other than the seeds' MNIST digits, unless a
    model is named, or the fully connected stack's layers (``hidden``, which auto's conv model has no use
    for): then the classic default is the base their fields override, as before.
    """
    dataset = overrides.get("dataset")
    if dataset is None or dataset in SEED_DATASETS or overrides.get("model") is not None \
            or overrides.get("hidden") is not None:
        return DEFAULT_PRESET
    return AUTO_PRESET


def list_presets() -> list[str]:
    return list(PRESETS)


def get_preset(name: str) -> dict[str, Any]:
    """The preset as a base for :func:`aekit.config.resolve` (a deep copy)."""
    if name not in PRESETS:
        raise ConfigError(f"preset: unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    entry = PRESETS[name]
    return {"preset": name, **{k: copy.deepcopy(entry[k]) for k in ("data", "model", "train")}}
