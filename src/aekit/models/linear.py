"""A linear autoencoder: no activations anywhere, so it learns PCA's subspace.

With squared error, a linear autoencoder with a k-unit code reaches its minimum when
the decoder spans the top-k principal subspace of the (centred) data, the subspace
PCA finds (Baldi & Hornik 1989, "Neural networks and principal component analysis:
learning from examples without local minima"). Its weights need not be orthonormal
or ordered like PCA's components, but its reconstructions, and so its error, match.
The biases learn the mean PCA subtracts.
"""

from __future__ import annotations

from aekit.models.configs import LinearConfig
from aekit.models.mlp import MLPAutoEncoder
from aekit.models.registry import register_model


@register_model("linear")
class LinearAutoEncoder(MLPAutoEncoder):
    summary = "no activations (the activation fields are ignored): learns PCA's subspace; MSE only"
    config_class = LinearConfig

    def activations(self, config) -> tuple[str, str, str]:
        return "linear", "linear", "linear"
