"""Helpers shared by the commands that draw pictures from a trained run (generate, interpolate, traverse)."""

from __future__ import annotations

WHICH_HELP = "weights to use: checkpoint (the last epoch) or best (lowest test loss) [default: checkpoint]"


def add_run_arguments(p) -> None:
    p.add_argument("run", metavar="RUN", help="a run directory written by 'aekit train'")
    p.add_argument("--which", default="checkpoint", choices=("checkpoint", "best"), help=WHICH_HELP)
    p.add_argument("--out", default=None, metavar="FILE", help="PNG to write [default: a file in RUN]")


def test_images(run, indices: dict[str, int]):
    """The test images named by ``{"--a": 3, ...}``, scaled for the model: ``(N, C, H, W)``."""
    import torch

    from aekit.data import scale_images
    from aekit.errors import ConfigError

    data = run.load_data()
    n = len(data.x_test)
    for flag, i in indices.items():
        if not 0 <= i < n:
            raise ConfigError(f"{flag} {i}: {run.config.data.dataset} has test images 0 to {n - 1}")
    x = torch.from_numpy(data.x_test[list(indices.values())]).to(run.device)
    return scale_images(x, run.config.data.scale)
