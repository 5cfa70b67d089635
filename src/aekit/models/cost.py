"""What a model's arithmetic costs, and the measured rule for when bf16 pays (``AutoEncoder.suits_bf16``).

bf16 autocast suits a model when it does enough arithmetic per image for bf16 to pay: at
least :data:`AUTO_BF16_MIN_MACS` multiply-adds (below that the casts often cost more than
the faster products save, and the seed presets, all below it, keep their tutorials'
figures), and :data:`BF16_HOLDS_QUALITY` records that every preset of that size kept its
test loss within 1% of fp32's (a mean over 3 seeds). ``benchmarks/precision.py`` prints
the evidence: every preset's test loss and seconds per epoch in both precisions.
"""

from __future__ import annotations

import torch

# Set from the evidence of benchmarks/precision.py (every preset, 3 seeds each, bf16 against fp32): its
# second verdict, on the presets of at least AUTO_BF16_MIN_MACS multiply-adds per image.
BF16_HOLDS_QUALITY = True
AUTO_BF16_MIN_MACS = 1_000_000  # per image, forward: between the MLP presets' (< 0.5 M) and vae-2d's (1.1 M)


def multiply_adds(model: torch.nn.Module) -> int:
    """Multiply-adds of one image's forward pass through the model's linear and convolution layers
    (``model.input_shape`` is ``(C, H, W)``).
    """
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Linear):
            total += module.in_features * module.out_features
        elif isinstance(module, torch.nn.Conv2d):
            total += output[0].numel() * module.in_channels * module.weight[0, 0].numel() // module.groups
        elif isinstance(module, torch.nn.ConvTranspose2d):
            total += inputs[0][0].numel() * module.out_channels * module.weight[0, 0].numel() // module.groups

    layers = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, layers)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            device = next(model.parameters()).device
            model(torch.zeros(1, *model.input_shape, device=device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return total


def bf16_pays(model: torch.nn.Module) -> bool:
    """The measured rule: enough multiply-adds per image, and bf16 held the quality of presets that size."""
    return BF16_HOLDS_QUALITY and multiply_adds(model) >= AUTO_BF16_MIN_MACS
