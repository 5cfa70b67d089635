"""aekit where other tools live: scikit-learn, anomaly detection, TensorBoard, ONNX and TorchScript.

- :mod:`~aekit.integrations.sklearn`: :class:`AutoencoderTransformer`, a scikit-learn
  estimator (``fit``/``transform``/``inverse_transform``/``score``) on any ``(N, D)`` features;
- :mod:`~aekit.integrations.anomaly`: :class:`AnomalyDetector` with PyOD's detector
  conventions, and the one-class protocol of ``aekit eval --one-class``;
- :mod:`~aekit.integrations.tensorboard`: a training callback writing TensorBoard event files;
- :mod:`~aekit.integrations.live`: a training callback redrawing a matplotlib window;
- :mod:`~aekit.integrations.export`: the encoder and decoder as ONNX or TorchScript files.

The two estimators are imported from :mod:`aekit.sklearn`, the documented path. The
third-party libraries these parts need beyond aekit's own are optional extras; a
missing one is an :class:`~aekit.errors.AekitError` naming the install command
(:func:`require`). Nothing is imported here, so ``import aekit.integrations`` costs nothing.
"""

from __future__ import annotations

import importlib

from aekit.errors import AekitError


def require(module: str, extra: str, what: str, params: tuple[str, ...] = ()):
    """Import ``module``, or raise an :class:`AekitError` saying which extra installs it; ``what`` needs it, and
    ``params`` are the parameters ``what`` names (see :class:`~aekit.errors.AekitError`).

    >>> require("json", "none", "reading JSON").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise AekitError(f"{what} needs aekit's {extra} extra: pip install 'aekit[{extra}]'", params=params) from None


__all__ = ["require"]
