"""The picture files of a run directory, drawn from the saved model, its data and its records.

``aekit train`` calls :func:`draw_pictures` at the end of training; ``aekit plot`` and
``aekit report`` call it on a saved run. Each picture is one entry of :data:`DRAWERS`:

- ``recon``: ``recon.gif`` from the snapshots in ``recon/`` and ``recon.png``, test
  images over their reconstructions by the final model;
- ``latent``: ``latent.png`` and ``latent.html`` (interactive, plotly.js inside);
- ``manifold``: ``manifold.png``, for 2-D codes only;
- ``loss``: ``loss.png``;
- ``grid``: ``grid.png``, an m×n grid of test images, or with ``recon`` of their
  reconstructions, ``grid_recon.png`` (on request; :func:`grid_file`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from aekit.errors import ConfigError
from aekit.io import atomic_write

PICTURES = ("recon", "latent", "manifold", "loss")  # what a run gets by default
WHATS = (*PICTURES, "grid")


def parse_grid_size(text: str) -> tuple[int, int]:
    """``"8x8"`` (or ``"8"``) to ``(rows, cols)``."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:[x×*]\s*(\d+))?\s*", str(text))
    if not m or int(m.group(1)) < 1 or (m.group(2) is not None and int(m.group(2)) < 1):
        raise ConfigError(f"n: expected a grid size like 8x8, got {text!r}", params=("n",))
    rows = int(m.group(1))
    return rows, int(m.group(2) or rows)


@dataclass
class _Context:
    """One run being drawn: model, data, options, and the test codes (encoded once, shared)."""

    run: object
    data: object
    n: object = None
    projection: str = "pca"
    recon: bool = False
    _view: object = field(default=None, repr=False)

    @property
    def path(self) -> Path:
        return Path(self.run.path)

    def view(self):
        if self._view is None:
            from aekit.visualization.latent import latent_view

            z = self.run.encode(self.data.x_test)
            self._view = latent_view(z, self.data.y_test, self.data.class_names, self.projection)
        return self._view


def _save(fig, path: Path) -> Path:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=fig.dpi, bbox_inches="tight"))
    return path


def _draw_recon(ctx: _Context) -> list[Path]:
    from aekit.visualization.animation import write_recon_gif
    from aekit.visualization.plots import plot_reconstructions

    written = []
    if (ctx.path / "recon").is_dir():
        written.append(write_recon_gif(ctx.path / "recon", ctx.path / "recon.gif"))
    count = ctx.run.config.train.snapshot_images if ctx.n is None else _positive(ctx.n, "recon")
    written.append(_save(plot_reconstructions(ctx.run, ctx.data, count), ctx.path / "recon.png"))
    return written


def _draw_latent(ctx: _Context) -> list[Path]:
    from aekit.visualization.interactive import interactive_codes, write_figure_html
    from aekit.visualization.plots import plot_codes

    view = ctx.view() if ctx.n is None else ctx.view().subset(_positive(ctx.n, "latent"))
    return [_save(plot_codes(view), ctx.path / "latent.png"),
            write_figure_html(interactive_codes(view), ctx.path / "latent.html")]


def _draw_manifold(ctx: _Context) -> list[Path]:
    from aekit.visualization.latent import code_extent
    from aekit.visualization.plots import plot_manifold

    n = 20 if ctx.n is None else _positive(ctx.n, "manifold")
    return [_save(plot_manifold(ctx.run, n=n, extent=code_extent(ctx.view().points)), ctx.path / "manifold.png")]


def _draw_loss(ctx: _Context) -> list[Path]:
    from aekit.visualization.plots import plot_loss

    return [_save(plot_loss(ctx.run.metrics), ctx.path / "loss.png")]


def _draw_grid(ctx: _Context) -> list[Path]:
    from aekit.visualization.plots import plot_images

    rows, cols = parse_grid_size("8x8" if ctx.n is None else ctx.n)
    x = ctx.data.x_test[:rows * cols]
    if ctx.recon:
        from aekit.pixels import to_uint8

        x = to_uint8(ctx.run.reconstruct(x), ctx.run.config.data.scale)
    title = f"{'Reconstructions of the first' if ctx.recon else 'The first'} {len(x)} test images"
    return [_save(plot_images(x, rows, cols, title=title), ctx.path / grid_file(ctx.recon))]


def check_recon(what, recon: bool) -> None:
    """``recon`` changes the grid picture only: asked for without it, it is an error, not ignored."""
    if recon and "grid" not in what:
        raise ConfigError("recon: shows reconstructions in the grid picture; add what grid", params=("recon", "what"))


def grid_file(recon: bool = False) -> str:
    """The grid picture's file name: ``grid.png``, or ``grid_recon.png`` for the reconstructions."""
    return "grid_recon.png" if recon else "grid.png"


def _positive(n, what: str) -> int:
    try:
        value = int(n)
    except (TypeError, ValueError):
        raise ConfigError(f"n: {what} takes a whole number, got {n!r}", params=("n",)) from None
    if value < (2 if what == "manifold" else 1):
        raise ConfigError(f"n: {what} needs at least {2 if what == 'manifold' else 1}, got {value}", params=("n",))
    return value


