"""The one in-memory form every data source is decoded into."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ImageData:
    """A labelled image dataset split into train and test.

    Images stay ``uint8`` in ``[0, 255]`` with shape ``(N, C, H, W)``; scaling to
    floats happens on the training device (see :func:`aekit.pixels.to_model`).
    Labels are ``int64`` with shape ``(N,)``.
    """

    name: str
    x_train: np.ndarray  # (N, C, H, W) uint8
    y_train: np.ndarray  # (N,) int64
    x_test: np.ndarray  # (M, C, H, W) uint8
    y_test: np.ndarray  # (M,) int64
    origin: str = ""  # where it resolved: a path, "bundled", a URL
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for part in ("x_train", "x_test"):
            arr = getattr(self, part)
            if arr.dtype != np.uint8 or arr.ndim != 4:
                raise ValueError(f"ImageData.{part} must be uint8 (N, C, H, W), got {arr.dtype} {arr.shape}")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(
                f"ImageData: train images {self.x_train.shape[1:]} and test images {self.x_test.shape[1:]} differ"
            )
        if len(self.x_train) != len(self.y_train) or len(self.x_test) != len(self.y_test):
            raise ValueError("ImageData: image and label counts differ")
        if not self.class_names:
            n = int(max(self.y_train.max(initial=0), self.y_test.max(initial=0))) + 1
            self.class_names = [str(i) for i in range(n)]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)``."""
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)
