"""aekit: train, evaluate and look inside autoencoders on image data.

>>> import aekit
>>> run = aekit.train("classic-3d-tanh", dataset="mnist-sample", epochs=1)  # doctest: +SKIP
>>> same = aekit.load_run(run.path)  # doctest: +SKIP

Heavy modules (torch) load on first use, so ``import aekit`` and ``aekit --help`` stay fast.
"""

__version__ = "0.1.0"

_LAZY = {"train": "aekit.api", "load_run": "aekit.api", "Run": "aekit.api", "evaluate": "aekit.api",
         "cluster": "aekit.api", "few_labels": "aekit.api", "build_config": "aekit.resolve"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aekit' has no attribute {name!r}")


__all__ = ["train", "load_run", "Run", "build_config", "evaluate", "cluster", "few_labels", "__version__"]
