"""The entry points: load a dataset by name or path, list and describe the named ones."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from aekit.data.files import load_path
from aekit.data.folders import FolderOptions, parse_image_size
from aekit.data.imagedata import ImageData
from aekit.data.sources import SOURCES
from aekit.errors import DataError
from aekit.io import Log
from aekit.io import log as log_to_stderr


def load_dataset(
    spec: str,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    progress: bool | None = None,
    log: Log | None = None,
    image_size: int | str | tuple[int, int] | None = None,
    resize: str = "crop",
    color_mode: str = "auto",
    alpha_background: str = "white",
    test_fraction: float | None = None,
    strict: bool = False,
) -> ImageData:
    """Load a dataset by name or path.

    Parameters
    ----------
    spec : str
        A named source (see :func:`list_sources`) or a path: a folder of images
        (see below), a directory of IDX files (gzip'd or not) or of
        ``*train*.csv`` / ``*test*.csv``, a single CSV, an ``.npz`` (with
        ``x_train``, ``y_train``, ``x_test``, ``y_test``, or ``x`` and
        optionally ``y``) or an ``.npy`` of images. A name wins over a
        same-named directory; write ``./mnist`` for the directory.
    data_dir : path, optional
        Where to look first for a named source's files.
    download : bool
        Whether a named source missing locally may be downloaded.
    progress : bool, optional
        Show progress bars (downloads, packing an image folder); by default
        only when stderr is a terminal.
    log : callable, optional
        Receives one-line notices (a download finished, a fallback was used,
        files skipped); by default they are printed to stderr.
    image_size : int or str or (width, height), optional
        Image folders: the size every image is brought to, ``64`` or
        ``"64x48"`` (WIDTHxHEIGHT). By default the folder's most common size.
    resize : {"crop", "stretch", "pad"}
        Image folders: how an image of another shape is fitted. ``"crop"``
        scales the shorter side to fit and cuts the centre; ``"stretch"``
        scales each side on its own; ``"pad"`` fits the whole image inside
        and fills the rest with ``alpha_background``.
    color_mode : {"auto", "grayscale", "rgb", "rgba"}
        Image folders: 1, 3 or 4 channels (``"rgba"``: rgb composited onto
        ``alpha_background``, then the alpha); ``"auto"`` is rgb when any
        image is stored in colour.
    alpha_background : {"white", "black"}
        Image folders: what transparent pixels (and padding) become.
    test_fraction : float in [0, 1), optional
        The test share for data without a split of its own: image folders
        without ``train/`` and ``test/`` and single-set ``.npz`` / ``.npy``
        (default 0.1), a single CSV (default 1/6). Seeded, and stratified
        when labelled. Ignored where the data has its own split.
    strict : bool
        Image folders: stop at the first file that cannot be read instead
        of skipping it (skipped files are listed in ``ImageData.skipped``).

    Returns
    -------
    ImageData
        uint8 images ``(N, C, H, W)`` and int64 labels (``None`` when
        unlabeled). Image folders and CIFAR-10 come back as memory maps of
        their packed cache.

    Raises
    ------
    DataError
        The name is unknown, the path is missing, or a file is malformed; the
        message names the file and the problem.
    ConfigError
        A setting is out of range, or is an image setting given for data
        that is not an image folder.

    Examples
    --------
    >>> data = load_dataset("mnist-sample")
    >>> data.x_train.shape, data.x_test.shape
    ((4000, 1, 28, 28), (1000, 1, 28, 28))
    """
    log = log or log_to_stderr
    if progress is None:
        progress = sys.stderr.isatty()
    path = Path(spec).expanduser()
    # "MNIST" finds mnist too, unless a file or directory of that name is there.
    options = FolderOptions(parse_image_size(image_size), resize, color_mode, alpha_background, test_fraction)
    source = SOURCES.get(spec) or (None if path.exists() else SOURCES.get(spec.lower()))
    if source is not None:
        options.refuse_image_settings(spec)
        return source.load(data_dir, download=download, progress=progress, log=log)
    if path.exists():
        return load_path(path, options, strict=strict, progress=progress, log=log)
    if os.sep in spec or "/" in spec or path.suffix:
        raise DataError(f"{spec}: path not found")
    raise DataError(f"unknown dataset {spec!r}: not a named source ({', '.join(list_sources())}) and not a path")


def list_sources() -> list[str]:
    """The named sources, in the order ``aekit datasets`` shows them."""
    return list(SOURCES)


def describe_sources(data_dir: str | os.PathLike | None = None) -> list[dict]:
    """One dict per named source: ``name``, ``description``, ``status`` and ``where``.

    ``status`` is ``"ok"`` (``where`` is the path it loads from), ``"missing"``
    (``where`` says how to get it) or ``"incomplete"`` (``where`` names the
    missing files). Nothing is downloaded and no file is parsed.
    """
    return [source.describe(data_dir) for source in SOURCES.values()]
