"""The whole evaluation of a model's codes and reconstructions, against PCA and raw pixels.

:func:`evaluate` takes arrays (a dataset, the model's codes for its training and test
images, the model's test reconstructions in ``[0, 1]``) and returns an
:class:`Evaluation`: a JSON-ready summary (what ``eval.json`` holds) and the per-image
errors. The baselines (PCA with the same code size, raw pixels) come through a
``baseline`` hook so that a caller can cache them; this module reads and writes no files.

Settings that do not fit the data (more labels than the training split holds, a kNN
``k`` larger than the probes' training set, one class) are fitted to it first by
:func:`plan`, which says in one line each what shrank or was skipped and why. The PCA
method and the pixels' representation follow the data's shape (:func:`pca_method`,
:data:`PROBE_DIM`), so that the baselines stay bounded in time and memory on large
colour images.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from aekit.config import build_section, rule
from aekit.errors import EvalError
from aekit.evaluation import metrics, probes

FORMAT = "aekit-eval/1"
BASELINE_FORMAT = "aekit-baseline/2"  # bump when a baseline metric changes, so old cache entries are not used
PIXEL_NOTE = ("all metrics use images in [0,1]: reconstructions of runs trained on centred pixels are "
              "shifted by +0.5, and every reconstruction (PCA's too) is clipped to [0,1]")
WORST = 8  # worst reconstructions listed in the summary
LABEL_SECTIONS = "k-means accuracy/NMI/ARI, the kNN and logistic probes and the semi-supervised probes"
PROBE_DIM = 1024  # the pixel probes use raw pixels up to this many values per image...
PROBE_COMPONENTS = 256  # ...and above it the pixels' first PROBE_COMPONENTS principal components
EXACT_BUDGET = 6e10  # floating-point operations an exact PCA may take (a few seconds on two cores)
PCA_METHODS = ("covariance", "gram", "randomized")
CHUNK_VALUES = 2 ** 23  # pixel values converted to floats at a time (32 MiB): 10,700 MNIST images, 682 of 64x64 RGB
HOLD_VALUES = 2 ** 28  # a randomized PCA holds the training pixels as float32 up to this many values (1 GiB)
SSIM_WINDOW = 7  # scikit-image's default
BAR_DELAY = 3.0  # seconds before a section shows a progress bar

Log = Callable[[str], None]


@dataclass
class EvalSettings:
    """What the evaluation does; every field is part of the baseline cache key."""

    seed: int = rule(0, min=0, help="seed for k-means, the probe subsample, the labelled draws and a randomized PCA")
    kmeans_init: int = rule(4, min=1, help="k-means restarts (the best inertia is kept)")
    knn_k: int = rule(5, min=1, help="neighbours in the kNN probe (at most the probes' training images)")
    probe_train: int = rule(10000, min=0, help="training images the kNN and logistic probes learn from, drawn "
                            "with the seed, the same for every representation; 0 = all")
    logreg_max_iter: int = rule(200, min=1, help="L-BFGS iterations cap of the logistic regressions")
    semi_sizes: tuple[int, ...] = rule((10, 100, 1000), item_min=2,
                                       help="labelled training images of the semi-supervised probes (a size larger "
                                       "than the training split is skipped)")
    semi_draws: int = rule(5, min=1, help="class-balanced labelled sets drawn per size")

    @classmethod
    def from_values(cls, **values) -> "EvalSettings":
        """Validated settings; a bad value raises ``ConfigError`` naming ``eval.<field>``."""
        return build_section(cls, {k: v for k, v in values.items() if v is not None}, "eval")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


@dataclass
class Evaluation:
    summary: dict[str, Any]  # JSON-ready but for float('inf') PSNR; see to_json
    errors: np.ndarray  # (N_test,) per-image MSE in [0,1] pixels: the anomaly score
    labels: np.ndarray  # (N_test,); -1 for unlabeled images


# --------------------------------------------------------------------------- fitting the settings to the data

@dataclass
class Plan:
    """What the evaluation does on one dataset: the settings fitted to it, and why anything changed.

    ``shrunk`` and ``skipped`` hold one line each: what was shrunk or left out, why, and
    the flag that sets it.
    """

    settings: EvalSettings  # fitted: knn_k and semi_sizes may be smaller than asked
    components: int  # PCA components: the code size, or fewer when the data has fewer images or pixels
    ssim_window: int | None  # None: no SSIM (images smaller than 3 pixels)
    alpha: bool = False  # 4-channel (rgba) images: masked_mse and alpha_mse beside the 4-channel MSE
    kmeans: bool = True
    probes: bool = True
    semi: bool = True
    shrunk: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def labels(self) -> bool:
        """Whether any section scores codes against labels."""
        return self.kmeans or self.probes or self.semi


def plan(data, settings: EvalSettings, latent_dim: int) -> Plan:
    """Fit ``settings`` to ``data``: shrink what cannot fit, skip what cannot run, one line each."""
    n_train, (c, h, w) = len(data.x_train), data.x_train.shape[1:]
    out = Plan(dataclasses.replace(settings), min(latent_dim, n_train, c * h * w), _ssim_window(h, w), c == 4)
    if out.components < latent_dim:
        out.shrunk.append(f"PCA-{latent_dim}: {out.components} components, as many as {n_train} training images "
                          f"of {c * h * w} values allow")
    if out.ssim_window is None:
        out.skipped.append(f"SSIM: the images are {h}x{w} pixels, smaller than its smallest window (3x3)")
    elif out.ssim_window < SSIM_WINDOW:
        out.shrunk.append(f"SSIM: a {out.ssim_window}x{out.ssim_window} window instead of {SSIM_WINDOW}x"
                          f"{SSIM_WINDOW}: the images are {h}x{w} pixels")
    if not data.labeled:
        out.kmeans = out.probes = out.semi = False
        out.skipped.append(f"{LABEL_SECTIONS} need labels, and {data.name} has none")
        return out
    names = _class_name(data)
    test_classes = np.unique(data.y_test)
    if len(test_classes) < 2:
        out.kmeans = False
        out.skipped.append(f"k-means: every test image is of class {names(test_classes[0])}; there is nothing to "
                           "cluster")
    classes = np.unique(data.y_train)
    if len(classes) < 2:
        out.probes = out.semi = False
        out.skipped.append(f"the kNN, logistic and semi-supervised probes: every training image is of class "
                           f"{names(classes[0])}, and a classifier needs two")
        return out
    _fit_probes(out, data)
    _fit_semi(out, data.y_train, names)
    return out


def _fit_probes(out: Plan, data) -> None:
    s = out.settings
    idx = probes.subsample(len(data.x_train), s.probe_train, s.seed)
    if len(np.unique(data.y_train[idx])) < 2:
        out.probes = False
        out.skipped.append(f"the kNN and logistic probes: the {len(idx)} training images drawn for them hold one "
                           f"class; a larger --probe-train draws more (eval.probe_train)")
    elif s.knn_k > len(idx):
        out.shrunk.append(f"kNN: k = {len(idx)} instead of {s.knn_k}: the probes learn from {len(idx)} training "
                          "images (--knn-k, eval.knn_k)")
        s.knn_k = len(idx)


def _fit_semi(out: Plan, y_train: np.ndarray, names) -> None:
    s = out.settings
    classes, counts = np.unique(y_train, return_counts=True)
    kept = []
    for size in s.semi_sizes:
        if size > len(y_train):
            out.skipped.append(f"semi-supervised with {size} labels: the training split has {len(y_train)} images "
                               "(--semi-sizes, eval.semi_sizes)")
            continue
        share = math.ceil(size / len(classes))
        short = np.flatnonzero(counts < share)
        if len(short):
            listed = ", ".join(f"{names(classes[i])} has {counts[i]}" for i in short[:3])
            more = f" and {len(short) - 3} more" if len(short) > 3 else ""
            out.shrunk.append(f"semi-supervised with {size} labels: a class's share is up to {share} training "
                              f"images, but class {listed}{more}; those give all they have and the other classes "
                              "the rest (--semi-sizes, eval.semi_sizes)")
        kept.append(size)
    s.semi_sizes = tuple(kept)
    out.semi = bool(kept)


def _class_name(data) -> Callable[[int], str]:
    def name(label) -> str:
        label = int(label)
        known = 0 <= label < len(data.class_names) and data.class_names[label] != str(label)
        return f"{label} ({data.class_names[label]})" if known else str(label)
    return name


def _ssim_window(h: int, w: int) -> int | None:
    """scikit-image's 7x7 window, or the largest odd one the images hold; ``None`` below 3x3."""
    side = min(SSIM_WINDOW, h, w)
    side -= 1 - side % 2  # odd
    return side if side >= 3 else None


