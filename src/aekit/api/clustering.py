"""Clustering a run's images by their codes: :func:`cluster` and :func:`save_clustering`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aekit import io
from aekit.api.load import _as_run
from aekit.api.run import Run, _whole
from aekit.api.writers import CODE_FIELDS, _csv, encode_split
from aekit.errors import ConfigError
from aekit.io import Log
from aekit.rundir import RunDir


@dataclass
class ClusterResult:
    """A run's images grouped by their codes (:func:`cluster`).

    ``codes`` is :func:`encode_split`'s dict of the clustered images (``z``, ``split``,
    ``index``, ``file``, ``label``, ``class``; for ``idec``/``dec``, ``z`` the refined codes); ``clustering`` the
    :class:`~aekit.evaluation.clustering.Clustering` (labels, probabilities, distances, how k
    was chosen); ``scores`` the accuracy/NMI/ARI of the method and the k-means baselines when
    the images have labels, else ``None``; ``summary`` what ``clusters.json`` holds.
    """

    codes: dict[str, np.ndarray]
    clustering: Any
    scores: dict[str, dict[str, float]] | None
    summary: dict
    split: str = "all"
    refined: Any = None  # dec / idec: the Refined (refined encoder and centroids), saved beside the clusters

    @property
    def labels_(self) -> np.ndarray:
        """``(N,)`` the cluster of each image, in the order of ``codes``."""
        return self.clustering.labels_

    @property
    def probabilities_(self) -> np.ndarray:
        """``(N,)`` the mixture's probability of each image's cluster."""
        return self.clustering.probabilities_

    @property
    def n_clusters_(self) -> int:
        return self.clustering.n_clusters_

    @property
    def method_name(self) -> str:
        from aekit.evaluation.clustering import ALL_METHODS

        return ALL_METHODS[self.clustering.method]


def cluster(run, k: int | None = None, *, method: str = "n2d", split: str = "all", dataset: str | None = None,
            data_dir: str | None = None, which: str = "auto", seed: int = 0, k_max: int | None = None,
            log: Log | None = None, data=None) -> ClusterResult:
    """Group a run's images (``split``: ``all``, ``train`` or ``test``) by their codes, without labels.

    ``method`` is ``"n2d"`` (UMAP, then a Gaussian mixture; needs the ``cluster`` extra),
    ``"n2d-merge"`` (the same embedding over-clustered, then merged into groups of comparable size),
    ``"gmm"`` (a Gaussian mixture on the codes), or ``"idec"`` / ``"dec"`` (a copy of the encoder
    trained further with a clustering loss: :mod:`aekit.training.deep_clustering`); ``k`` clusters,
    or when ``None`` the ``k`` in ``2..k_max`` (default 15) that the method's criterion picks
    (:mod:`aekit.evaluation.clustering`). Labels,
    where the data has them, only score the result: accuracy (Hungarian), NMI and ARI next to
    k-means with the same ``k`` on the codes and on PCA of the pixels.

    >>> result = aekit.cluster("runs/demo", k=10)  # doctest: +SKIP
    >>> result.labels_[:5], result.scores["N2D (UMAP + GMM)"]["acc"]  # doctest: +SKIP
    """
    import time

    from aekit.evaluation import clustering as methods

    log = log or io.log
    run = _as_run(run, which)
    if method not in methods.ALL_METHODS:
        raise ConfigError(f"method: {method!r} is not allowed; choose one of: {', '.join(methods.ALL_METHODS)}",
                          params=("method",))
    if method in methods.MANIFOLD:  # before the slow part: a missing extra is one line now, not after encoding
        from aekit.integrations import require

        require("umap", "cluster", f"method {method} (UMAP)", params=("method",))
    data = data if data is not None else run.load_data(log, dataset, data_dir)
    start = time.perf_counter()
    log(f"encoding {'all the' if split == 'all' else 'the ' + split} images of {data.name}")
    codes = encode_split(run, data, split)
    k_max = methods.K_MAX if k_max is None else k_max
    refined = None
    if method in methods.REFINING:
        images = np.concatenate([x for name, x in (("train", data.x_train), ("test", data.x_test))
                                 if split in (name, "all")])
        found, refined = methods.cluster_by_refining(run.model, images, codes["z"], k, method=method, seed=seed,
                                                     k_max=k_max, scale=run.scale, log=log)
    else:
        found = methods.cluster_codes(codes["z"], k, method=method, seed=seed, k_max=k_max, log=log)
    scores = None
    if data.labeled:
        pixels = np.concatenate([x for name, x in (("train", data.x_train), ("test", data.x_test))
                                 if split in (name, "all")])  # uint8: PCA reads them in chunks
        scores = methods.compare(codes["label"], found, codes["z"], pixels, seed, log=log)
    if refined is not None:  # from here on (codes.png, result.codes) the codes are the refined encoder's
        codes = {**codes, "z": refined.codes_}
    summary = {"format": "aekit-clusters/1",
               "run": {"path": str(run.path), "checkpoint": run.weights, "preset": run.config.preset,
                       "model": run.config.model.model, "latent_dim": run.config.model.latent_dim},
               "data": {"dataset": data.name, "split": split, "images": len(found.labels_),
                        "labeled": data.labeled},
               "method": method, "method_name": methods.ALL_METHODS[method], "params": found.params,
               "k": found.n_clusters_, "k_chosen_by": found.k_chosen_by, "why_k": found.why_k(),
               "k_scores": {str(j): v for j, v in found.k_scores_.items()}, "sizes": found.sizes,
               **({"scores": scores} if scores is not None else {}),
               "seconds": round(time.perf_counter() - start, 2)}
    return ClusterResult(codes, found, scores, summary, split, refined)


def _save_refined(refined, path: Path) -> Path:
    """The refined autoencoder's weights (``autoencoder.*``) and the ``centroids`` as one safetensors file."""
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in refined.module.state_dict().items()}
    meta = {"format": "aekit-refined/1", "method": refined.module.variant, "k": str(refined.module.n_clusters)}
    io.atomic_write_bytes(path, save(state, metadata=meta))
    return path


