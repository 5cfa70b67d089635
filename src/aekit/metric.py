"""A metric, declared once: its ``eval.json`` key, its row label, which way is better, what it needs, its help.

The built-in metrics are declared in :mod:`aekit.evaluation.declared`; a model adds its own by
returning :class:`Metric` objects from ``AutoEncoder.metrics()``. ``eval.json``, the table
(:func:`aekit.evaluation.table.eval_rows`), the report and ``aekit eval --help`` all read
these declarations, so a metric is added in one place. Torch-free and free of aekit's other
modules, so that models (which must not import evaluation) and the CLI's help can import it.

>>> Metric("usage", "codebook usage", "higher", "share of code vectors used", needs="model",
...        function=lambda run, data: 1.0).arrow
'↑'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

DIRECTIONS = ("higher", "lower")
# reconstruction: the test images and their reconstructions; labels: codes scored against labels
# (skipped on unlabeled data); model: the run itself, called as function(run, data) -> float
NEEDS = ("reconstruction", "labels", "model")
_ARROWS = {"higher": "↑", "lower": "↓"}


@dataclass(frozen=True)
class Metric:
    """One metric.

    ``key`` names it in ``eval.json``'s results; ``label`` is its row in the table and the
    report; ``direction`` is ``"higher"`` or ``"lower"`` (is better); ``help`` one sentence for
    ``aekit eval --help``; ``needs`` one of :data:`NEEDS`; ``fmt`` the number format in the
    table. ``function`` computes it: for ``needs="model"``, ``function(run, data) -> float``
    with the :class:`~aekit.api.Run` and the evaluated :class:`~aekit.data.ImageData`; the
    built-in reconstruction and label metrics are computed by the evaluation suite's
    sections (one k-means gives three of them), and their ``function`` names the routine.
    """

    key: str
    label: str
    direction: str
    help: str
    needs: str = "reconstruction"
    function: Callable[..., float] | None = None
    fmt: str = ".4f"

    def __post_init__(self):
        if not self.key.isidentifier():
            raise ValueError(f"metric key {self.key!r}: must be a Python identifier (it is an eval.json key)")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"metric {self.key}: direction {self.direction!r}; choose one of: {', '.join(DIRECTIONS)}")
        if self.needs not in NEEDS:
            raise ValueError(f"metric {self.key}: needs {self.needs!r}; choose one of: {', '.join(NEEDS)}")
        if not self.label.strip() or not self.help.strip():
            raise ValueError(f"metric {self.key}: give it a label and a help sentence")

    @property
    def arrow(self) -> str:
        """``↑`` when higher is better, ``↓`` when lower is."""
        return _ARROWS[self.direction]

    def describe(self) -> dict[str, Any]:
        """What ``eval.json`` records of a metric a model contributed, so that the table and the report
        can show it without the model: ``{"label", "direction", "help", "needs", "fmt"}``.
        """
        return {"label": self.label, "direction": self.direction, "help": self.help, "needs": self.needs,
                "fmt": self.fmt}

    @classmethod
    def from_description(cls, key: str, described: dict) -> "Metric":
        """A metric back from :meth:`describe` (without its function)."""
        needs = described.get("needs")
        return cls(key, str(described.get("label") or key), str(described.get("direction", "higher")),
                   str(described.get("help") or key), needs=needs if needs in NEEDS else "model",
                   fmt=str(described.get("fmt", ".4f")))


__all__ = ["DIRECTIONS", "NEEDS", "Metric"]
