"""A folder of images as a dataset, decoded once into a packed cache.

The first load walks the folder (see :mod:`aekit.data.folder_layout` for how
labels and the split are read from it), decodes every image on all cores into
``default_cache_dir()/folders/<entry>/`` (see :mod:`aekit.data.packed`) and
maps the result; later loads of the unchanged folder only walk it, hash the
listing and map the file again. The entry's name is a hash of

- the folder's absolute path and every decode and split setting, and
- each image file's relative path, size, modification time and permissions,

so changing, adding or removing an image (or a setting) builds a new entry;
the entry it replaces is then removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from aekit import limits
from aekit.config import COLOR_MODES, parse_image_size  # noqa: F401 - parse_image_size re-exported
from aekit.data import packed
from aekit.data.cache import default_cache_dir
from aekit.data.decode import BACKGROUNDS, RESIZE_MODES, Decoding, probe
from aekit.data.folder_layout import Layout, scan
from aekit.data.imagedata import ImageData
from aekit.data.packing import decode_files, default_workers, unreadable
from aekit.data.split import SPLIT_SEED, stratified_split
from aekit.errors import ConfigError, DataError
from aekit.io import Log, printable
from aekit.io import log as log_to_stderr

DEFAULT_TEST_FRACTION = 0.1
_KEY_VERSION = 1  # bump when the packed bytes for the same input would change
_SHOWN = 3  # skipped files named in the summary line
_SAMPLE = 512  # headers read to guess a folder's size and colour before decoding
_FALLBACK_SIZE = (32, 32)  # the guess when no sampled header could be read; the settled size replaces it


class NoImagesError(DataError):
    """The folder holds no image files at all."""


@dataclass(frozen=True)
class FolderOptions:
    """How a folder is decoded and split; every field is part of the cache key.

    Parameters
    ----------
    image_size : (width, height), optional
        ``None``: the folder's most common size.
    resize : {"crop", "stretch", "pad"}
    color_mode : {"auto", "grayscale", "rgb"}
        ``"auto"``: rgb when any image is stored in colour, else grayscale.
    alpha_background : {"white", "black"}
    test_fraction : float in [0, 1), optional
        Used only where the data has no split of its own; ``None``: the
        format's default (:data:`DEFAULT_TEST_FRACTION` for folders).
    """

    image_size: tuple[int, int] | None = None
    resize: str = "crop"
    color_mode: str = "auto"
    alpha_background: str = "white"
    test_fraction: float | None = None

    def __post_init__(self) -> None:
        for name, allowed in (("resize", RESIZE_MODES), ("color_mode", COLOR_MODES),
                              ("alpha_background", tuple(BACKGROUNDS))):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name}: {getattr(self, name)!r} is not allowed; choose one of: "
                                  f"{', '.join(allowed)}")
        if self.test_fraction is not None:
            check_test_fraction(self.test_fraction)

    def fraction(self, default: float) -> float:
        """``test_fraction``, or ``default`` when it was not given."""
        return default if self.test_fraction is None else self.test_fraction

    def image_settings_given(self) -> list[str]:
        """The names of the image settings that differ from their defaults (test_fraction aside)."""
        default = FolderOptions()
        return [name for name in ("image_size", "resize", "color_mode", "alpha_background")
                if getattr(self, name) != getattr(default, name)]

    def refuse_image_settings(self, what: str) -> None:
        """Raise when image settings were given for ``what``, a source they do not apply to."""
        given = self.image_settings_given()
        if given:
            raise ConfigError(f"{given[0]}: applies to image folders only, and {what} is not one")


def check_test_fraction(value: float) -> None:
    """Raise unless ``0 <= value < 1``."""
    if not (isinstance(value, (int, float)) and 0 <= value < 1):
        raise ConfigError(f"test_fraction: {value!r} is out of range; it must be at least 0 and below 1")


def load_folder(root: str | Path, options: FolderOptions = FolderOptions(), *, strict: bool = False,
                progress: bool = False, log: Log = log_to_stderr, workers: int | None = None) -> ImageData:
    """Load an image folder, from its packed cache when the folder is unchanged.

    Parameters
    ----------
    root : path of the folder
    options : FolderOptions
    strict : bool
        Stop at the first file that cannot be read instead of skipping it.
    progress : bool
        Show a progress bar while packing.
    log : callable
        Receives one-line notices: the packing rate, files skipped, images resized.
    workers : int, optional
        Decoding processes; all cores by default.

    Returns
    -------
    ImageData
        ``x_train``/``x_test`` are ``(N, C, H, W)`` uint8 memory maps of the
        packed file; labels as the folder gives them (``None`` when flat);
        ``skipped`` lists ``(path, reason)`` of the files left out.
    """
    options = replace(options, test_fraction=options.fraction(DEFAULT_TEST_FRACTION))  # one key either way
    layout = scan(Path(root))
    if not layout.files:
        raise NoImagesError(f"{root}: no images in it or its subfolders")
    entry = _entry(layout, options)
    start = time.perf_counter()
    packer = _Packer(layout, options, strict, progress, log, workers or default_workers())
    data, built = packed.read_or_build(entry, packer.pack, replaces=entry.name.rsplit("-", 1)[0] + "-")
    if built:
        seconds = time.perf_counter() - start
        log(f"{layout.root}: packed {len(data.x_train) + len(data.x_test):,} images of "
            f"{'x'.join(map(str, data.image_shape))} in {seconds:.1f} s ({len(layout.files) / seconds:,.0f} "
            f"images/s) into {entry}")
    elif strict and data.skipped:
        raise unreadable(*data.skipped[0])
    if data.skipped:
        log(_skipped_line(layout.root, data))
    return data


def _entry(layout: Layout, options: FolderOptions) -> Path:
    pixels = limits.IMAGE_PIXELS.value()  # a raised limit re-packs the files it skipped; the default keeps old keys
    extra = [] if pixels == limits.IMAGE_PIXELS.default else [pixels]
    settings = json.dumps([_KEY_VERSION, str(layout.root.resolve()), asdict(options), SPLIT_SEED, *extra])
    listing = "\n".join(f"{rel}\t{s}\t{m}\t{mode}" for rel, (s, m, mode) in zip(layout.files, layout.stats))
    name = re.sub(r"[^\w.]+", "_", layout.root.resolve().name)[:40] or "folder"
    return default_cache_dir() / "folders" / f"{name}-{_digest(settings)}-{_digest(listing)}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]


@dataclass
class _Packer:
    """Decodes one folder's images into a packed entry being built.

    Without both a size and a colour mode given, the set's own are chosen from
    every file's header. Reading the headers first would cost a pass over the
    files, so the decoding starts from a guess made on a sample of them, and
    the files' headers come back with their pixels; only when all the headers
    settle on another size or colour than the guess is the folder decoded again.
    """

    layout: Layout
    options: FolderOptions
    strict: bool
    progress: bool
    log: Log
    workers: int

    def pack(self, directory: Path) -> None:
        layout = self.layout
        for note in layout.notes:
            self.log(note)
        paths = [os.path.join(layout.root, rel) for rel in layout.files]  # not pathlib: a cost per file
        order, n_train = _order(layout, self.options.test_fraction)
        slots = np.empty(len(order), np.int64)
        slots[order] = np.arange(len(order))  # file i goes to slot slots[i]: training files first
        decoding = self._guess(paths)
        writer, headers, failures = self._decode(directory, paths, slots, decoding)
        settled = self._settle(paths, headers, failures)
        if settled != decoding:
            writer, headers, failures = self._decode(directory, paths, slots, settled)
        kept_slots = writer.drop(sorted(slots[i] for i, _ in failures))
        kept, n_train = order[kept_slots], int((kept_slots < n_train).sum())
        if n_train == 0:
            raise DataError(f"{layout.root}: no training images: all {len(kept)} readable images are in the test "
                            "split; lower test_fraction or add images")
        writer.finish(
            name=layout.root.resolve().name, origin=str(layout.root), n_train=n_train,
            labels=None if layout.labels is None else layout.labels[kept], class_names=layout.class_names,
            skipped=[(paths[i], reason) for i, reason in failures],
            settings={**asdict(settled), "files": [layout.files[i] for i in kept]},
        )

    def _decode(self, directory: Path, paths: list[str], slots: np.ndarray, decoding: Decoding):
        writer = packed.Writer(directory, len(paths), (decoding.channels, *decoding.size[::-1]))
        headers, failures = decode_files(paths, slots, str(writer.path), decoding, workers=self.workers,
                                         progress=self.progress, strict=self.strict,
                                         desc=f"packing {self.layout.root.name}")
        return writer, headers, failures

    def _guess(self, paths: list[str]) -> Decoding:
        """The decoding the sample's headers suggest (exact when size and colour mode are both given)."""
        if self.options.image_size and self.options.color_mode != "auto":
            return self._choose([])
        headers = []
        for path in paths[::max(1, len(paths) // _SAMPLE)][:_SAMPLE]:
            try:
                headers.append(probe(path))
            except Exception:  # noqa: BLE001 - a broken file: the decoding pass will list it
                pass
        return self._choose(headers)

    def _settle(self, paths: list[str], headers: list, failures: list[tuple[int, str]]) -> Decoding:
        """The decoding all the headers call for; a note when images of other sizes are resized."""
        readable = [h for h in headers if h is not None]
        if not readable:
            i, reason = failures[0]
            raise DataError(f"{self.layout.root}: none of its {len(paths)} image files could be read "
                            f"(first: {paths[i]}: {reason})")
        decoding = self._choose(readable)
        sizes = Counter(h[:2] for h in readable)
        if self.options.image_size is None and len(sizes) > 1:
            (w, h) = decoding.size
            self.log(f"{self.layout.root}: {len(readable) - sizes[w, h]} of {len(readable)} images are not {w}x{h}, "
                     f"the most common size, and are resized to it ({self.options.resize}); "
                     "set image_size to choose the size")
        return decoding

    def _choose(self, headers: list) -> Decoding:
        options = self.options
        sizes = Counter(h[:2] for h in headers)
        size = options.image_size or (sizes.most_common(1)[0][0] if sizes else _FALLBACK_SIZE)
        channels = {"grayscale": 1, "rgb": 3}.get(options.color_mode) or (3 if any(h[2] for h in headers) else 1)
        return Decoding(size, channels, options.resize, BACKGROUNDS[options.alpha_background])


def _order(layout: Layout, test_fraction: float) -> tuple[np.ndarray, int]:
    """File indices in packed order, training files first, and how many are training files.

    Each split comes shuffled (seeded), as :func:`stratified_split` gives it,
    so the first test images are not all of one class.
    """
    if layout.test is not None:
        rng = np.random.default_rng(SPLIT_SEED)
        files = np.arange(len(layout.files))
        train, test = rng.permutation(files[~layout.test]), rng.permutation(files[layout.test])
    else:
        labels = layout.labels if layout.labels is not None else np.zeros(len(layout.files), np.int64)
        train, test = stratified_split(labels, test_fraction)
    return np.concatenate([train, test]).astype(np.int64), len(train)


def _skipped_line(root: Path, data: ImageData) -> str:
    n = len(data.skipped)
    shown = ", ".join(f"{printable(str(Path(path).relative_to(root)))} ({reason})"
                      for path, reason in data.skipped[:_SHOWN])
    more = f" and {n - _SHOWN} more" if n > _SHOWN else ""
    total = n + len(data.x_train) + len(data.x_test)
    return f"{root}: skipped {n} of {total} image files that could not be read: {shown}{more}"