# --------------------------------------------------------------------------- PCA

def pca_method(n: int, d: int, k: int) -> str:
    """How to fit ``k`` principal components of ``n`` images of ``d`` values: one of :data:`PCA_METHODS`.

    Exact when that is cheap: ``covariance`` eigendecomposes the ``d x d`` covariance
    (``n d^2 + d^3``), ``gram`` the ``n x n`` Gram matrix of the images (``d n^2 + n^3``);
    the cheaper of the two is taken when it costs at most :data:`EXACT_BUDGET`, or when
    ``k`` is half the rank or more. Otherwise ``randomized`` (Halko et al. 2011, as
    scikit-learn's ``svd_solver="randomized"``, on the images streamed in chunks): about
    ``n d k`` per pass.

    >>> pca_method(60000, 784, 3), pca_method(1800, 3072, 16), pca_method(50000, 3072, 16)
    ('covariance', 'gram', 'randomized')
    """
    eig = 20  # an eigendecomposition with vectors costs about this many times m^3
    covariance, gram = n * d * d + eig * d ** 3, d * n * n + eig * n ** 3
    if min(covariance, gram) <= EXACT_BUDGET or 2 * k >= min(n, d):
        return "covariance" if covariance <= gram else "gram"
    return "randomized"


@dataclass
class PcaBasis:
    """Principal axes of images flattened to ``[0, 1]`` floats: the mean and the first components.

    ``transform`` and ``inverse_transform`` compute as scikit-learn's ``PCA`` does, so a
    basis taken from a fitted ``PCA`` gives its numbers; ``k`` uses the first ``k`` components.
    """

    mean: np.ndarray  # (D,)
    components: np.ndarray  # (K, D), rows of unit length, by decreasing variance
    method: str  # one of PCA_METHODS

    def transform(self, x: np.ndarray, k: int | None = None) -> np.ndarray:
        """Codes ``(N, k)`` of float rows ``(N, D)``."""
        c = self.components[:k]
        return x @ c.T - self.mean.reshape(1, -1) @ c.T

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        """Rows ``(N, D)`` from codes ``(N, k)``."""
        return z @ self.components[:z.shape[1]] + self.mean

    def encode_images(self, images_u8: np.ndarray, k: int | None = None) -> np.ndarray:
        """Codes ``(N, k)`` float32 of uint8 images ``(N, C, H, W)``, :func:`chunk` images at a time."""
        step = chunk(self.mean.size)
        parts = [self.transform(flat_unit(images_u8[i:i + step]), k) for i in range(0, len(images_u8), step)]
        return np.concatenate(parts).astype(np.float32, copy=False)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "components": self.components, "method": np.array(self.method)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "PcaBasis":
        return cls(arrays["mean"], arrays["components"], str(arrays["method"]))


