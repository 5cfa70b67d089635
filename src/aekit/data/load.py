"""The entry points: load a dataset by name or path, list and describe the named ones."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from aekit.data.files import load_path
from aekit.data.imagedata import ImageData
from aekit.data.sources import SOURCES, Log, log_to_stderr
from aekit.errors import DataError


def load_dataset(
    spec: str,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    progress: bool | None = None,
    log: Log | None = None,
) -> ImageData:
    """Load a dataset by name or path.

    Parameters
    ----------
    spec : str
        A named source (see :func:`list_sources`) or a path: a directory of IDX
        files (gzip'd or not) or of ``*train*.csv`` / ``*test*.csv``, a single
        CSV (split 5/6 train, 1/6 test, seeded and stratified), or an ``.npz``
        with ``x_train``, ``y_train``, ``x_test``, ``y_test``. A name wins over
        a same-named directory; write ``./mnist`` for the directory.
    data_dir : path, optional
        Where to look first for a named source's files.
    download : bool
        Whether a named source missing locally may be downloaded.
    progress : bool, optional
        Show a download progress bar; by default only when stderr is a terminal.
    log : callable, optional
        Receives one-line notices (a download finished, a fallback was used);
        by default they are printed to stderr.

    Returns
    -------
    ImageData
        uint8 images ``(N, C, H, W)`` and int64 labels.

    Raises
    ------
    DataError
        The name is unknown, the path is missing, or a file is malformed; the
        message names the file and the problem.

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
    source = SOURCES.get(spec) or (None if path.exists() else SOURCES.get(spec.lower()))
    if source is not None:
        return source.load(data_dir, download=download, progress=progress, log=log)
    if path.exists():
        return load_path(path)
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
