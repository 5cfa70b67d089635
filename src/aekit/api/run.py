"""The :class:`Run` a trained model comes in, and what it draws: samples, interpolations, traversals."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from aekit.config import RunConfig
from aekit.errors import AekitError, ConfigError, DataError, InputError
from aekit.io import Log
from aekit.rundir import RunDir

MAX_DRAWN = 100_000  # images one sample, interpolate or traverse call may make: about 300 MB of 28x28 floats


def _whole(value, name: str) -> int:
    """``value`` as an int; an :class:`~aekit.errors.InputError` naming ``name`` unless it is an integer
    (``bool`` is not one here, and neither is ``2.0``).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name}: must be an integer, got {value!r}", params=(name,))
    return int(value)


@dataclass
class Run:
    """A trained model with its run directory, config and metrics.

    ``run.model.encode(x)`` / ``run.model.decode(z)`` work on float tensors in the
    model's pixel range; :meth:`encode`, :meth:`reconstruct` and :meth:`decode` take
    and give numpy arrays, with images as uint8.
    """

    path: Path
    config: RunConfig
    model: Any
    metrics: list[dict] = field(default_factory=list)
    data_origin: str = ""
    weights: str = "checkpoint"  # the saved weights it holds: checkpoint (the last) or best

    @property
    def dir(self) -> RunDir:
        return RunDir(self.path)

    @property
    def device(self):
        return next(self.model.parameters()).device

    @property
    def scale(self) -> str:
        """The pixel range the model works in (``unit`` or ``centered``; see :mod:`aekit.pixels`)."""
        return self.config.data.scale

    def encode(self, images, batch_size: int = 1000) -> np.ndarray:
        """Flat codes ``(N, code_size)`` float32 of uint8 images ``(N, C, H, W)`` (``AutoEncoder.flat_codes``)."""
        return self.model.encode_images(images, self.scale, batch_size)

    def reconstruct(self, images, batch_size: int = 1000) -> np.ndarray:
        """Reconstructions ``(N, C, H, W)`` float32 in the model's pixel range."""
        return self.model.reconstruct_images(images, self.scale, batch_size)

    def decode(self, z, batch_size: int = 1000) -> np.ndarray:
        """Images ``(N, C, H, W)`` float32 in the model's pixel range, decoded from flat codes ``(N, code_size)``."""
        return self.model.decode_codes(z, batch_size)

    def load_data(self, log: Log | None = None, dataset: str | None = None, data_dir: str | None = None):
        """The run's own dataset, loaded with the run's data settings (size, colour, split...), or ``dataset``;
        its images must have the shape the model takes.

        Another image folder given as ``dataset`` is brought to the run's size and colour the same way.
        An image folder's :class:`~aekit.data.ImageData` names each image's file in ``paths_train`` and
        ``paths_test`` (relative to the folder); other sources have ``None`` there.
        """
        from aekit.data import load_dataset

        name = dataset or self.config.data.dataset
        own = name == self.config.data.dataset or Path(name).expanduser().is_dir()
        data = load_dataset(name, data_dir or self.config.data.data_dir, log=log,
                            **(self.config.data.loader_settings() if own else {}))
        if tuple(data.image_shape) != tuple(self.model.input_shape):
            raise DataError(f"{name}: images are {'x'.join(map(str, data.image_shape))} but the run's model "
                            f"takes {'x'.join(map(str, self.model.input_shape))}")
        return data

    # ----------------------------------------------------------------- drawing from the model

    def test_images(self, indices: dict[str, int], data=None) -> np.ndarray:
        """The test images named by ``{"a": 3, ...}`` (parameter: index) as uint8 ``(N, C, H, W)``; a bad index
        names its parameter.
        """
        data = data if data is not None else self.load_data()
        n = len(data.x_test)
        for name, i in indices.items():
            if not 0 <= i < n:
                raise ConfigError(f"{name} {i}: {data.name} has test images 0 to {n - 1}", params=(name,))
        return data.x_test[list(indices.values())]

    def sample(self, n: int, seed: int = 0, from_codes: bool = False, data=None) -> np.ndarray:
        """``n`` new images ``(n, C, H, W)`` in the model's pixel range.

        From the model's prior, or with ``from_codes`` from a Gaussian fitted to the codes
        of the training images (the only way for a model without a prior).
        """
        import torch

        from aekit.models import get_model_class, list_models

        n, seed = _whole(n, "n"), _whole(seed, "seed")
        if not 1 <= n <= MAX_DRAWN:
            raise ConfigError(f"n: must be from 1 to {MAX_DRAWN}, got {n}", params=("n",))
        if not 0 <= seed < 2 ** 63:
            raise ConfigError(f"seed: must be from 0 to 2**63 - 1, got {seed}", params=("seed",))
        generator = torch.Generator().manual_seed(seed)
        if from_codes:
            data = data if data is not None else self.load_data()
            codes = torch.from_numpy(self.encode(data.x_train)).to(self.device)
            images = self.model.sample_from_codes(codes, n, generator)
        elif self.model.is_generative:
            images = self.model.sample(n, generator)
        else:
            with_prior = ", ".join(m for m in list_models() if get_model_class(m).is_generative)
            raise AekitError(f"model '{self.model.name}' has no prior to sample from (models with one: "
                             f"{with_prior}): its codes follow no known distribution; use from_codes to "
                             "sample a Gaussian fitted to the codes of its training images", params=("from_codes",))
        return images.float().cpu().numpy()

    def interpolate(self, a: int, b: int, steps: int = 10, data=None) -> np.ndarray:
        """Test image ``a``, ``steps`` images decoded on the line between the codes of ``a`` and ``b``
        (ends included), then test image ``b``: ``(steps + 2, C, H, W)`` in the model's pixel range.
        """
        import torch

        from aekit.pixels import to_model

        a, b, steps = _whole(a, "a"), _whole(b, "b"), _whole(steps, "steps")
        _check_steps(steps)
        x = to_model(self.test_images({"a": a, "b": b}, data), self.scale).to(self.device)  # (2, C, H, W)
        strip = self.model.interpolate(x[0], x[1], steps)  # (steps, C, H, W)
        return torch.cat([x[:1], strip, x[1:]]).float().cpu().numpy()

    def traverse(self, image: int = 0, dims: Sequence[int] | None = None, steps: int = 9,
                 value_range: tuple[float, float] | None = None, data=None) -> np.ndarray:
        """One row of ``steps`` images per code unit in ``dims`` (default: all): the code of test image
        ``image`` with that unit swept over ``value_range``, the others kept.

        The default range is -3..3 (the prior's +-3 standard deviations) for a model with a
        prior, else the 1st to 99th percentile of that unit over the test codes. Returns
        ``(len(dims) * steps, C, H, W)`` in the model's pixel range.
        """
        import torch

        from aekit.pixels import to_model

        image, steps = _whole(image, "image"), _whole(steps, "steps")
        _check_steps(steps)
        k = self.model.code_size  # units of the flat code (a grid code's every cell)
        dims = _code_units(dims, k)
        if len(dims) * steps > MAX_DRAWN:
            raise ConfigError(f"steps: {len(dims)} unit(s) x {steps} steps is over {MAX_DRAWN} images",
                              params=("steps",))
        value_range = _value_range(value_range)
        data = data if data is not None else self.load_data()
        if value_range is None and self.model.is_generative:
            value_range = (-3.0, 3.0)
        if value_range is None:
            codes = torch.from_numpy(self.encode(data.x_test))  # (N, k)
            bounds = torch.quantile(codes[:, dims], torch.tensor([0.01, 0.99]), dim=0).T.tolist()  # (len(dims), 2)
        else:
            bounds = [value_range] * len(dims)
        x = to_model(self.test_images({"image": image}, data), self.scale).to(self.device)
        with torch.no_grad():
            z = self.model.flat_codes(self.model.encode(x))[0]  # (k,)
            rows = [self.model.traverse(z, d, torch.linspace(lo, hi, steps)) for d, (lo, hi) in zip(dims, bounds)]
        return torch.cat(rows).float().cpu().numpy()


