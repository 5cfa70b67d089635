"""A matplotlib window that redraws while a model trains (``aekit train --live``), as the first seed does.

The top of the window holds fixed test images (every class in turn) over their
reconstructions, redrawn as training runs (at most every ``every_seconds``); the
bottom holds the codes of test images, redrawn at the end of every epoch: a 3-D
cloud for a 3-D code (rotatable with the mouse), a 2-D scatter for a 2-D code, and
a PCA projection to 2-D past that (see :func:`aekit.visualization.latent.latent_view`).

Without a display (no GUI backend: a server, a container, ``MPLBACKEND=Agg``)
:meth:`LiveWindow.for_data` says so in one line and returns a callback that does
nothing; training goes on.
The drawing itself is :class:`LiveFigure`, which draws into any matplotlib figure.
"""

from __future__ import annotations

import time

import numpy as np

from aekit.training import Callback

CODE_POINTS = 1000  # test images whose codes are drawn: enough for the shape, few enough to redraw fast


def display_available() -> bool:
    """Whether matplotlib's backend (the one pyplot would pick) opens windows."""
    import matplotlib

    try:
        from matplotlib.backends import BackendFilter, backend_registry

        interactive = backend_registry.list_builtin(BackendFilter.INTERACTIVE)
    except ImportError:  # matplotlib < 3.9
        from matplotlib.rcsetup import interactive_bk as interactive
    return matplotlib.get_backend().lower() in interactive


class LiveFigure:
    """Draws reconstructions (top) and codes (bottom) into ``figure``, updating in place.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
    scale : str
        The model's pixel scale (see :mod:`aekit.pixels`).
    """

    def __init__(self, figure, scale: str = "unit"):
        self.figure = figure
        self.scale = scale
        self.images_ax = figure.add_axes((0.02, 0.72, 0.96, 0.24))
        self.images_ax.set_axis_off()
        self.codes_ax = None
        self._image = None

    def show_reconstructions(self, originals: np.ndarray, recon: np.ndarray, title: str) -> None:
        """``originals`` (uint8) over ``recon`` (model range), both ``(N, C, H, W)``."""
        from aekit.visualization.images import pair_grid

        grid = pair_grid(originals, recon, self.scale)
        if self._image is None:
            self._image = self.images_ax.imshow(grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            self._image.set_data(grid)
        self.images_ax.set_title(title, fontsize=11)

    def show_codes(self, view) -> None:
        """A :class:`~aekit.visualization.latent.LatentView` of 1 to 3 dimensions, coloured by class."""
        from aekit.visualization.latent import categorical, class_colors
        from aekit.visualization.plots import class_legend

        if self.codes_ax is not None:
            self.codes_ax.remove()
        rect = (0.08, 0.05, 0.84, 0.6)
        self.codes_ax = ax = self.figure.add_axes(rect, projection="3d" if view.dims == 3 else None)
        palette = class_colors(len(view.class_names))
        points = view.points if view.dims > 1 else np.column_stack([view.points[:, 0], view.labels])
        ax.scatter(*points.T, c=np.array(palette)[view.labels], s=8, alpha=0.8, linewidths=0)
        if categorical(len(palette)):
            class_legend(ax, view, palette, beside=False)
        ax.set_xlabel(view.axis_names[0])
        ax.set_ylabel(view.axis_names[1] if view.dims > 1 else "class")
        if view.dims == 3:
            ax.set_zlabel(view.axis_names[2])
        ax.set_title(view.title, fontsize=10)


class LiveWindow(Callback):
    """Opens a pyplot window at the start of training and redraws it (see the module docstring).

    Parameters
    ----------
    snapshot_images : ndarray (N, C, H, W) uint8
    code_images : ndarray (M, C, H, W) uint8
    code_labels : ndarray (M,) int, or None for unlabeled images (coloured by k-means cluster)
    scale : str
    class_names : list of str, optional
    every_seconds : float, default 0.5
        The least time between two redraws of the reconstructions during an epoch.
    """

    def __init__(self, snapshot_images, code_images, code_labels, scale: str = "unit",
                 class_names: list[str] | None = None, every_seconds: float = 0.5):
        self.snapshot_images = snapshot_images
        self.code_images = code_images
        self.code_labels = None if code_labels is None else np.asarray(code_labels)  # None: k-means colours
        self.scale = scale
        self.class_names = class_names
        self.every_seconds = every_seconds
        self.live = None  # the LiveFigure while the window is open
        self._last = 0.0

    @classmethod
    def for_data(cls, data, scale: str, log, snapshot_images: int = 10) -> Callback:
        """A window for a dataset's test split; without a display, one line to ``log`` and a callback
        that does nothing.
        """
        import matplotlib

        from aekit.visualization.snapshots import snapshot_indices

        if not display_available():
            log(f"--live: no display to open a window on (matplotlib backend {matplotlib.get_backend().lower()!r}); "
                "training without it")
            return Callback()
        idx = snapshot_indices(data, snapshot_images)
        keep = np.random.default_rng(0).permutation(len(data.x_test))[:CODE_POINTS]
        return cls(data.x_test[idx], data.x_test[keep], data.y_test[keep] if data.labeled else None, scale,
                   data.class_names or None)

    def on_fit_start(self, trainer):
        import matplotlib.pyplot as plt

        plt.ion()
        figure = plt.figure("aekit train --live", figsize=(9, 9))
        self.live = LiveFigure(figure, self.scale)
        self._draw_reconstructions(trainer, "before training")
        plt.show(block=False)
        self._refresh()

    def on_step_end(self, trainer, loss):
        if self.live is not None and time.monotonic() - self._last >= self.every_seconds:
            self._draw_reconstructions(trainer, f"epoch {trainer.epoch}, step {trainer.step}")
            self._refresh()

    def on_epoch_end(self, trainer, metrics):
        if self.live is None:
            return
        from aekit.visualization.latent import code_label, latent_view

        self._draw_reconstructions(trainer, f"after epoch {metrics['epoch']}: test mse {metrics['test_mse']:.4f}")
        codes = trainer.model.encode_images(self.code_images, self.scale)  # (N, code_size): flat codes
        self.live.show_codes(latent_view(codes, self.code_labels, self.class_names, code=code_label(trainer.model)))
        self._refresh()

    def on_fit_end(self, trainer):
        import matplotlib.pyplot as plt

        plt.ioff()

    def _draw_reconstructions(self, trainer, title: str) -> None:
        recon = trainer.model.reconstruct_images(self.snapshot_images, self.scale)
        self.live.show_reconstructions(self.snapshot_images, recon, title)

    def _refresh(self) -> None:
        """Let the GUI draw; a window the user has closed stops the redrawing, not the training."""
        import matplotlib.pyplot as plt

        if not plt.fignum_exists(self.live.figure.number):
            self.live = None
            return
        self.live.figure.canvas.draw_idle()
        plt.pause(0.001)
        self._last = time.monotonic()


__all__ = ["CODE_POINTS", "LiveFigure", "LiveWindow", "display_available"]
