"""Loading a saved run, and reading configs written by an older aekit."""

from __future__ import annotations

from pathlib import Path

from aekit.api.run import Run
from aekit.resolve import build_config
from aekit.rundir import RunDir


def load_run(path: str | Path, which: str = "auto", device: str = "cpu") -> Run:
    """Reload a run directory: ``which`` is ``checkpoint`` (the last saved state), ``best``, or ``auto``:
    ``best`` where a validation split chose it (the weights the run's training returned), else ``checkpoint``.
    ``Run.weights`` says which it loaded.

    ``Run.metrics`` is the history the checkpoint holds (a ``metrics.jsonl`` line written
    after it, by a run that was then killed, is not part of it). Temp files that killed
    aekit writers left in the run are removed (only those: see :meth:`RunDir.remove_stale_temp_files`).
    """
    from aekit.models import create_model

    run_dir = RunDir.open(path)
    run_dir.remove_stale_temp_files()  # an interrupted `aekit report` or end of training: the next command tidies
    which = run_dir.chosen_weights(which)
    meta = run_dir.read_checkpoint_meta(which)
    cfg = build_config(config=saved_config(meta["config"]))
    model = create_model(cfg.model, tuple(meta["input_shape"]))
    run_dir.load_weights(which, model, device)
    model.to(device).eval()
    return Run(path=run_dir.path, config=cfg, model=model, metrics=run_dir.read_metrics(),
               data_origin=meta.get("data_origin", ""), weights=which)


def saved_config(config: dict) -> dict:
    """A saved run's config as this aekit reads it: fields added since it was written get the value
    that the run was trained with (a conv body from before ``conv_decoder`` has the ``refine`` head).
    """
    from aekit.models.configs import MODEL_CONFIGS

    model = config.get("model", {})
    conv = model.get("model") == "conv" or model.get("arch") == "conv"
    name = model.get("model")
    declared = MODEL_CONFIGS.get(name) if isinstance(name, str) else None  # fields the model's config declares
    if conv and "conv_decoder" not in model and "conv_decoder" in getattr(declared, "__dataclass_fields__", {}):
        config = {**config, "model": {**model, "conv_decoder": "refine"}}
    return config


def _as_run(run: Run | str | Path, which: str = "auto") -> Run:
    return run if isinstance(run, Run) else load_run(run, which)
