"""What the commands write besides the run directory: per-image scores and codes, as CSV or ``.npy``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aekit import io
from aekit.api.run import Run
from aekit.errors import ConfigError, DataError

SPLITS = ("test", "train", "all")

CODE_FIELDS = ("split", "index", "file", "label", "class")  # what names each image, before its code



def write_scores(result, path: str | Path, data=None) -> Path:
    """Every test image's reconstruction error as CSV ``index,file,label,class,error``, worst first.

    ``index`` is the image's place in the test split; ``file`` its path relative to the image folder, when
    ``data`` (the evaluated dataset) is an image folder, else empty; ``class`` its class name (empty, and
    ``label`` -1, when the data has no labels).
    """
    order = result.errors.argsort(kind="stable")[::-1]
    files = _files(data, "test", len(result.errors))
    classes = _class_names(data, result.labels)
    rows = [(i, files[i], result.labels[i], classes[i], f"{result.errors[i]:.8g}") for i in order]
    return io.atomic_write_text(path, _csv(["index", "file", "label", "class", "error"], rows))


def _files(data, split: str, n: int) -> list[str]:
    """The printable file paths of a split's ``n`` images; empty strings when the data has no files."""
    paths = None if data is None else getattr(data, f"paths_{split}")
    return [""] * n if paths is None else [io.printable(p) for p in paths]


def _class_names(data, labels: np.ndarray) -> list[str]:
    """Each label's class name; empty for -1 (no label) or without ``data``."""
    names = [] if data is None else data.class_names
    return [names[y] if 0 <= y < len(names) else "" for y in labels.tolist()]


def _csv(header: list[str], rows) -> str:
    """CSV text with quoting where a value needs it (a file name with a comma)."""
    import csv
    import io as _io

    text = _io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue()


def encode_split(run: Run, data, split: str = "test") -> dict[str, np.ndarray]:
    """Codes of one split (``test``, ``train`` or ``all``: train then test) with what names each image: its
    split, index in it, file (relative to the image folder; empty for other sources), label (-1 when the data
    has none) and class name (empty when unlabeled).
    """
    if split not in SPLITS:
        raise DataError(f"split: {split!r} is not allowed; choose one of: {', '.join(SPLITS)}", params=("split",))
    parts = [("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)]
    parts = [(name, x, y if y is not None else np.full(len(x), -1)) for name, x, y in parts if split in (name, "all")]
    label = np.concatenate([y for _, _, y in parts]).astype(np.int64)
    return {"z": np.concatenate([run.encode(x) for _, x, _ in parts]).astype(np.float32),
            "label": label,
            "class": np.array(_class_names(data, label), dtype=str),
            "file": np.array([f for name, x, _ in parts for f in _files(data, name, len(x))], dtype=str),
            "split": np.concatenate([np.full(len(y), name) for name, _, y in parts]),
            "index": np.concatenate([np.arange(len(y)) for _, _, y in parts]).astype(np.int64)}


def write_codes(codes: dict[str, np.ndarray], path: str | Path) -> Path:
    r"""Write :func:`encode_split`'s codes as ``.npy`` (one structured array) or ``.csv``, atomically.

    - ``.npy``: fields ``split`` (``"train"``/``"test"``), ``index`` (position within that
      split), ``file`` (the image's path relative to the image folder; empty for other
      sources), ``label`` (int64; -1 when the data has no labels), ``class`` (its name;
      empty when unlabeled) and ``z`` (float32, ``(latent_dim,)``); loads without pickle:
      ``codes = np.load("codes.npy"); codes["z"], codes["file"]``;
    - ``.csv``: a header ``split,index,file,label,class,z0,z1,...`` then one row per image.

    A file name that is not UTF-8 is written with ``\xNN`` escapes.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".csv"):
        raise ConfigError(f"out {path}: the file must end in .npy or .csv", params=("out",))
    z = codes["z"]
    n, d = z.shape
    if suffix == ".npy":
        width = {name: max(1, max((len(v) for v in codes[name]), default=0)) for name in ("file", "class")}
        table = np.zeros(n, dtype=[("split", "U5"), ("index", "i8"), ("file", f"U{width['file']}"), ("label", "i8"),
                                   ("class", f"U{width['class']}"), ("z", "f4", (d,))])
        for name in (*CODE_FIELDS, "z"):
            table[name] = codes[name]

        def write(tmp):
            with open(tmp, "wb") as f:
                np.save(f, table)
        return io.atomic_write(path, write)
    rows = ([*(codes[name][i].item() for name in CODE_FIELDS), *(f"{v:.8g}" for v in z[i])] for i in range(n))
    return io.atomic_write_text(path, _csv([*CODE_FIELDS, *(f"z{i}" for i in range(d))], rows))