def fit_pca(x: np.ndarray, n_components: int, seed: int = 0, method: str | None = None, bar=None) -> PcaBasis:
    """PCA with ``n_components`` (at most ``min(N, D)``) by ``method`` (default :func:`pca_method`'s choice).

    ``x`` is float rows ``(N, D)``, or uint8 images ``(N, C, H, W)`` taken as :func:`flat_unit` rows;
    above :data:`HOLD_VALUES` values the randomized method reads those :func:`chunk` images at a
    time in each pass and never holds them all as floats. ``bar.update(1)`` follows each pass over
    the data (:func:`pca_passes` in all).
    """
    from sklearn.decomposition import PCA

    n, d = len(x), int(np.prod(x.shape[1:]))
    n_components = min(n_components, n, d)
    method = method or pca_method(n, d, n_components)
    if method == "randomized":
        return _randomized_pca(x, n_components, seed, bar)
    x = flat_unit(x) if x.dtype == np.uint8 else x
    if method == "gram":
        basis = _gram_pca(x, n_components)
    else:
        try:  # the D x D covariance route: exact and fast when N >> D (scikit-learn >= 1.5)
            pca = PCA(n_components, svd_solver="covariance_eigh").fit(x)
        except ValueError:
            pca = PCA(n_components, svd_solver="full").fit(x)
        basis = PcaBasis(pca.mean_, pca.components_, method)
    if bar is not None:
        bar.update(pca_passes(method, n, d, n_components))
    return basis


def pca_passes(method: str, n: int, d: int, k: int) -> int:
    """Passes over the data :func:`fit_pca` makes: the steps of its progress bar."""
    return 2 * _power_iterations(n, d, k) + 3 if method == "randomized" else 1


def _power_iterations(n: int, d: int, k: int) -> int:
    return 7 if k < 0.1 * min(n, d) else 4  # scikit-learn's choice for randomized_svd