def save_clustering(run: Run, result: ClusterResult, data, out: str | Path | None = None, members: int = 8,
                    projection: str = "pca") -> list[Path]:
    """Write a clustering into ``run``'s ``cluster/`` (or ``out``): ``clusters.json``, ``assignments.csv`` (one
    row per image: ``split,index,file,label,class,cluster,probability,distance``), ``members.png`` and
    ``codes.png`` (:func:`aekit.visualization.pictures.draw_clusters`); into the run's own ``cluster/``, it
    also refreshes ``report.html`` when the run has one. Returns the paths written.
    """
    from aekit.visualization.pictures import draw_clusters

    codes, found = result.codes, result.clustering
    rows = ([*(codes[name][i].item() for name in CODE_FIELDS), int(found.labels_[i]),
             f"{found.probabilities_[i]:.6g}", f"{found.distances_[i]:.6g}"] for i in range(len(found.labels_)))
    text = _csv([*CODE_FIELDS, "cluster", "probability", "distance"], rows)
    written = run.dir.write_clusters(result.summary, text, out)
    if result.refined is not None:  # the refined encoder lives with its clusters, never over the run's weights
        written.append(_save_refined(result.refined, run.dir.cluster_dir(out) / f"{found.method}.safetensors"))
    written += draw_clusters(result, data, run.dir.cluster_dir(out), members, projection)
    if out is None and run.dir.file(RunDir.REPORT):  # the report shows the run's own clustering
        from aekit.visualization.pictures import draw_pictures

        written += draw_pictures(run, data, what=(), report=True)
    return written


def few_labels(run, labels: int = 100, *, method: str = "cluster", space: str = "umap", unlabelled: str = "all",
               seed: int = 0, dataset: str | None = None, data_dir: str | None = None, which: str = "auto",
               log: Log | None = None, data=None):
    """Test accuracy from ``labels`` labelled training images and the unlabelled ones (``"all"``, or the
    ``"test"`` images only): cluster-then-label (``method="cluster"``) or label spreading (``"spreading"``)
    over the run's codes (on their UMAP embedding, ``space="umap"``, which needs the ``cluster`` extra; or
    on the codes), next to logistic regression on the labelled codes and on their pixels
    (:mod:`aekit.evaluation.fewlabels`). Returns its :class:`~aekit.evaluation.fewlabels.FewLabels`.

    >>> aekit.few_labels("runs/demo", 100).scores  # doctest: +SKIP
    """
    from aekit.evaluation.fewlabels import run_few_labels

    log = log or io.log
    run = _as_run(run, which)
    if space == "umap":
        from aekit.integrations import require

        require("umap", "cluster", "space umap", params=("space",))
    data = data if data is not None else run.load_data(log, dataset, data_dir)
    return run_few_labels(run, data, _whole(labels, "labels"), method=method, space=space, unlabelled=unlabelled,
                          seed=seed, log=log)
