"""Pictures of runs: figures from a model and data, the files of a run directory, the report.

>>> from aekit import visualization as vis
>>> run = aekit.load_run("runs/demo"); data = run.load_data()  # doctest: +SKIP
>>> vis.plot_latent(run, data).savefig("latent.png")           # matplotlib Figure  # doctest: +SKIP
>>> vis.interactive_latent(run, data).show()                   # plotly Figure  # doctest: +SKIP
>>> vis.plot_images(data.x_test, 3, 5)                         # the seeds' display(data, m, n)  # doctest: +SKIP

Modules: ``images`` and ``snapshots`` (Pillow only: the training-time callback),
``animation`` (recon.gif), ``latent`` (codes and projections), ``plots`` (matplotlib),
``interactive`` (plotly), ``pictures`` (a run directory's files), ``report`` (report.html).
Names load on first use, so importing the training-time callback never imports
matplotlib or plotly. Nothing under ``aekit.models`` or ``aekit.training`` imports this package.
"""

_LAZY = {
    "plot_images": "plots", "plot_reconstructions": "plots", "plot_latent": "plots", "plot_codes": "plots",
    "plot_manifold": "plots", "plot_loss": "plots",
    "interactive_latent": "interactive", "interactive_codes": "interactive",
    "latent_view": "latent", "LatentView": "latent",
    "image_grid": "images",
    "draw_pictures": "pictures", "write_report": "report", "build_report": "report",
    "ReconSnapshots": "snapshots", "write_recon_gif": "animation",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"aekit.visualization.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'aekit.visualization' has no attribute {name!r}")


__all__ = sorted(_LAZY)
