"""The baseline cache: PCA and pixel metrics stored once per dataset, code size and settings.

A baseline's numbers depend only on its key (see :func:`aekit.evaluation.suite.baseline_key`),
so they are computed once and kept as JSON files under ``<aekit cache>/baselines/``.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Callable

from aekit.evaluation.suite import row_from_json, row_to_json
from aekit.io import Log, atomic_write, atomic_write_json, quiet


def default_baseline_dir() -> Path:
    from aekit.data import default_cache_dir

    return default_cache_dir() / "baselines"


class BaselineCache:
    """Baseline metrics stored as JSON files under ``root``, one per key, written atomically.

    Called as ``cache(key, compute) -> (metrics, from_cache)``: a file whose stored key
    equals ``key`` is read; otherwise ``compute()`` runs and its result is stored.
    An unreadable entry is recomputed; an unwritable cache is reported through ``log``.
    """

    def __init__(self, root: str | Path | None = None, log: Log | None = None):
        self.root = Path(root) if root is not None else default_baseline_dir()
        self.log = log or quiet

    def path(self, key: dict) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(key.get("dataset", "data")))[-40:]
        kind = f"{key['kind']}{key.get('latent_dim', '')}"
        return self.root / f"{stem}-{kind}-{digest}.json"

    def __call__(self, key: dict, compute: Callable[[], dict]) -> tuple[dict, bool]:
        path = self.path(key)
        try:
            stored = json.loads(path.read_text())
            if stored.get("key") == key:
                return row_from_json(stored["metrics"]), True
        except (OSError, ValueError, KeyError, AttributeError):
            pass  # missing or unreadable: compute it again
        metrics = compute()
        try:
            atomic_write_json(path, {"key": key, "metrics": row_to_json(metrics)})
        except OSError as exc:
            self.log(f"baseline cache {self.root} not writable ({exc.strerror or exc}); not cached")
        return metrics, False

    def arrays(self, key: dict, compute: Callable[[], dict]) -> tuple[dict, bool]:
        """As calling the cache, for a dict of numpy arrays (a fitted PCA), kept as an ``.npz`` beside
        a JSON file with its key.
        """
        import numpy as np

        path = self.path(key)
        try:
            if json.loads(path.read_text()).get("key") == key:
                with np.load(path.with_suffix(".npz"), allow_pickle=False) as stored:
                    return {name: stored[name] for name in stored.files}, True
        except (OSError, ValueError, KeyError, AttributeError):
            pass  # missing or unreadable: compute it again
        arrays = compute()

        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
        try:
            atomic_write(path.with_suffix(".npz"), write)
            atomic_write_json(path, {"key": key})  # last: a key file means its arrays are complete
        except OSError as exc:
            self.log(f"baseline cache {self.root} not writable ({exc.strerror or exc}); not cached")
        return arrays, False
