"""A stacked autoencoder: greedy layer-wise pre-training, then fine-tuning of the whole stack.

Bengio et al. 2007, "Greedy layer-wise training of deep networks": with encoder sizes
D -> h1 -> h2 -> ... -> k, layer i is first trained as a one-layer autoencoder of the
layer below (its input is what the already-trained layers 1..i-1 make of the images;
those stay fixed), for ``pretrain_epochs`` epochs each; then the trainer fine-tunes
the whole stack end to end on the reconstruction loss.

The model only describes the stages (``pretraining_stages``); the one training loop
runs them. A stage's optimiser holds only that stage's two layers, which is how the
layers below stay fixed, so nothing is frozen by a flag that fine-tuning would have
to undo: fine-tuning's optimiser holds every parameter.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from aekit.models.base import AutoEncoder, ModelOutput, PretrainingStage
from aekit.models.configs import StackedConfig
from aekit.models.mlp import mlp
from aekit.models.registry import register_model


@register_model("stacked")
class StackedAutoEncoder(AutoEncoder):
    summary = "greedy layer-wise pre-training (an autoencoder per layer), then fine-tuning of the whole stack"
    config_class = StackedConfig

    def __init__(self, config, input_shape):
        super().__init__(config, input_shape)
        sizes = [self.input_dim, *config.hidden, config.latent_dim]
        last = len(sizes) - 2
        # encoder layer i maps sizes[i] -> sizes[i+1]; decoder layer i maps sizes[i+1] -> sizes[i]
        self.encoder_layers = nn.ModuleList(
            mlp(sizes[i:i + 2], "linear", config.latent_activation if i == last else config.activation)
            for i in range(last + 1))
        self.decoder_layers = nn.ModuleList(
            mlp(sizes[i:i + 2][::-1], "linear", config.output_activation if i == 0 else config.activation)
            for i in range(last + 1))

    def encode(self, x: torch.Tensor, depth: int | None = None) -> torch.Tensor:
        """The code, or with ``depth`` the output of the first ``depth`` encoder layers."""
        h = x.flatten(1)  # (B, C, H, W) -> (B, D)
        for layer in self.encoder_layers[:depth]:
            h = layer(h)
        return h

    def decode(self, z: torch.Tensor, depth: int | None = None) -> torch.Tensor:
        """Images from the code, or with ``depth`` from the output of encoder layer ``depth``."""
        depth = len(self.decoder_layers) if depth is None else depth
        for layer in reversed(self.decoder_layers[:depth]):
            z = layer(z)
        return z.view(-1, *self.input_shape)  # (B, D) -> (B, C, H, W)

    def pretraining_stages(self) -> list[PretrainingStage]:
        return [PretrainingStage(f"layer {i + 1}/{len(self.encoder_layers)}", _LayerAutoEncoder(self, i),
                                 self.config.pretrain_epochs)
                for i in range(len(self.encoder_layers))]


class _LayerAutoEncoder(nn.Module):
    """Stage ``i``: encoder layer i and decoder layer i as an autoencoder of layer i's input.

    Layer 1 reconstructs the images with the model's own loss; a higher layer the
    activations below it, with MSE. Its ``recon_x`` is that reconstruction carried down
    through the (already trained) decoder layers to image space, so the trainer's test
    MSE shows what the stack built so far achieves.
    """

    def __init__(self, stack: StackedAutoEncoder, i: int):
        super().__init__()
        self.i = i
        self.encoder = stack.encoder_layers[i]  # registered: the stage trains these two layers
        self.decoder = stack.decoder_layers[i]
        self._stack = [stack]  # in a list, so the layers below are not this module's parameters

    def forward(self, x: torch.Tensor) -> ModelOutput:
        stack = self._stack[0]
        with torch.no_grad():
            h = stack.encode(x, depth=self.i)  # (B, sizes[i]): the fixed layers below
        z = self.encoder(h)
        recon_h = self.decoder(z)
        if self.i == 0:
            recon_loss = stack.reconstruction_loss(recon_h.view_as(x), x)
        else:
            recon_loss = F.mse_loss(recon_h, h)
        with torch.no_grad():
            recon_x = stack.decode(recon_h, depth=self.i)
        return ModelOutput(recon_x, z, recon_loss, terms={"recon": recon_loss})
