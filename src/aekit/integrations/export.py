"""The encoder and decoder as files that run without aekit: ONNX or TorchScript (``aekit export``).

Each part is one file with one input and one output, the batch size dynamic:

- ``encoder``: ``x`` float32 ``(N, C, H, W)`` in the model's pixel range -> ``z``
  float32 ``(N, latent_dim)``; a VAE's encoder gives the mean code;
- ``decoder``: ``z`` -> ``x`` in the model's pixel range.

The pixel range travels with the file: ``aekit.pixel_offset`` is what to subtract
after dividing uint8 pixels by 255 (``0`` for ``unit``, ``0.5`` for ``centered``), so
``x = pixels / 255 - offset`` and back ``pixels = clip(x + offset, 0, 1) * 255``.
ONNX files keep it in ``metadata_props`` (``session.get_modelmeta().custom_metadata_map``
in onnxruntime), TorchScript files in the extra file ``aekit.json``
(``torch.jit.load(path, _extra_files={"aekit.json": ""})``); both also hold the model,
preset, code size, input shape and the full config.

ONNX goes through ``torch.onnx.export(..., dynamo=False)``, the TorchScript-based
exporter: it needs no package beyond ``onnx`` (which checks the file) and takes a
tenth of a second a part, where the ``torch.export``-based one (``dynamo=True``)
needs ``onnxscript`` and about a second. PyTorch marks the former deprecated;
switching is the one argument, plus ``onnxscript`` in the ``onnx`` extra.
:func:`check_export` runs a file in onnxruntime (or TorchScript) and compares it with
PyTorch. Install with ``pip install 'aekit[onnx]'``. TorchScript files are made by
tracing; PyTorch marks TorchScript deprecated too, but the files still load (in C++
as well).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from aekit.errors import ConfigError
from aekit.integrations import require

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
PARTS = ("encoder", "decoder")
METHODS = {"encoder": "encode", "decoder": "decode"}  # the model's method each part runs
EXPORT_FORMAT = "aekit-export/1"
TOLERANCE = 1e-4  # largest |exported - PyTorch| accepted by check_export
OPSET = 17  # ONNX opset of the exported files: read by every current runtime (onnxruntime >= 1.14)


def _part_module(model, part: str):
    """A module whose ``forward`` is the model's ``encode`` or ``decode``, in eval mode."""
    from torch import nn

    class Part(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            return getattr(self.model, METHODS[part])(x)

    return Part().eval()


def example_input(model, part: str, batch: int = 2):
    """A zero batch shaped like the part's input (2 rows: a batch of 1 would be specialised as a constant)."""
    import torch

    device = next(model.parameters()).device
    shape = model.input_shape if part == "encoder" else (model.latent_dim,)
    return torch.zeros(batch, *shape, device=device)


def metadata(model, part: str, scale: str, config: dict | None = None) -> dict[str, str]:
    """What an exported file says about itself (string keys and values, as ONNX metadata wants)."""
    from aekit.pixels import to_model

    offset = 0.0 - float(to_model(np.zeros(1, np.uint8), scale)[0])  # 0 for unit, 0.5 for centered (never -0.0)
    c, h, w = model.input_shape
    io_doc = {"encoder": f"x float32 (N, {c}, {h}, {w}) -> z float32 (N, {model.latent_dim})",
              "decoder": f"z float32 (N, {model.latent_dim}) -> x float32 (N, {c}, {h}, {w})"}
    return {
        "aekit.format": EXPORT_FORMAT,
        "aekit.part": part,
        "aekit.io": io_doc[part],
        "aekit.model": model.name,
        "aekit.preset": str((config or {}).get("preset") or ""),
        "aekit.latent_dim": str(model.latent_dim),
        "aekit.input_shape": ",".join(map(str, model.input_shape)),
        "aekit.scale": scale,
        "aekit.pixel_offset": repr(offset),
        "aekit.pixels": f"x = uint8 / 255 - {offset:g}; uint8 = round(clip(x + {offset:g}, 0, 1) * 255)",
        "aekit.config": json.dumps(config or {}),
    }


def export_model(model, path, part: str = "encoder", fmt: str = "onnx", scale: str = "unit",
                 config: dict | None = None) -> Path:
    """Write ``model``'s ``part`` (``encoder`` or ``decoder``) as ``fmt`` (``onnx`` or ``torchscript``) to ``path``.

    Parameters
    ----------
    model : aekit.models.AutoEncoder
    path : str or Path
    part : {"encoder", "decoder"}
    fmt : {"onnx", "torchscript"}
    scale : str
        The model's pixel scale, written into the file's metadata.
    config : dict, optional
        The run's config (``RunConfig.to_dict()``), written into the metadata.

    Returns
    -------
    Path
    """
    if part not in PARTS:
        raise ConfigError(f"--part: {part!r} is not allowed; choose one of: {', '.join(PARTS)}, both")
    if fmt not in FORMATS:
        raise ConfigError(f"--format: {fmt!r} is not allowed; choose one of: {', '.join(FORMATS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    try:
        module, x = _part_module(model, part), example_input(model, part)
        meta = metadata(model, part, scale, config)
        (_export_onnx if fmt == "onnx" else _export_torchscript)(module, x, part, meta, path)
    finally:
        model.train(was_training)
    return path


def _io_names(part: str) -> tuple[str, str]:
    return ("x", "z") if part == "encoder" else ("z", "x")


def _export_onnx(module, x, part: str, meta: dict[str, str], path: Path) -> None:
    import io

    import torch

    from aekit.io import atomic_write

    onnx = require("onnx", "onnx", "ONNX export")
    name_in, name_out = _io_names(part)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the note that this exporter is deprecated (see the module docstring)
        torch.onnx.export(module, (x,), buffer, dynamo=False, input_names=[name_in], output_names=[name_out],
                          dynamic_axes={name_in: {0: "batch"}, name_out: {0: "batch"}}, opset_version=OPSET)
    proto = onnx.load_from_string(buffer.getvalue())
    proto.doc_string = f"aekit {meta['aekit.model']} {part}: {meta['aekit.io']}; {meta['aekit.pixels']}"
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto, full_check=True)
    atomic_write(path, lambda tmp: onnx.save(proto, tmp))


def _export_torchscript(module, x, part: str, meta: dict[str, str], path: Path) -> None:
    import torch

    from aekit.io import atomic_write

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit warns that it is deprecated; the files still load
        traced = torch.jit.trace(module, (x,))
        extra = {"aekit.json": json.dumps(meta)}
        atomic_write(path, lambda tmp: torch.jit.save(traced, tmp, _extra_files=extra))


def read_metadata(path) -> dict[str, str]:
    """The ``aekit.*`` metadata of an exported file (ONNX or TorchScript)."""
    path = Path(path)
    if path.suffix == FORMATS["onnx"]:
        onnx = require("onnx", "onnx", "reading an ONNX file")
        return {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    import torch

    extra = {"aekit.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return json.loads(extra["aekit.json"])


def run_exported(path, x: np.ndarray) -> np.ndarray:
    """Run an exported file on ``x`` (float32) as a user would: onnxruntime, or ``torch.jit.load``."""
    path = Path(path)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if path.suffix == FORMATS["onnx"]:
        ort = require("onnxruntime", "onnx", "running an ONNX file")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: x})[0]
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def check_export(model, path, part: str, x: np.ndarray) -> float:
    """The largest ``|exported - PyTorch|`` over the inputs ``x`` (model-range images for the encoder,
    codes for the decoder); above :data:`TOLERANCE` it raises ``RuntimeError``.
    """
    import torch

    model.eval()
    with torch.no_grad():
        device = next(model.parameters()).device
        expected = getattr(model, METHODS[part])(torch.as_tensor(x, dtype=torch.float32, device=device)).cpu().numpy()
    error = float(np.max(np.abs(run_exported(path, x) - expected))) if len(x) else 0.0
    if not error <= TOLERANCE:
        raise RuntimeError(f"{path}: the exported {part} differs from PyTorch by {error:.3g} (> {TOLERANCE})")
    return error


def export_run(run, fmt: str = "onnx", parts=PARTS, out=None, check_images: np.ndarray | None = None,
               log=None) -> list[Path]:
    """Export a run's ``parts`` as ``fmt``; returns the paths written.

    ``out`` is a directory (default ``<run>/export``) that gets ``encoder.onnx`` and so
    on, or, for one part, a file name ending in the format's suffix (``.onnx``, ``.pt``).
    With ``check_images`` (uint8 ``(N, C, H, W)``, e.g. test images), each file is run on
    them (the decoder on their codes) and compared with PyTorch (:func:`check_export`);
    ``log`` gets one line per file.
    """
    from aekit.pixels import to_model

    if fmt not in FORMATS:
        raise ConfigError(f"--format: {fmt!r} is not allowed; choose one of: {', '.join(FORMATS)}")
    log = log or (lambda msg: None)
    out = Path(out) if out is not None else run.path / "export"
    single_file = len(parts) == 1 and out.suffix == FORMATS[fmt]
    paths = []
    for part in parts:
        path = out if single_file else out / f"{part}{FORMATS[fmt]}"
        export_model(run.model, path, part, fmt, run.scale, run.config.to_dict())
        line = f"wrote {path}"
        if check_images is not None:
            inputs = to_model(check_images, run.scale).numpy() if part == "encoder" else run.encode(check_images)
            error = check_export(run.model, path, part, inputs)
            line += f" (max |{fmt} - torch| {error:.2g} on {len(inputs)} test images)"
        log(line)
        paths.append(path)
    return paths


__all__ = ["EXPORT_FORMAT", "FORMATS", "PARTS", "TOLERANCE", "check_export", "example_input", "export_model",
           "export_run", "metadata", "read_metadata", "run_exported"]
