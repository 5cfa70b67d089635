"""The code space as something to draw: codes of images, projected when they have more than 3 dimensions.

:func:`latent_view` turns codes ``z (N, d)`` into a :class:`LatentView` of 1 to 3
coordinates per point with a title that says what the axes are. The static
(matplotlib) and interactive (plotly) pictures both draw a view, so they always
show the same cloud.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from aekit.errors import ConfigError

PROJECTIONS = ("pca", "tsne")
TSNE_MAX_POINTS = 2000  # t-SNE is O(N log N) per iteration with a large constant: a few seconds at this size
CLUSTERS = 8  # k of the k-means that colours the codes of unlabeled images


def model_and_scale(model, scale: str | None = None):
    """Accept a model or an :class:`aekit.Run`; return ``(model, pixel scale)``.

    A run knows its pixel scale (``config.data.scale``); a bare model is taken to use
    ``"unit"`` unless ``scale`` says otherwise.
    """
    if hasattr(model, "config") and hasattr(model.config, "data"):  # a Run
        return model.model, scale or model.config.data.scale
    return model, scale or "unit"


def code_label(model) -> str | None:
    """What a model's flat codes are, for a title, when they are not a plain vector
    (``codes flattened: 4x7x7 grid = 196 features``); ``None`` for a vector code.
    """
    plain = len(model.code_shape) == 1 and model.code_kind == "continuous"
    return None if plain else model.describe_code()


def code_extent(z: np.ndarray) -> tuple[float, float, float, float]:
    """``(z1_lo, z1_hi, z2_lo, z2_hi)``: the 1st to 99th percentile of 2-D codes on each axis
    (the whole range would be stretched by a few outliers).
    """
    (x0, y0), (x1, y1) = np.percentile(z, 1, axis=0), np.percentile(z, 99, axis=0)
    return float(x0), float(x1), float(y0), float(y1)


# matplotlib's tab10, and tab20's lighter partner of each: the tab20 palette with its ten strong
# colours first, so that up to ten classes get ten clearly different hues (Tableau's palettes, as
# matplotlib ships them; written out so the plotly figures need no matplotlib)
TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
         "#17becf"]
TAB10_LIGHT = ["#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d",
               "#9edae5"]
CATEGORICAL_MAX = len(TAB10) + len(TAB10_LIGHT)  # past this many classes, colours run along a rainbow


def categorical(n: int) -> bool:
    """Whether ``n`` classes get a palette of distinct colours and a legend (else a rainbow and a colour bar)."""
    return n <= CATEGORICAL_MAX


def class_colors(n: int, shade: float = 0.85) -> list[str]:
    """``n`` hex colours, one per class.

    Up to 10 classes: matplotlib's ``tab10``; up to 20: ``tab20``, its ten strong colours
    first and then their lighter partners. Colours along a rainbow make neighbouring
    classes look alike (nine classes in a rainbow are hard to tell apart), a categorical
    palette does not. Past 20 no palette keeps them apart, and they run along
    matplotlib's ``rainbow`` map (the seeds' ``cm.rainbow``): rainbow(t) = (|2t - 0.5|,
    sin(pi t), cos(pi t / 2)), darkened by ``shade`` so the yellows stay readable on white.
    """
    if categorical(n):
        return (TAB10 + TAB10_LIGHT)[:n]
    t = np.linspace(0.0, 1.0, n)
    rgb = np.clip(np.stack([np.abs(2 * t - 0.5), np.sin(np.pi * t), np.cos(np.pi * t / 2)], 1), 0, 1) * shade
    return ["#{:02x}{:02x}{:02x}".format(*(np.round(c * 255).astype(int))) for c in rgb]


@dataclass
class LatentView:
    """What a latent plot draws: ``points (N, k)`` with ``k`` in 1..3, one per test image.

    Points are coloured by ``labels``: the images' classes, or for unlabeled images the
    k-means cluster of their code; ``color_by`` names which (the legend's title).
    """

    points: np.ndarray  # (N, k) float
    labels: np.ndarray  # (N,) int class (or cluster) of each point
    index: np.ndarray  # (N,) index of each point's image in the test set
    class_names: list[str]
    title: str  # says what the axes are: the code itself or which projection of it, and what the colours are
    axis_names: list[str]
    color_by: str = "class"

    @property
    def dims(self) -> int:
        return self.points.shape[1]

    def subset(self, max_points: int | None, seed: int = 0) -> "LatentView":
        """At most ``max_points`` points, drawn at random without replacement (fixed seed)."""
        if max_points is None or len(self.points) <= max_points:
            return self
        keep = np.sort(np.random.default_rng(seed).choice(len(self.points), max_points, replace=False))
        return replace(self, points=self.points[keep], labels=self.labels[keep], index=self.index[keep])


def latent_view(z: np.ndarray, labels: np.ndarray | None, class_names: list[str] | None = None,
                projection: str = "pca", seed: int = 0, images: str = "test images",
                code: str | None = None) -> LatentView:
    """Codes ``z (N, d)`` as a view: as they are for ``d <= 3``, else projected to 2-D.

    ``projection`` is ``"pca"`` (scikit-learn's PCA; the title gives the share of
    variance the two components explain) or ``"tsne"`` (scikit-learn's t-SNE on at
    most 2,000 points, drawn at random with ``seed``). ``images`` names the points in the
    title (``"test images"``); ``code`` replaces ``"d-D codes"`` there, to say what a
    flattened grid code holds (:func:`code_label`). Without ``labels`` (unlabeled
    images) the points are coloured by a k-means clustering of the codes themselves
    (:data:`CLUSTERS` clusters, seeded), and the title says so.

    >>> view = latent_view(np.random.rand(100, 16), np.arange(100) % 10)
    >>> view.points.shape, view.title.startswith("16-D codes, PCA")
    ((100, 2), True)
    """
    z = np.asarray(z, dtype=np.float64)
    if projection not in PROJECTIONS:
        raise ConfigError(f"projection: {projection!r} is not allowed; choose one of: {', '.join(PROJECTIONS)}")
    colours = ""
    if labels is None and z.ndim == 2:
        labels, class_names = kmeans_clusters(z, seed)
        colours = f", coloured by k-means cluster (k = {len(class_names)}; no labels)"
    labels = np.asarray(labels).astype(np.int64)
    if z.ndim != 2 or len(z) != len(labels):
        raise ValueError(f"latent_view: expected z (N, d) and labels (N,), got {z.shape} and {labels.shape}")
    if class_names is None:
        class_names = [str(c) for c in range(int(labels.max(initial=0)) + 1)]
    n, d = z.shape
    what = f"{d}-D codes" if code is None else code
    view = LatentView(z, labels, np.arange(n), list(class_names), f"{what} of {n:,} {images}{colours}",
                      [f"z{i + 1}" for i in range(d)], "k-means cluster" if colours else "class")
    if d <= 3:
        return view
    if n < 3:  # too few points to project (PCA and t-SNE need more): the first two units, said in the title
        return replace(view, points=z[:, :2], axis_names=["z1", "z2"],
                       title=f"{what}, their first two units (too few {images} to project: {n}){colours}")
    if projection == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=seed)
        points = pca.fit_transform(z)
        share = pca.explained_variance_ratio_.sum()
        return replace(view, points=points, axis_names=["PC 1", "PC 2"],
                       title=f"{what}, PCA to 2-D ({share:.0%} of the variance); {n:,} {images}{colours}")
    from sklearn.manifold import TSNE

    view = view.subset(TSNE_MAX_POINTS, seed)
    m = len(view.points)
    tsne = TSNE(n_components=2, init="pca", random_state=seed, perplexity=min(30.0, max(2.0, (m - 1) / 3)))
    points = tsne.fit_transform(z[view.index])
    return replace(view, points=points, axis_names=["t-SNE 1", "t-SNE 2"],
                   title=f"{what}, t-SNE to 2-D; {f'{m:,} of ' if m < n else ''}{n:,} {images}{colours}")


def kmeans_clusters(z: np.ndarray, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """The k-means cluster of each code ``z (N, d)`` and the clusters' names.

    ``k`` is about ``sqrt(N / 2)``, at most :data:`CLUSTERS`; the clustering is seeded.
    """
    from sklearn.cluster import KMeans

    k = min(CLUSTERS, max(1, round(math.sqrt(len(z) / 2))))  # a rule of thumb: few points, few clusters
    clusters = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(z) if len(z) else np.zeros(0, int)
    return clusters, [f"cluster {c}" for c in range(k)]
