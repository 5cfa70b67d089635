"""A folder of images as a dataset, decoded once into a packed cache.

The first load walks the folder (see :mod:`aekit.data.folder_layout` for how
labels and the split are read from it), decodes every image on all cores into
``default_cache_dir()/folders/<entry>/`` (see :mod:`aekit.data.packed`) and
maps the result; later loads of the unchanged folder only walk it, hash the
listing and map the file again. The cache keeps one entry per folder, named
``<folder name>-<hash of its absolute path>-<hash of>``

- every decode and split setting, and
- each image file's relative path, size, modification time and permissions.

A load whose settings come to the same images as the entry's (no
``image_size`` given, and the entry was packed at the folder's most common
size) maps that entry. Anything else, a changed, added or removed image or a
setting that changes the images, builds a new entry, and the folder's entry it
replaces is then removed. An entry packed by an aekit from before this naming
is still mapped when its key matches, until the folder's next build removes it.
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
_KEY_VERSION = 2  # bump when the packed bytes (or the key's fields) for the same input would change
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
    color_mode : {"auto", "grayscale", "rgb", "rgba"}
        ``"auto"``: rgb when any image is stored in colour, else grayscale;
        ``"rgba"``: rgb composited onto ``alpha_background``, then the alpha.
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
    folder, listing = str(layout.root.resolve()), _listing(layout)
    entry = _entry(folder, options, listing)
    start = time.perf_counter()
    data, built = _reuse(entry, options, listing), False
    if data is None:
        data = packed.read(_entry_before_names(folder, options, listing))
    if data is None:
        packer = _Packer(layout, options, listing, strict, progress, log, workers or default_workers())
        data, built = packed.read_or_build(entry, packer.pack, replaces=lambda old: _packed_from(old, folder))
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


def _listing(layout: Layout) -> str:
    return _digest("\n".join(f"{rel}\t{s}\t{m}\t{mode}" for rel, (s, m, mode) in zip(layout.files, layout.stats)))


def _entry(folder: str, options: FolderOptions, listing: str) -> Path:
    pixels = _changed_pixel_limit()
    settings = json.dumps([_KEY_VERSION, asdict(options), SPLIT_SEED, *([] if pixels is None else [pixels])])
    return default_cache_dir() / "folders" / f"{_name(folder)}-{_digest(folder)}-{_digest(settings + listing)}"


def _entry_before_names(folder: str, options: FolderOptions, listing: str) -> Path:
    """Where an aekit from before ``files.json`` packed the same images (key version 1): mapped as it is."""
    settings = json.dumps([1, folder, asdict(options), SPLIT_SEED])
    return default_cache_dir() / "folders" / f"{_name(folder)}-{_digest(settings)}-{listing}"


def _name(folder: str) -> str:
    """The folder's name as much of an entry's name as is safe: a reader sees which folder it is."""
    return re.sub(r"[^\w.]+", "_", Path(folder).name)[:40] or "folder"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _reuse(entry: Path, options: FolderOptions, listing: str) -> ImageData | None:
    """The folder's entry when it holds the images ``options`` ask for (see the module docstring), else ``None``."""
    prefix = entry.name.rsplit("-", 1)[0] + "-"  # the folder's entries, whatever their settings
    try:
        candidates = sorted((p for p in entry.parent.iterdir() if p.name.startswith(prefix)), key=lambda p: p != entry)
    except OSError:  # no cache yet
        return None
    for candidate in candidates:
        meta = packed.read_meta(candidate)
        if meta is not None and _same_images(meta, options, listing):
            data = packed.read(candidate)
            if data is not None:
                return data
    return None


def _changed_pixel_limit() -> int | None:
    """The pixel limit when it is not the default: a changed limit re-packs the files it skipped or would skip;
    the default keeps the keys of entries packed before there was a limit.
    """
    pixels = limits.IMAGE_PIXELS.value()
    return None if pixels == limits.IMAGE_PIXELS.default else pixels