def draw_worst(run, data, worst: list[dict], path: str | Path | None = None) -> Path:
    """``worst.png``: one row per image of ``worst`` (an evaluation summary's ``anomaly.worst``): the test
    image, its reconstruction and what names it, its test index, file, class and error (Pillow only).
    """
    from aekit.visualization.images import captioned_pairs, save_png

    originals = data.x_test[np.asarray([w["index"] for w in worst], dtype=np.int64)]
    upscale = max(1, min(4, -(-_ROW_HEIGHT // originals.shape[2])))  # rows tall enough for two lines of text
    grid = captioned_pairs(originals, run.reconstruct(originals), [_caption(w) for w in worst],
                           run.config.data.scale, upscale=upscale)
    return save_png(grid, path or Path(run.path) / "worst.png")


_ROW_HEIGHT = 56  # pixels, at least, of one image in worst.png
_CAPTION_WIDTH = 48  # characters of a file path shown; a longer one keeps its end


def _caption(w: dict) -> str:
    file = w.get("file", "")
    if len(file) > _CAPTION_WIDTH:
        file = "..." + file[-_CAPTION_WIDTH + 3:]
    name = f"class {w['class']}" if "class" in w else f"label {w['label']}" if "label" in w else ""
    return f"#{w['index']} {file}".strip() + "\n" + ", ".join(filter(None, [name, f"MSE {w['error']:.4f}"]))


def draw_clusters(result, data, directory: str | Path, members: int = 8, projection: str = "pca") -> list[Path]:
    """The pictures of a clustering (an :class:`aekit.api.ClusterResult` of ``data``) into ``directory``.

    - ``members.png``: one row per cluster, its ``members`` most typical images (nearest its
      centre) on the left, its least typical (farthest) on the right;
    - ``codes.png``: the clustered codes coloured by cluster (projected as ``latent.png`` is).
    """
    from aekit.visualization.latent import latent_view
    from aekit.visualization.plots import plot_cluster_members, plot_codes

    directory = Path(directory)
    clustering, codes = result.clustering, result.codes
    images = {"train": data.x_train, "test": data.x_test}

    def pick(rows: np.ndarray) -> np.ndarray:  # images of clustered rows, (len(rows), C, H, W) uint8
        return np.stack([images[codes["split"][i]][codes["index"][i]] for i in rows]) if len(rows) else np.zeros(0)

    pairs = [tuple(pick(part) for part in clustering.members(c, members)) for c in range(clustering.n_clusters_)]
    labels = [f"{c} ({size:,})" for c, size in enumerate(clustering.sizes)]
    title = (f"{result.method_name}, k = {clustering.n_clusters_}: each cluster's {members} most typical members "
             f"(left) and {members} least typical (right)")
    written = [_save(plot_cluster_members(pairs, labels, members, title), directory / "members.png")]
    names = [f"cluster {c}" for c in range(clustering.n_clusters_)]
    view = latent_view(codes["z"], clustering.labels_, names, projection, images=f"images ({result.split})")
    view.color_by, view.title = "cluster", f"{view.title}, coloured by {result.method_name} cluster"
    return written + [_save(plot_codes(view), directory / "codes.png")]


DRAWERS: dict[str, Callable[[_Context], list[Path]]] = {
    "recon": _draw_recon, "latent": _draw_latent, "manifold": _draw_manifold, "loss": _draw_loss, "grid": _draw_grid,
}


def draw_pictures(run, data=None, what=PICTURES, *, n=None, projection: str = "pca", recon: bool = False,
                  report: bool = False) -> list[Path]:
    """Draw the pictures named in ``what`` into ``run.path``; with ``report``, then ``report.html``.

    ``run`` is an :class:`aekit.Run`; ``data`` its dataset (loaded when not given).
    ``n`` sizes one picture: images in ``recon``, points in ``latent``, the grid side in
    ``manifold``, ``"MxN"`` in ``grid`` (``recon=True`` shows reconstructions there).
    ``manifold`` is skipped for codes that are not 2-D unless it is the only picture
    asked for, which is then an error, as is ``recon`` without ``grid``. Returns the
    paths written, each once.
    """
    what = (what,) if isinstance(what, str) else tuple(what)
    for w in what:
        if w not in DRAWERS:
            raise ConfigError(f"what: {w!r} is not allowed; choose one of: {', '.join(WHATS)}", params=("what",))
    check_recon(what, recon)
    latent_dim = run.model.code_size  # the flat code's width
    if "manifold" in what and latent_dim != 2:
        if what == ("manifold",):
            raise ConfigError(f"what manifold: needs a 2-D code; this run's code is {latent_dim}-D", params=("what",))
        what = tuple(w for w in what if w != "manifold")
    ctx = _Context(run, data if data is not None else run.load_data(), n, projection, recon)
    written: list[Path] = []
    for w in what:
        written += DRAWERS[w](ctx)
    if report:
        from aekit.visualization.interactive import interactive_codes
        from aekit.visualization.report import write_report

        written.append(write_report(ctx.path, interactive_codes(ctx.view())))
    return written