def _randomized_pca(x: np.ndarray, k: int, seed: int, bar=None, oversample: int = 10) -> PcaBasis:
    """Randomized PCA (Halko, Martinsson & Tropp 2011, algorithm 4.4, with an LU step between the power
    iterations as scikit-learn's ``randomized_range_finder``), on the centred rows streamed in chunks.
    """
    from scipy.linalg import eigh, lu, qr

    n, d = len(x), int(np.prod(x.shape[1:]))
    step_rows = chunk(d)

    def read(start):  # (B, D) float32
        part = x[start:start + step_rows]
        return flat_unit(part) if part.dtype == np.uint8 else np.asarray(part, np.float32).reshape(len(part), -1)

    def step():
        if bar is not None:
            bar.update(1)

    starts = range(0, n, step_rows)
    mean = sum(read(i).sum(0, dtype=np.float64) for i in starts) / n
    step()
    if n * d <= HOLD_VALUES:  # converted and centred once; larger sets are read again in every pass
        held = np.concatenate([read(i) for i in starts])
        held -= mean.astype(np.float32)
        rows, centre = (lambda start: held[start:start + step_rows]), np.zeros_like(mean)
    else:
        rows, centre = read, mean

    def times(q):  # centred X @ q: (N, size)
        return np.concatenate([rows(i) @ q for i in starts]) - (centre @ q).astype(np.float32)

    def t_times(p):  # centred X^T @ p: (D, size)
        out = sum(rows(i).T @ p[i:i + step_rows] for i in starts)
        return (out - np.outer(centre, p.sum(0))).astype(np.float32)

    q = np.random.default_rng(seed).standard_normal((d, min(k + oversample, n, d))).astype(np.float32)
    for _ in range(_power_iterations(n, d, k)):
        q = lu(times(q), permute_l=True)[0]
        step()
        q = lu(t_times(q), permute_l=True)[0]
        step()
    q = qr(times(q), mode="economic")[0]  # (N, size): an orthonormal basis of the range of X
    step()
    b = t_times(q).T.astype(np.float64)  # Q^T X: (size, D)
    # its right singular vectors through the small (size, size) B B^T: LAPACK's SVD of a wide B is far slower
    eigval, eigvec = eigh(b @ b.T, subset_by_index=[len(b) - k, len(b) - 1])
    eigval, eigvec = np.maximum(eigval[::-1], eigval[-1] * 1e-12), eigvec[:, ::-1]
    components = (eigvec.T @ b) / np.sqrt(eigval)[:, None]  # (k, D)
    step()
    signs = np.sign(components[np.arange(k), np.abs(components).argmax(1)])  # scikit-learn's svd_flip convention
    components = components * np.where(signs == 0, 1.0, signs)[:, None]
    return PcaBasis(mean.astype(np.float32), components.astype(np.float32), "randomized")


def _gram_pca(x: np.ndarray, k: int) -> PcaBasis:
    """Exact PCA through the ``N x N`` Gram matrix of the centred rows: cheap when ``N << D``.

    With ``Xc = U S V^T``, ``Xc Xc^T = U S^2 U^T``, so the components are ``V^T = S^-1 U^T Xc``.
    """
    from scipy.linalg import eigh

    mean = x.mean(0, dtype=np.float64).astype(x.dtype)
    xc = x - mean  # (N, D)
    gram = (xc @ xc.T).astype(np.float64)  # (N, N)
    n = len(gram)
    eigval, eigvec = eigh(gram, subset_by_index=[n - k, n - 1])  # ascending
    eigval, eigvec = eigval[::-1], eigvec[:, ::-1]
    keep = eigval > eigval[0] * 1e-10  # a zero singular value has no direction to give
    components = np.zeros((k, x.shape[1]), np.float64)
    components[keep] = (eigvec[:, keep].T @ xc) / np.sqrt(eigval[keep])[:, None]  # (k, D)
    rows = np.arange(k)
    signs = np.sign(components[rows, np.abs(components).argmax(1)])  # scikit-learn's svd_flip convention
    components *= np.where(signs == 0, 1.0, signs)[:, None]
    return PcaBasis(mean, components.astype(x.dtype), "gram")


def pca_features(x_train: np.ndarray, x_test: np.ndarray, n_components: int, seed: int = 0):
    """PCA fitted on ``x_train`` ``(N, D)``: training codes, test codes and clipped test reconstructions."""
    basis = fit_pca(x_train, n_components, seed)
    z_test = basis.transform(x_test)
    recon = np.clip(basis.inverse_transform(z_test), 0.0, 1.0)
    return basis.transform(x_train), z_test, recon


# --------------------------------------------------------------------------- representations

