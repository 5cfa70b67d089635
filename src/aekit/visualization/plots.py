"""Static pictures as matplotlib figures: image grids, the code cloud, the decoder's manifold, the loss.

Every function returns a :class:`matplotlib.figure.Figure` made without pyplot (no
global figure state, no GUI backend); save it with ``fig.savefig(path)``. Functions
that take a ``model`` accept a bare model or an :class:`aekit.Run` (whose pixel
scale is then used); ``data`` is an :class:`aekit.data.ImageData` whose test split
is drawn.

>>> run = aekit.load_run("runs/demo")  # doctest: +SKIP
>>> plot_latent(run, run.load_data()).savefig("latent.png")  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure

from aekit.errors import ConfigError
from aekit.pixels import to_uint8
from aekit.visualization.images import composited, image_grid, pair_grid
from aekit.visualization.latent import (
    LatentView,
    categorical,
    class_colors,
    code_extent,
    code_label,
    latent_view,
    model_and_scale,
)
from aekit.visualization.snapshots import snapshot_indices

DPI = 100
TEXT_POINTS_3D = 1000  # digits drawn as text in 3-D: past this they are an unreadable, slow blur


def _image_figure(array: np.ndarray, inches_per_px: float, title: str | None = None,
                  row_labels: list[str] | None = None, row_height: int | None = None) -> Figure:
    """A figure showing a uint8 mosaic at a fixed size per pixel, axes hidden."""
    h, w = array.shape[:2]
    left = 1.3 if row_labels else 0.1
    top = 0.45 if title else 0.1
    fig = Figure(figsize=(w * inches_per_px + left + 0.1, h * inches_per_px + top + 0.1), dpi=DPI)
    width, height = fig.get_size_inches()
    ax = fig.add_axes((left / width, 0.1 / height, w * inches_per_px / width, h * inches_per_px / height))
    ax.imshow(array, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([] if not row_labels else [(i + 0.5) * row_height for i in range(len(row_labels))],
                  labels=row_labels or [])
    ax.tick_params(length=0, labelsize=11)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=12, y=1 - 0.08 / height, va="top")
    return fig


def plot_images(images, rows: int, cols: int, *, scale: str = "unit", title: str | None = None) -> Figure:
    """The first ``rows * cols`` images in a ``rows x cols`` grid (the seeds' ``display(data, m, n)``).

    ``images``: uint8 ``(N, C, H, W)`` or ``(N, H, W)``, or floats in ``scale``.
    """
    images = to_uint8(images, scale)
    if images.ndim == 3:
        images = images[:, None]
    grid = image_grid(images, rows, cols, pad=2, background=255)
    return _image_figure(grid, inches_per_px=0.8 / images.shape[-1], title=title)


def plot_reconstructions(model, data, n: int = 10, *, scale: str | None = None) -> Figure:
    """``n`` test images (every class in turn) over their reconstructions."""
    model, scale = model_and_scale(model, scale)
    idx = snapshot_indices(data, n)
    x = data.x_test[idx]
    grid = pair_grid(x, model.reconstruct_images(x, scale), scale)
    row_height = grid.shape[0] / 2
    return _image_figure(grid, inches_per_px=0.8 / x.shape[-1], row_labels=["original", "reconstruction"],
                         row_height=row_height)


def plot_cluster_members(rows: list[tuple[np.ndarray, np.ndarray]], row_labels: list[str], m: int,
                         title: str | None = None) -> Figure:
    """One row per cluster: its ``m`` most typical members, a blank cell, then its ``m`` least typical.

    ``rows`` holds each cluster's ``(typical, atypical)`` uint8 images ``(<= m, C, H, W)``; a cluster
    with fewer members leaves blank cells.
    """
    c, h, w = next(x for pair in rows for x in pair if len(x)).shape[1:]
    cells = np.full((len(rows), 2 * m + 1, c, h, w), 255, dtype=np.uint8)  # (clusters, 2m+1, C, H, W)
    for r, (typical, atypical) in enumerate(rows):
        if len(typical):  # an empty side (a cluster of m or fewer members) stays blank
            cells[r, :len(typical)] = typical
        if len(atypical):
            cells[r, m + 1:m + 1 + len(atypical)] = atypical
    grid = image_grid(cells.reshape(-1, c, h, w), len(rows), 2 * m + 1, pad=2, background=255)
    return _image_figure(grid, inches_per_px=0.8 / w, title=title, row_labels=row_labels,
                         row_height=grid.shape[0] / len(rows))


def plot_latent(model, data, *, scale: str | None = None, projection: str = "pca",
                max_points: int | None = None) -> Figure:
    """The codes of the test images, coloured by class (see :func:`plot_codes`)."""
    model, scale = model_and_scale(model, scale)
    view = latent_view(model.encode_images(data.x_test, scale), data.y_test, data.class_names, projection,
                       code=code_label(model))
    return plot_codes(view, max_points=max_points)


def plot_codes(view: LatentView, max_points: int | None = None) -> Figure:
    """Draw a :class:`~aekit.visualization.latent.LatentView`.

    2-D: a scatter coloured by class. 3-D: each point drawn as its class number in
    that class's colour (the seeds' picture; at most 1,000 points, picked at random).
    1-D: the code along x, one named row per class. For unlabeled images the classes are
    the k-means clusters of the view (see ``view.color_by``). Up to 20 classes get a
    categorical palette and a legend naming them; more, a rainbow and a colour bar
    (:func:`~aekit.visualization.latent.class_colors`).
    """
    if view.dims == 3:
        max_points = TEXT_POINTS_3D if max_points is None else max_points
    total = len(view.points)
    view = view.subset(max_points)
    title = view.title if len(view.points) == total else f"{view.title} ({len(view.points):,} drawn)"
    k = len(view.class_names)
    colors = class_colors(k)
    cmap = ListedColormap(colors)
    norm = BoundaryNorm(np.arange(-0.5, k), k)
    if view.dims == 3:
        fig = Figure(figsize=(8.5, 7.5), dpi=DPI)
        fig.subplots_adjust(left=0.0, right=0.92, bottom=0.03, top=0.95)
        ax = fig.add_subplot(projection="3d")
        for (x, y, z), c in zip(view.points, view.labels):
            ax.text(x, y, z, str(c), color=colors[c], fontsize=8, fontweight="bold", ha="center", va="center")
        for axis, lo, hi in zip("xyz", view.points.min(0), view.points.max(0)):
            getattr(ax, f"set_{axis}lim")(lo, hi)
        ax.set_xlabel(view.axis_names[0])
        ax.set_ylabel(view.axis_names[1])
        ax.set_zlabel(view.axis_names[2])
        mappable = ScalarMappable(norm=norm, cmap=cmap)
    else:
        fig = Figure(figsize=(8.5, 7) if view.dims == 2 else (8.5, 5), dpi=DPI)
        ax = fig.add_subplot()
        if view.dims == 2:
            x, y = view.points[:, 0], view.points[:, 1]
            ax.set_ylabel(view.axis_names[1])
        else:  # 1-D: spread each class over its own row
            x = view.points[:, 0]
            y = view.labels + np.random.default_rng(0).uniform(-0.3, 0.3, len(x))
            ax.set_yticks(range(k), labels=view.class_names)
            ax.set_ylabel(view.color_by)
        mappable = ax.scatter(x, y, c=view.labels, cmap=cmap, norm=norm, s=14, alpha=0.85, linewidths=0)
        ax.set_xlabel(view.axis_names[0])
        ax.grid(alpha=0.25)
    if view.dims == 1:
        pass  # the rows are named on the y axis
    elif categorical(k):
        class_legend(ax, view, colors)
    else:
        cbar = fig.colorbar(mappable, ax=ax, **({"shrink": 0.6, "pad": 0.08} if view.dims == 3 else {"pad": 0.02}))
        cbar.set_ticks(range(k), labels=view.class_names)
        cbar.ax.tick_params(length=0)
        cbar.set_label(view.color_by)
    ax.set_title(title, fontsize=12)
    return fig


def class_legend(ax, view: LatentView, colors: list[str], beside: bool = True) -> None:
    """A legend with one entry per class: its colour and its name; ``beside`` the axes, or inside them.

    The points stay one scatter in data order (drawing class by class would hide the
    first classes under the last), so the entries are stand-in markers. In 3-D a point
    is drawn as its class number, so an entry whose name is not that number shows both.
    """
    from matplotlib.lines import Line2D

    labels = [name if view.dims != 3 or name == str(c) else f"{c}: {name}" for c, name in enumerate(view.class_names)]
    handles = [Line2D([], [], linestyle="", marker="o", markersize=7, color=color) for color in colors]
    where = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0} if beside else {"loc": "best"}
    ax.legend(handles, labels, title=view.color_by, frameon=not beside, handletextpad=0.3,
              fontsize=None if beside else 8, **where)


def plot_manifold(model, data=None, *, n: int = 20, scale: str | None = None,
                  extent: tuple[float, float, float, float] | None = None) -> Figure:
    """The decoder's output over an ``n x n`` grid of a 2-D code plane: how digits morph across the map.

    The grid spans ``extent = (z1_min, z1_max, z2_min, z2_max)``, by default the 1st to
    99th percentile of the test codes in ``data`` on each axis. Rows go from high ``z2``
    (top) to low, as on the scatter's y axis.
    """
    model, scale = model_and_scale(model, scale)
    if model.code_size != 2:
        raise ConfigError(f"manifold: needs a 2-D code; this model's code is {model.code_size}-D")
    if n < 2:
        raise ConfigError(f"manifold: n must be >= 2, got {n}")
    if extent is None:
        if data is None:
            raise ValueError("plot_manifold: give data (to span the test codes) or an extent")
        extent = code_extent(model.encode_images(data.x_test, scale))
    x0, x1, y0, y1 = extent
    zx, zy = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y1, y0, n))  # top row: highest z2
    images = to_uint8(model.decode_codes(np.stack([zx.ravel(), zy.ravel()], 1)), scale)  # (n*n, C, H, W)
    images = composited(images)  # RGBA over a checkerboard
    c, h, w = images.shape[1:]
    mosaic = images.reshape(n, n, c, h, w).transpose(2, 0, 3, 1, 4).reshape(c, n * h, n * w)  # (C, nH, nW)
    fig = Figure(figsize=(8.2, 7.6), dpi=DPI)
    ax = fig.add_subplot()
    if c == 1:
        ax.imshow(mosaic[0], cmap="gray", vmin=0, vmax=255, extent=(x0, x1, y0, y1), aspect="auto",
                  interpolation="nearest")
    else:
        ax.imshow(mosaic.transpose(1, 2, 0), extent=(x0, x1, y0, y1), aspect="auto", interpolation="nearest")
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    ax.set_title(f"Decoder output over a {n}×{n} grid of the code plane", fontsize=12)
    return fig


def plot_loss(metrics: list[dict]) -> Figure:
    """Train and test loss per epoch from ``metrics.jsonl`` rows; log scale when they span a decade or more."""
    if not metrics:
        raise ConfigError("loss: the run has no finished epoch (metrics.jsonl is empty)")
    epochs = [m["epoch"] for m in metrics]
    fig = Figure(figsize=(8, 4.8), dpi=DPI)
    ax = fig.add_subplot()
    values = []
    for key, name, style in (("train_loss", "train", "-o"), ("test_loss", "test", "-s")):
        ys = [m[key] for m in metrics if key in m]
        if ys:
            ax.plot(epochs[:len(ys)], ys, style, label=name, markersize=4)
            values += ys
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) >= 10:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("Loss per epoch", fontsize=12)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    if len(epochs) < 15:
        ax.set_xticks(epochs)
    return fig
