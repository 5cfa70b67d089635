"""Load a dataset given as a path: which format it is decides the parser."""

from __future__ import annotations

from pathlib import Path

from aekit.data import idx
from aekit.data.csvfile import read_csv
from aekit.data.folders import FolderOptions, NoImagesError, load_folder
from aekit.data.imagedata import ImageData
from aekit.data.npzfile import DEFAULT_TEST_FRACTION, load_npy, load_npz
from aekit.data.split import stratified_split
from aekit.errors import DataError
from aekit.io import Log
from aekit.io import log as log_to_stderr

CSV_TEST_FRACTION = 1 / 6  # MNIST's own 10,000 of 70,000


def load_path(path: Path, options: FolderOptions = FolderOptions(), *, strict: bool = False,
              progress: bool = False, log: Log = log_to_stderr) -> ImageData:
    """Load a directory (of IDX files, CSV files or images), a single CSV file, an ``.npz`` or an ``.npy``.

    A single CSV file has no split of its own; it is split seeded and
    stratified, ``options.test_fraction`` (by default 1/6) for test, the same
    way on every load; so are image folders without ``train/`` and ``test/``
    and single-set ``.npz`` / ``.npy`` files (by default 0.1). The image
    settings in ``options`` apply to image folders only.
    """
    if path.is_dir():
        return _load_dir(path, options, strict, progress, log)
    if not path.is_file():
        raise DataError(f"{path}: path not found")
    suffix = path.suffix.lower()
    if suffix in (".npz", ".npy", ".csv"):
        options.refuse_image_settings(str(path))
    if suffix == ".npz":
        return load_npz(path, test_fraction=options.fraction(DEFAULT_TEST_FRACTION))
    if suffix == ".npy":
        return load_npy(path, test_fraction=options.fraction(DEFAULT_TEST_FRACTION))
    if suffix == ".csv":
        return _load_single_csv(path, options.fraction(CSV_TEST_FRACTION))
    raise DataError(
        f"{path}: unsupported file type {path.suffix or '(no suffix)'}; expected a directory (of images, "
        "IDX files or CSV files), a .csv, an .npz or an .npy"
    )


def _load_dir(directory: Path, options: FolderOptions, strict: bool, progress: bool, log: Log) -> ImageData:
    files = idx.find_files(directory)
    train_csvs, test_csvs = sorted(directory.glob("*train*.csv")), sorted(directory.glob("*test*.csv"))
    if any(files.values()) or train_csvs or test_csvs:
        options.refuse_image_settings(f"{directory} (IDX or CSV files)")
    if all(files.values()):
        return idx.load_files(files, directory.name, str(directory))  # type: ignore[arg-type]
    if any(files.values()):
        raise DataError(idx.missing_message(directory, files))
    if not train_csvs and not test_csvs:
        try:
            return load_folder(directory, options, strict=strict, progress=progress, log=log)
        except NoImagesError:
            raise DataError(
                f"{directory}: no dataset files: expected images (in it or its subfolders), the four IDX files "
                f"({', '.join(idx.STANDARD_NAMES.values())}, optionally .gz), or a *train*.csv and a *test*.csv"
            ) from None
    for part, found in (("train", train_csvs), ("test", test_csvs)):
        if len(found) != 1:
            names = ", ".join(p.name for p in found) or "none"
            raise DataError(f"{directory}: expected exactly one *{part}*.csv, found {names}")
    return _load_csv_pair(directory, train_csvs[0], test_csvs[0])


def _load_csv_pair(directory: Path, train_csv: Path, test_csv: Path) -> ImageData:
    x_train, y_train = read_csv(train_csv)
    x_test, y_test = read_csv(test_csv)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"{test_csv}: wrong image size: {x_test.shape[-2]}x{x_test.shape[-1]} images, "
            f"but {train_csv.name} has {x_train.shape[-2]}x{x_train.shape[-1]}"
        )
    return ImageData(directory.name, x_train, y_train, x_test, y_test, origin=str(directory))


def _load_single_csv(path: Path, test_fraction: float) -> ImageData:
    x, y = read_csv(path)
    train_idx, test_idx = stratified_split(y, test_fraction)
    return ImageData(path.stem, x[train_idx], y[train_idx], x[test_idx], y[test_idx], origin=str(path))

