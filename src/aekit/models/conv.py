"""A convolutional autoencoder for images of any size and 1 or 3 channels.

``channels=(32, 64)`` on 28x28x1 gives 1->32 (14x14) -> 64 (7x7) -> linear -> code,
and back through transposed convolutions; on 32x32x3, 16x16 and 8x8. The other
variants reach the same body with ``arch="conv"`` (see ``aekit.models.bodies``).
"""

from __future__ import annotations

from aekit.models.bodies import BodyAutoEncoder
from aekit.models.configs import ConvConfig
from aekit.models.registry import register_model


@register_model("conv")
class ConvAutoEncoder(BodyAutoEncoder):
    summary = "stride-2 convolutions down, transposed convolutions up; any HxW, 1 or 3 channels"
    config_class = ConvConfig

    def __init__(self, config, input_shape):
        super().__init__(config, input_shape, arch="conv")