def _same_images(meta: dict, options: FolderOptions, listing: str) -> bool:
    """Whether the entry of ``meta`` is what ``options`` would pack from the folder listed as ``listing``.

    Defaults are resolved as the entry's own pass over every header did: no
    ``image_size`` is the most common size, ``color_mode="auto"`` rgb when any
    image is in colour.
    """
    key = meta.get("key")
    try:
        if (key["version"], key["listing"], key["test_fraction"]) != (_KEY_VERSION, listing, options.test_fraction):
            return False
        if key.get("max_image_pixels") != _changed_pixel_limit():
            return False
        natural = key["natural"]
        wanted = _decoding(options, tuple(natural["size"]), natural["channels"])
    except (KeyError, TypeError):
        return False
    return _settings(wanted) == meta.get("settings")


def _packed_from(entry: Path, folder: str) -> bool:
    """Whether ``entry`` was packed from ``folder`` (by this aekit, or by one that recorded only the path given)."""
    meta = packed.read_meta(entry) or {}
    if "source" in meta:
        return meta["source"] == folder
    origin = Path(meta.get("origin", ""))
    return origin.is_absolute() and str(origin.resolve()) == folder


def _settings(decoding: Decoding) -> dict:
    """A decoding as an entry's ``settings`` record it."""
    return {**asdict(decoding), "size": list(decoding.size)}


def _decoding(options: FolderOptions, common_size: tuple[int, int], channels: int) -> Decoding:
    """The decoding ``options`` ask for, the folder's most common size and own channels filling the defaults."""
    return Decoding(options.image_size or common_size,
                    {"grayscale": 1, "rgb": 3, "rgba": 4}.get(options.color_mode) or channels,
                    options.resize, BACKGROUNDS[options.alpha_background])


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
    listing: str  # the digest of the folder's listing, kept in the entry's key
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
        common = _choose([h for h in headers if h is not None], FolderOptions())  # what the defaults come to
        writer.finish(
            name=layout.root.resolve().name, origin=str(layout.root), source=str(layout.root.resolve()),
            n_train=n_train, labels=None if layout.labels is None else layout.labels[kept],
            class_names=layout.class_names, skipped=[(paths[i], reason) for i, reason in failures],
            settings=_settings(settled), files=[layout.files[i] for i in kept],
            key={"version": _KEY_VERSION, "listing": self.listing, "test_fraction": self.options.test_fraction,
                 "natural": {"size": list(common.size), "channels": common.channels},
                 **({} if _changed_pixel_limit() is None else {"max_image_pixels": _changed_pixel_limit()})},
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
            return _choose([], self.options)
        headers = []
        for path in paths[::max(1, len(paths) // _SAMPLE)][:_SAMPLE]:
            try:
                headers.append(probe(path))
            except Exception:  # noqa: BLE001 - a broken file: the decoding pass will list it
                pass
        return _choose(headers, self.options)

    def _settle(self, paths: list[str], headers: list, failures: list[tuple[int, str]]) -> Decoding:
        """The decoding all the headers call for; a note when images of other sizes are resized."""
        readable = [h for h in headers if h is not None]
        if not readable:
            i, reason = failures[0]
            raise DataError(f"{self.layout.root}: none of its {len(paths)} image files could be read "
                            f"(first: {paths[i]}: {reason})")
        decoding = _choose(readable, self.options)
        sizes = Counter(h[:2] for h in readable)
        if self.options.image_size is None and len(sizes) > 1:
            (w, h) = decoding.size
            self.log(f"{self.layout.root}: {len(readable) - sizes[w, h]} of {len(readable)} images are not {w}x{h}, "
                     f"the most common size, and are resized to it ({self.options.resize}); "
                     "set image_size to choose the size")
        return decoding


def _choose(headers: list, options: FolderOptions) -> Decoding:
    """The decoding ``options`` ask for, their defaults resolved from the files' ``headers``."""
    sizes = Counter(h[:2] for h in headers)
    return _decoding(options, sizes.most_common(1)[0][0] if sizes else _FALLBACK_SIZE,
                     3 if any(h[2] for h in headers) else 1)


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