def _check_steps(steps: int) -> None:
    if not 2 <= steps <= MAX_DRAWN:
        raise ConfigError(f"steps: must be from 2 to {MAX_DRAWN}, got {steps}", params=("steps",))


def _code_units(dims, k: int) -> list[int]:
    """``dims`` (``None``: every unit; one integer or a sequence of them) as a checked list of code units."""
    if dims is None:
        return list(range(k))
    if isinstance(dims, numbers.Integral) and not isinstance(dims, bool):
        dims = [dims]
    elif isinstance(dims, (str, bytes)) or not hasattr(dims, "__iter__"):
        raise InputError(f"dims: expected a code unit or a list of them (integers), got {dims!r}", params=("dims",))
    units = [_whole(d, "dims") for d in dims]
    if not units:
        raise InputError("dims: no code units given; None traverses every unit", params=("dims",))
    for d in units:
        if not 0 <= d < k:
            raise ConfigError(f"dims {d}: the code has units 0 to {k - 1}", params=("dims",))
    return units


def _value_range(value_range) -> tuple[float, float] | None:
    """``None``, or ``(lo, hi)`` as two finite floats; an InputError naming ``value_range`` otherwise."""
    if value_range is None:
        return None
    pair = tuple(value_range) if hasattr(value_range, "__iter__") and not isinstance(value_range, str) else ()
    if len(pair) != 2 or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in pair) \
            or not all(math.isfinite(v) for v in pair):
        raise InputError(f"value_range: expected two finite numbers (lo, hi), got {value_range!r}",
                         params=("value_range",))
    return float(pair[0]), float(pair[1])
