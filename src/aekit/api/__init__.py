"""The Python API: :func:`train`, :func:`load_run`, :func:`evaluate` and the :class:`Run` they return.

This is where data, model, trainer and callbacks are wired into a run directory, and
where a saved run is read back and put to use. The CLI is a thin layer over it: it
parses flags, calls these functions and prints.

>>> run = aekit.train("classic-2d-relu", dataset="mnist-sample", epochs=1, out="runs/demo")  # doctest: +SKIP
>>> codes = run.encode(run.load_data().x_test)  # doctest: +SKIP
>>> result = aekit.evaluate("runs/demo")  # doctest: +SKIP

The package's modules, one job each: :mod:`~aekit.api.run` (the :class:`Run` and what it draws),
:mod:`~aekit.api.fit` (training and resume), :mod:`~aekit.api.load` (loading, reading older configs),
:mod:`~aekit.api.evaluation`, :mod:`~aekit.api.clustering` and :mod:`~aekit.api.writers` (scores and codes files).
"""

from aekit.api.clustering import ClusterResult, cluster, few_labels, save_clustering
from aekit.api.evaluation import evaluate, save_evaluation
from aekit.api.fit import RESUMABLE, train  # noqa: F401 - RESUMABLE: aekit.api's name before the split
from aekit.api.load import load_run, saved_config  # noqa: F401 - saved_config: likewise
from aekit.api.run import MAX_DRAWN, Run  # noqa: F401 - MAX_DRAWN: likewise
from aekit.api.writers import CODE_FIELDS, SPLITS, encode_split, write_codes, write_scores  # noqa: F401
from aekit.resolve import build_config
from aekit.rundir import RunDir  # noqa: F401 - aekit.api.RunDir, as before the split

__all__ = ["ClusterResult", "Run", "build_config", "cluster", "encode_split", "evaluate", "few_labels", "load_run",
           "save_clustering", "save_evaluation", "train", "write_codes", "write_scores"]
