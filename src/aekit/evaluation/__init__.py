"""Evaluation: how good a model's codes and reconstructions are, against PCA and raw pixels.

- :mod:`~aekit.evaluation.metrics`: reconstruction metrics (MSE, BCE, PSNR, SSIM) and
  clustering agreement (Hungarian-matched accuracy, NMI, ARI), pure functions on arrays;
- :mod:`~aekit.evaluation.probes`: k-means, kNN, logistic and semi-supervised probes;
- :mod:`~aekit.evaluation.suite`: the whole evaluation and its baselines (:func:`evaluate`);
- :mod:`~aekit.evaluation.table`: summaries rendered as Markdown text;
- :mod:`~aekit.evaluation.cache`: the baseline cache (JSON files under the aekit cache).

Nothing here plots; only the cache writes files. :func:`aekit.evaluate` connects a
run, its data and the cache, and the run directory keeps ``eval.json``.
"""

from aekit.evaluation.suite import EvalSettings, Evaluation, evaluate, from_json, to_json
from aekit.evaluation.table import eval_table

__all__ = ["EvalSettings", "Evaluation", "eval_table", "evaluate", "from_json", "to_json"]
