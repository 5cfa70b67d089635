"""The one in-memory form every data source is decoded into."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aekit import limits
from aekit.errors import DataError
from aekit.io import printable


@dataclass
class ImageData:
    r"""An image dataset split into train and test, labelled or not.

    Images stay ``uint8`` in ``[0, 255]`` with shape ``(N, C, H, W)``; scaling to
    floats happens on the training device (see :func:`aekit.pixels.to_model`).
    They may be ``np.memmap`` views of a packed cache file rather than arrays in
    memory (image folders, CIFAR-10); both behave as ndarrays.

    Labels are ``int64`` with shape ``(N,)``, or ``None`` for both splits when
    the set is unlabeled (a flat image folder, an ``.npy`` of images); then
    ``class_names`` is empty and :attr:`labeled` is false. Bytes of a class name
    that are not UTF-8 (a folder so named) are kept as backslash escapes, ``\xff``.

    ``skipped`` lists the ``(path, reason)`` of files that could not be read
    and were left out (image folders only).

    ``paths_train`` and ``paths_test`` name each image's file, as a path
    relative to the folder (POSIX ``/``, ``train/`` or ``test/`` included when
    the folder has that split), in the images' order: image folders only. For
    every other source they are ``None``, and an image is known by its split
    and its index in it. A file name that is not valid UTF-8 keeps its bytes
    as surrogate escapes (as :func:`os.listdir` gives it, so ``Path(origin) /
    path`` still opens it); :func:`aekit.io.printable` shows such a name with
    ``\xNN`` escapes, as aekit writes it into CSV files and pictures.
    """

    name: str
    x_train: np.ndarray  # (N, C, H, W) uint8
    y_train: np.ndarray | None  # (N,) int64, or None when unlabeled
    x_test: np.ndarray  # (M, C, H, W) uint8
    y_test: np.ndarray | None  # (M,) int64, or None when unlabeled
    origin: str = ""  # where it resolved: a path, "bundled", a URL
    class_names: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    paths_train: list[str] | None = None  # (N,) file paths relative to the folder; None: not an image folder
    paths_test: list[str] | None = None  # (M,)

    def __post_init__(self) -> None:
        self._check_paths()
        for part in ("x_train", "x_test"):
            arr = getattr(self, part)
            if arr.dtype != np.uint8 or arr.ndim != 4:
                raise ValueError(f"ImageData.{part} must be uint8 (N, C, H, W), got {arr.dtype} {arr.shape}")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(
                f"ImageData: train images {self.x_train.shape[1:]} and test images {self.x_test.shape[1:]} differ"
            )
        if (self.y_train is None) != (self.y_test is None):
            raise ValueError("ImageData: either both splits have labels or neither has")
        # a folder's name that is not UTF-8 gives lone surrogates, which no JSON, picture or page takes
        self.class_names = [printable(name) for name in self.class_names]
        if not self.labeled:
            if self.class_names:
                raise ValueError("ImageData: class_names given for an unlabeled set")
            return
        if len(self.x_train) != len(self.y_train) or len(self.x_test) != len(self.y_test):
            raise ValueError("ImageData: image and label counts differ")
        if not self.class_names:
            n = int(max(self.y_train.max(initial=0), self.y_test.max(initial=0))) + 1
            too_many = limits.CLASSES.exceeded(n)
            if too_many:  # each loader checks its labels; this keeps any other source from 10**12 names
                raise DataError(f"{self.origin or self.name}: labels go up to {n - 1}: {too_many}")
            self.class_names = [str(i) for i in range(n)]

    def _check_paths(self) -> None:
        if (self.paths_train is None) != (self.paths_test is None):
            raise ValueError("ImageData: either both splits have file paths or neither has")
        if self.paths_train is not None and (len(self.paths_train) != len(self.x_train)
                                             or len(self.paths_test) != len(self.x_test)):
            raise ValueError("ImageData: image and file path counts differ")

    @property
    def paths(self) -> dict[str, list[str]] | None:
        """``{"train": paths_train, "test": paths_test}``, or ``None`` when the images have no files."""
        return None if self.paths_train is None else {"train": self.paths_train, "test": self.paths_test}

    @property
    def labeled(self) -> bool:
        """Whether the images have class labels."""
        return self.y_train is not None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)``."""
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        """The number of classes; 0 for an unlabeled set."""
        return len(self.class_names)