def chunk(values_per_image: int) -> int:
    """Images of ``values_per_image`` values converted to floats at a time: :data:`CHUNK_VALUES` in all."""
    return max(1, CHUNK_VALUES // values_per_image)


def flat_unit(images_u8: np.ndarray) -> np.ndarray:
    """uint8 images ``(N, C, H, W)`` -> float32 ``(N, C*H*W)`` in ``[0, 1]``."""
    return images_u8.reshape(len(images_u8), -1).astype(np.float32) / 255.0


class Sections:
    """Each section of an evaluation: a line when it starts, a progress bar after :data:`BAR_DELAY`
    seconds, its time when it ends (kept in ``seconds``), and its failure as one :class:`EvalError`.

    ``with sections("k-means (pixels)", total=4, fields=("kmeans_init",)) as bar: ... bar.update(1)``
    """

    def __init__(self, log: Log, progress: bool):
        self.log, self.progress, self.seconds = log, progress, {}

    def __call__(self, what: str, total: int | None = None, fields: tuple[str, ...] = ()):
        return _Section(self, what, total, fields)


class _Section:
    def __init__(self, sections: Sections, what: str, total: int | None, fields: tuple[str, ...]):
        self.sections, self.what, self.total, self.fields = sections, what, total, fields

    def __enter__(self):
        from tqdm import tqdm

        self.sections.log(f"{self.what} ...")
        self.start = time.perf_counter()
        self.bar = tqdm(total=self.total, desc=f"  {self.what}", leave=False, delay=BAR_DELAY, file=sys.stderr,
                        disable=not self.sections.progress or not self.total)
        return self.bar

    def __exit__(self, exc_type, exc, tb):
        self.bar.close()
        seconds = time.perf_counter() - self.start
        self.sections.seconds[self.what] = round(seconds, 2)
        if exc_type is None:
            self.sections.log(f"  {self.what}: {seconds:.1f}s")
            return False
        if issubclass(exc_type, (ValueError, ArithmeticError, MemoryError, np.linalg.LinAlgError)) and \
                not issubclass(exc_type, EvalError):
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            change = ""
            if self.fields:
                change = f"; change {' or '.join('eval.' + f for f in self.fields)}"
            raise EvalError(f"{self.what} failed ({type(exc).__name__}{': ' + message if message else ''}){change}",
                            params=tuple("eval." + f for f in self.fields)) from exc
        return False


PROBE_FIELDS = ("knn_k", "probe_train", "logreg_max_iter")


def score_codes(train_x, train_y, test_x, test_y, plan_: Plan, sections: Sections, name: str) -> dict[str, float]:
    """The label-side metrics of one representation: k-means, kNN, logistic and semi-supervised probes,
    those that ``plan_`` keeps.
    """
    settings, out = plan_.settings, {}
    if plan_.kmeans:
        with sections(f"k-means ({name})", settings.kmeans_init, ("kmeans_init", "seed")) as bar:
            scores = probes.kmeans_scores(test_x, test_y, settings.kmeans_init, settings.seed, bar)
            out.update({f"kmeans_{k}": v for k, v in scores.items()})
    if plan_.probes:
        idx = probes.subsample(len(train_x), settings.probe_train, settings.seed)
        with sections(f"kNN and logistic probes ({name})", len(test_x) + 1, PROBE_FIELDS) as bar:
            out["knn_acc"] = probes.knn_accuracy(train_x[idx], train_y[idx], test_x, test_y, settings.knn_k, bar)
            out["logreg_acc"] = probes.logistic_accuracy(train_x[idx], train_y[idx], test_x, test_y,
                                                         settings.logreg_max_iter)
            bar.update(1)
    if plan_.semi:
        with sections(f"semi-supervised ({name})", len(settings.semi_sizes) * settings.semi_draws,
                      ("semi_sizes", "semi_draws")) as bar:
            semi = probes.semi_supervised_accuracy(train_x, train_y, test_x, test_y, settings.semi_sizes,
                                                   settings.semi_draws, settings.seed, settings.logreg_max_iter, bar)
        for size, accs in semi.items():
            out[f"semi_{size}"] = float(np.mean(accs))
            out[f"semi_{size}_std"] = float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0
    return out


def reconstruction_scores(x_u8: np.ndarray, recon: Callable[[int, int], np.ndarray], plan_: Plan,
                          sections: Sections, name: str) -> tuple[dict[str, float], np.ndarray]:
    """MSE, BCE, PSNR and SSIM of reconstructions against uint8 images ``(N, C, H, W)``, :func:`chunk` images
    at a time, and the per-image MSE. ``recon(start, stop)`` gives those images' reconstructions in ``[0, 1]``.
    RGBA images (``plan_.alpha``) also get ``masked_mse`` over the whole test set, as ``--alpha-loss mask``
    would give on it as one batch, and ``alpha_mse``.
    """
    n = len(x_u8)
    errors, bce_sum, ssim_sum = np.empty(n), 0.0, 0.0
    masked, alpha_sum = np.zeros(2), 0.0  # the masked loss's weighted error and weight, summed over the chunks
    with sections(f"reconstruction ({name})", n) as bar:
        step = chunk(int(np.prod(x_u8.shape[1:])))
        for start in range(0, n, step):
            x = x_u8[start:start + step].astype(np.float32) / 255.0  # (B, C, H, W)
            r = recon(start, start + len(x))
            errors[start:start + len(x)] = metrics.per_image_mse(x, r)
            bce_sum += metrics.bce(x, r) * len(x)
            if plan_.ssim_window is not None:
                ssim_sum += metrics.ssim(x, r, win_size=plan_.ssim_window) * len(x)
            if plan_.alpha:
                masked += metrics.masked_sums(x, r)
                alpha_sum += metrics.alpha_mse(x, r) * len(x)
            bar.update(len(x))
    mse = float(np.mean(errors))
    row = {"mse": mse, "bce": bce_sum / n, "psnr": float("inf") if mse == 0 else float(10.0 * np.log10(1.0 / mse))}
    if plan_.ssim_window is not None:
        row["ssim"] = ssim_sum / n
    if plan_.alpha:
        row["masked_mse"], row["alpha_mse"] = float(masked[0] / masked[1]), alpha_sum / n
    return row, errors


# --------------------------------------------------------------------------- the baselines

class Baselines:
    """The PCA and pixel baselines of one dataset, sharing what they can.

    When the images have more than :data:`PROBE_DIM` values, one PCA with
    ``max(PROBE_COMPONENTS, code size)`` components is fitted on the training pixels
    and kept in the cache (:meth:`basis`): PCA with any smaller code size is its first
    components, and the pixel probes use its first :data:`PROBE_COMPONENTS` codes.
    Smaller images keep raw pixels, and PCA is fitted with the code size's components
    (:func:`pca_method` picks how; MNIST's 784 pixels take the exact covariance route).
    """

    def __init__(self, data, plan_: Plan, fingerprint: str, sections: Sections, cache):
        self.data, self.plan, self.fingerprint, self.sections, self.cache = data, plan_, fingerprint, sections, cache
        n, self.dim = len(data.x_train), int(np.prod(data.x_train.shape[1:]))
        self.shared = self.dim > PROBE_DIM
        self.width = min(max(PROBE_COMPONENTS, plan_.components), n, self.dim) if self.shared else plan_.components
        self.method = pca_method(n, self.dim, self.width)
        self._basis: PcaBasis | None = None

    @property
    def pixel_label(self) -> str:
        return f"pixels ({self.dim} -> PCA-{self.pixel_components})" if self.shared else f"pixels ({self.dim})"

    @property
    def pixel_components(self) -> int:
        return min(PROBE_COMPONENTS, self.width)

    def basis(self) -> PcaBasis:
        """The fitted PCA: from the cache when it holds one for this dataset, else fitted (and stored)."""
        if self._basis is None:
            n = len(self.data.x_train)
            key = {"format": BASELINE_FORMAT, "kind": "pca-basis", "dataset": self.data.name,
                   "sha256": self.fingerprint, "components": self.width, "method": self.method,
                   **({"seed": self.plan.settings.seed} if self.method == "randomized" else {})}
            what = f"PCA-{self.width} of the training pixels ({self.method}, {n} x {self.dim})"

            def fit():
                with self.sections(what, pca_passes(self.method, n, self.dim, self.width)) as bar:
                    basis = fit_pca(self.data.x_train, self.width, self.plan.settings.seed, self.method, bar)
                return basis.to_arrays()

            # only the shared PCA of large images is worth keeping; a small one is refitted in moments
            arrays, cached = self.cache.arrays(key, fit) if self.shared else (fit(), False)
            if cached:
                self.sections.log(f"{what}: from the cache")
            self._basis = PcaBasis.from_arrays(arrays)
        return self._basis

    def pca_row(self) -> dict[str, float]:
        """PCA with the code size's components: reconstruction and (labelled data) code metrics."""
        k, data = self.plan.components, self.data
        basis = self.basis()
        recon = lambda a, b: np.clip(basis.inverse_transform(basis.encode_images(data.x_test[a:b], k)), 0.0, 1.0) \
            .reshape((b - a, *data.x_test.shape[1:]))
        row, _ = reconstruction_scores(data.x_test, recon, self.plan, self.sections, f"PCA-{k}")
        if not self.plan.labels:
            return row
        z_train, z_test = basis.encode_images(data.x_train, k), basis.encode_images(data.x_test, k)
        return {**row, **score_codes(z_train, data.y_train, z_test, data.y_test, self.plan, self.sections,
                                     f"PCA-{k}")}

    def pixel_row(self) -> dict[str, float]:
        """The label-side metrics on the pixels in ``[0, 1]`` (a representation with no reconstruction error),
        or on their first :data:`PROBE_COMPONENTS` principal components for large images.
        """
        if self.shared:
            basis, k = self.basis(), self.pixel_components
            train_x, test_x = basis.encode_images(self.data.x_train, k), basis.encode_images(self.data.x_test, k)
        else:
            train_x, test_x = flat_unit(self.data.x_train), flat_unit(self.data.x_test)
        return score_codes(train_x, self.data.y_train, test_x, self.data.y_test, self.plan, self.sections, "pixels")

    def notes(self) -> list[str]:
        n, k = len(self.data.x_train), self.plan.components
        passes = 2 * _power_iterations(n, self.dim, self.width)
        how = {"covariance": "exact, from the covariance of the pixels",
               "gram": "exact, from the Gram matrix of the training images",
               "randomized": f"randomized SVD (Halko et al. 2011, {passes} power passes, seed "
                             f"{self.plan.settings.seed})"}[self.method]
        lines = [f"PCA-{k} fitted on the {n} training images: {how}"
                 + (f"; its first {k} of {self.width} components, fitted once per dataset and cached"
                    if self.shared else "")]
        if self.shared and self.plan.labels:
            lines.append(f"pixels: the images have {self.dim} values, so the probes and k-means use their first "
                         f"{self.pixel_components} principal components (the PCA above), not the raw pixels")
        return lines


def pca_baseline(baselines: Baselines) -> dict[str, float]:
    return baselines.pca_row()


def pixel_baseline(baselines: Baselines) -> dict[str, float]:
    return baselines.pixel_row()


def dataset_fingerprint(data) -> str:
    """SHA-256 over the train and test images and labels: the dataset's identity in cache keys."""
    h = hashlib.sha256()
    for arr in (data.x_train, data.y_train, data.x_test, data.y_test):
        if arr is None:  # unlabeled
            h.update(b"no labels")
            continue
        h.update(str((arr.dtype.str, arr.shape)).encode())
        h.update(np.ascontiguousarray(arr).data)
    return h.hexdigest()


def baseline_key(data, fingerprint: str, kind: str, settings: EvalSettings, latent_dim: int | None = None) -> dict:
    """Everything a baseline's numbers depend on; equal keys mean equal numbers."""
    key = {"format": BASELINE_FORMAT, "kind": kind, "dataset": data.name, "sha256": fingerprint,
           "settings": settings.to_dict()}
    if latent_dim is not None:
        key["latent_dim"] = latent_dim
    if data.x_test.shape[1] == 4:  # RGBA rows gained masked_mse and alpha_mse: older cached rows lack them
        key["alpha_metrics"] = 1
    return key


class NoCache:
    """The ``baseline`` hook that computes every time: ``(compute(), False)``."""

    def __call__(self, key: dict, compute: Callable[[], dict]) -> tuple[dict, bool]:
        return compute(), False

    def arrays(self, key: dict, compute: Callable[[], dict]) -> tuple[dict, bool]:
        return compute(), False


no_cache = NoCache()


# --------------------------------------------------------------------------- the whole evaluation

def evaluate(data, z_train: np.ndarray, z_test: np.ndarray, recon_test: np.ndarray,
             settings: EvalSettings | None = None, *, model_label: str = "model", baseline=no_cache,
             log: Log | None = None, progress: bool = False) -> Evaluation:
    """Evaluate a model's codes and reconstructions on ``data`` against PCA and pixel baselines.

    Parameters
    ----------
    data : ImageData
        uint8 images and labels; the test split is scored, the training split trains the probes and PCA.
        Settings that do not fit it are shrunk or their sections skipped (:func:`plan`), and the
        summary's ``shrunk`` and ``skipped`` say what and why, one line each. Unlabeled data gets
        the reconstruction metrics and anomaly scores only.
    z_train, z_test : ndarray (N_train, D), (N_test, D)
        The model's codes of the training and test images.
    recon_test : ndarray (N_test, C, H, W)
        The model's test reconstructions in ``[0, 1]`` (see :func:`aekit.pixels.to_unit`).
    settings : EvalSettings
    baseline : callable
        ``baseline(key, compute) -> (metrics, from_cache)`` with an ``arrays`` method of the same
        form for the shared PCA (see :class:`aekit.evaluation.cache.BaselineCache`); the default
        computes every time.
    log : callable
        Receives a line when each section starts and when it ends.
    progress : bool
        Show a progress bar for each section that runs longer than :data:`BAR_DELAY` seconds.

    Returns
    -------
    Evaluation
        ``summary["results"]`` maps ``model``, ``pca`` and ``pixels`` to flat ``{metric: value}``
        dicts (see :data:`aekit.evaluation.table.METRICS`).

    Raises
    ------
    EvalError
        A section failed; the message names it and the settings that change it.
    """
    settings = settings or EvalSettings()
    log = log or (lambda msg: None)
    start = time.perf_counter()
    latent_dim = int(z_test.shape[1])
    if recon_test.shape != data.x_test.shape:
        raise ValueError(f"reconstructions {recon_test.shape} do not match the test images {data.x_test.shape}")
    if len(data.x_test) == 0:
        raise EvalError(f"{data.name} has no test images to score; evaluate on a dataset that has some (dataset), "
                        "or train with a test_fraction above 0", params=("dataset", "test_fraction"))
    _check_finite(z_train, z_test, recon_test)
    plan_ = plan(data, settings, latent_dim)
    for line in plan_.shrunk + plan_.skipped:
        log(line)
    sections = Sections(log, progress)

    model_row, errors = reconstruction_scores(data.x_test, lambda a, b: recon_test[a:b], plan_, sections, "model")
    if plan_.labels:
        model_row.update(score_codes(np.asarray(z_train, np.float32), data.y_train, np.asarray(z_test, np.float32),
                                     data.y_test, plan_, sections, model_label))

    fingerprint = dataset_fingerprint(data)
    baselines = Baselines(data, plan_, fingerprint, sections, baseline)
    pca_row, pca_cached = baseline(baseline_key(data, fingerprint, "pca", settings, latent_dim),
                                   lambda: pca_baseline(baselines))
    results, cached = {"model": model_row, "pca": pca_row}, {"pca": pca_cached}
    if plan_.labels:  # the pixels' row holds label metrics only
        results["pixels"], cached["pixels"] = baseline(baseline_key(data, fingerprint, "pixels", settings),
                                                       lambda: pixel_baseline(baselines))
    for name, from_cache in cached.items():
        if from_cache:
            log(f"{'PCA' if name == 'pca' else 'pixel'} baseline: from the cache")

    worst = np.argsort(-errors, kind="stable")[:WORST]
    names = {"model": model_label, "pca": f"PCA-{plan_.components}", "pixels": baselines.pixel_label}
    labels = data.y_test if data.labeled else np.full(len(errors), -1, np.int64)
    summary = {
        "format": FORMAT,
        "pixels": PIXEL_NOTE,
        "dataset": {"name": data.name, "origin": data.origin, "train": len(data.x_train), "test": len(data.x_test),
                    "classes": int(len(np.unique(data.y_test))) if data.labeled else 0, "sha256": fingerprint},
        "settings": settings.to_dict(),
        "notes": _notes(data, plan_) + baselines.notes(),
        "methods": {"pca": baselines.method, "pca_components": baselines.width,
                    "pixels": f"pca-{baselines.pixel_components}" if baselines.shared else "raw"},
        "labels": {k: v for k, v in names.items() if k in results},
        "results": results,
        "baselines_cached": cached,
        "anomaly": {
            "score": "per-image MSE of the model's reconstruction (higher = more anomalous)",
            "mean": float(errors.mean()), "median": float(np.median(errors)), "max": float(errors.max()),
            "worst": [{"index": int(i), **({"label": int(labels[i])} if data.labeled else {}),
                       "error": float(errors[i])} for i in worst],
        },
        "sections": sections.seconds,
        "seconds": round(time.perf_counter() - start, 2),
    }
    for kind in ("shrunk", "skipped"):
        if getattr(plan_, kind):
            summary[kind] = getattr(plan_, kind)
    return Evaluation(summary=summary, errors=errors, labels=np.asarray(labels))


def _check_finite(z_train, z_test, recon_test) -> None:
    for what, arr in (("codes of the training images", z_train), ("codes of the test images", z_test),
                      ("reconstructions of the test images", recon_test)):
        bad = ~np.isfinite(np.asarray(arr)).reshape(len(arr), -1).all(1)
        if bad.any():
            raise EvalError(f"the model's {what} are not finite numbers for {int(bad.sum())} of {len(arr)} images "
                            "(the run diverged?); evaluate another checkpoint (which best) or retrain",
                            params=("which",))


def _notes(data, plan_: Plan) -> list[str]:
    """What the summary's numbers are, in words."""
    lines = []
    if plan_.alpha:
        lines.append("RGBA images: MSE, BCE, PSNR and SSIM treat the alpha as a fourth channel; masked MSE weights "
                     "each colour's error by the true alpha and the alpha's own by 1 (the --alpha-loss mask loss "
                     "with mse), so it scores only what is visible; alpha MSE is the alpha channel's alone")
    if not plan_.labels:
        return lines
    s = plan_.settings
    if plan_.kmeans:
        lines.append(f"k-means on the {len(data.x_test)} test images with k = the number of classes, "
                     f"best of {s.kmeans_init} restarts; accuracy by Hungarian matching of clusters to labels")
    if plan_.probes:
        n_probe = len(probes.subsample(len(data.x_train), s.probe_train, s.seed))
        lines.append(f"kNN (k={s.knn_k}) and logistic probes trained on {n_probe} of {len(data.x_train)} training "
                     f"images{' (all)' if n_probe == len(data.x_train) else f' (drawn with seed {s.seed})'}, "
                     "scored on all test images; logistic regressions on standardised features")
    if plan_.semi:
        lines.append(f"semi-supervised: logistic regression on {', '.join(map(str, s.semi_sizes))} class-balanced "
                     f"labelled training images, mean and standard deviation over {s.semi_draws} draws")
    return lines


# --------------------------------------------------------------------------- JSON

def row_to_json(row: dict[str, float]) -> dict[str, Any]:
    """A metrics row with ``inf`` as the string ``"inf"`` (JSON has no infinity)."""
    return {k: "inf" if v == float("inf") else v for k, v in row.items()}


def row_from_json(row: dict[str, Any]) -> dict[str, float]:
    return {k: float("inf") if v == "inf" else v for k, v in row.items()}


def to_json(summary: dict) -> str:
    """``eval.json`` text.

    An infinite metric value (the PSNR of a perfect reconstruction) is written as the
    string ``"inf"``: the one non-number a metric may hold. A NaN is a bug and raises ``ValueError``.
    """
    out = {**summary, "results": {rep: row_to_json(row) for rep, row in summary["results"].items()}}
    return json.dumps(out, indent=2, allow_nan=False) + "\n"


def from_json(text: str) -> dict:
    """The summary back from :func:`to_json`, with ``"inf"`` metric values as ``float('inf')``."""
    summary = json.loads(text)
    summary["results"] = {rep: row_from_json(row) for rep, row in summary.get("results", {}).items()}
    return summary
