"""Evaluation: how good a model's codes and reconstructions are, against PCA and raw pixels.

- :mod:`~aekit.evaluation.metrics`: reconstruction metrics (MSE, BCE, PSNR, SSIM) and
  clustering agreement (Hungarian-matched accuracy, NMI, ARI), pure functions on arrays;
- :mod:`~aekit.evaluation.probes`: k-means, kNN, logistic and semi-supervised probes;
- :mod:`~aekit.evaluation.suite`: the whole evaluation and its baselines (:func:`evaluate`);
- :mod:`~aekit.evaluation.table`: summaries rendered as Markdown text.

Nothing here writes files or plots; ``aekit.run_eval`` connects a run directory,
the data and the baseline cache, and the CLI writes ``eval.json``.
"""

from aekit.evaluation.suite import EvalSettings, Evaluation, evaluate, from_json, to_json
from aekit.evaluation.table import eval_table

__all__ = ["EvalSettings", "Evaluation", "eval_table", "evaluate", "from_json", "to_json"]
