"""The encoder and decoder as files that run without aekit: ONNX or TorchScript (``aekit export``).

Each part is one file with one input and one output, the batch size dynamic:

- ``encoder``: ``x`` float32 ``(N, C, H, W)`` in the model's pixel range -> ``z``
  float32 ``(N, code_size)``, the model's flat code (``AutoEncoder.flat_codes``: a
  vector code as it is, a grid flattened, index codes one-hot); a VAE's encoder gives
  the mean code;
- ``decoder``: ``z`` ``(N, code_size)`` -> ``x`` in the model's pixel range.

``aekit.code_shape`` and ``aekit.code`` in the metadata say what a flat code holds.

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
PyTorch, within ``ATOL + RTOL * max|PyTorch output|`` (:func:`tolerance`): float32 gives
the same relative rounding to codes in the hundreds as to codes near 1.

A file is made in memory, checked there, and only then written, atomically
(:func:`aekit.io.atomic_write_bytes`): a failed check or a full or read-only disk
leaves no file, half-written or temporary.

Install with ``pip install 'aekit[onnx]'``. TorchScript files are made by tracing;
PyTorch marks TorchScript deprecated too, but the files still load (in C++ as well).
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np

from aekit.errors import AekitError, ConfigError
from aekit.integrations import require

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
PARTS = ("encoder", "decoder")
PARTS_RUN = {  # what each part computes, on flat codes: the same as the Python API's encode and decode
    "encoder": lambda model, x: model.flat_codes(model.encode(x)),
    "decoder": lambda model, z: model.decode(model.unflat_codes(z)),
}
EXPORT_FORMAT = "aekit-export/1"
ATOL = 1e-4  # check_export accepts |exported - PyTorch| up to ATOL + RTOL * max|PyTorch output|
RTOL = 1e-5  # float32 rounds to ~1e-7 of a value; the sums in a layer add a few hundred of those
OPSET = 17  # ONNX opset of the exported files: read by every current runtime (onnxruntime >= 1.14)


def _part_module(model, part: str):
    """A module whose ``forward`` is the model's ``encode`` or ``decode``, in eval mode."""
    from torch import nn

    class Part(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            return PARTS_RUN[part](self.model, x)

    return Part().eval()


def example_input(model, part: str, batch: int = 2):
    """A zero batch shaped like the part's input (2 rows: a batch of 1 would be specialised as a constant)."""
    import torch

    device = next(model.parameters()).device
    shape = model.input_shape if part == "encoder" else (model.code_size,)
    return torch.zeros(batch, *shape, device=device)


def metadata(model, part: str, scale: str, config: dict | None = None) -> dict[str, str]:
    """What an exported file says about itself (string keys and values, as ONNX metadata wants)."""
    from aekit.pixels import to_model

    offset = 0.0 - float(to_model(np.zeros(1, np.uint8), scale)[0])  # 0 for unit, 0.5 for centered (never -0.0)
    c, h, w = model.input_shape
    k = model.code_size
    io_doc = {"encoder": f"x float32 (N, {c}, {h}, {w}) -> z float32 (N, {k})",
              "decoder": f"z float32 (N, {k}) -> x float32 (N, {c}, {h}, {w})"}
    return {
        "aekit.format": EXPORT_FORMAT,
        "aekit.part": part,
        "aekit.io": io_doc[part],
        "aekit.model": model.name,
        "aekit.preset": str((config or {}).get("preset") or ""),
        "aekit.latent_dim": str(k),  # the flat code's width
        "aekit.code_shape": ",".join(map(str, model.code_shape)),
        "aekit.code": model.describe_code(),
        "aekit.input_shape": ",".join(map(str, model.input_shape)),
        "aekit.scale": scale,
        "aekit.pixel_offset": repr(offset),
        "aekit.pixels": f"x = uint8 / 255 - {offset:g}; uint8 = round(clip(x + {offset:g}, 0, 1) * 255)",
        "aekit.config": json.dumps(config or {}),
    }


def export_model(model, path, part: str = "encoder", fmt: str = "onnx", scale: str = "unit",
                 config: dict | None = None) -> Path:
    """Write ``model``'s ``part`` (``encoder`` or ``decoder``) as ``fmt`` (``onnx`` or ``torchscript``) to ``path``.

    The file is written atomically: a full or read-only disk is a
    :class:`~aekit.errors.WriteError` and leaves nothing at ``path``.

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
    from aekit.io import atomic_write_bytes

    return atomic_write_bytes(path, export_bytes(model, part, fmt, scale, config))


def export_bytes(model, part: str = "encoder", fmt: str = "onnx", scale: str = "unit",
                 config: dict | None = None) -> bytes:
    """The file :func:`export_model` writes, as bytes: made in memory, so that no disk can abort it half-way."""
    if part not in PARTS:
        raise ConfigError(f"part: {part!r} is not allowed; choose one of: {', '.join(PARTS)}, both", params=("part",))
    _check_format(fmt)
    was_training = model.training
    model.eval()
    try:
        module, x = _part_module(model, part), example_input(model, part)
        meta = metadata(model, part, scale, config)
        return (_onnx_bytes if fmt == "onnx" else _torchscript_bytes)(module, x, part, meta)
    finally:
        model.train(was_training)


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"fmt: {fmt!r} is not allowed; choose one of: {', '.join(FORMATS)}", params=("fmt",))


def _io_names(part: str) -> tuple[str, str]:
    return ("x", "z") if part == "encoder" else ("z", "x")


def _onnx_bytes(module, x, part: str, meta: dict[str, str]) -> bytes:
    import torch

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
    return proto.SerializeToString()


def _torchscript_bytes(module, x, part: str, meta: dict[str, str]) -> bytes:
    import torch

    buffer = io.BytesIO()  # torch.jit.save to a file aborts the process (SIGABRT) on a full disk
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit warns that it is deprecated; the files still load
        traced = torch.jit.trace(module, (x,))
        torch.jit.save(traced, buffer, _extra_files={"aekit.json": json.dumps(meta)})
    return buffer.getvalue()


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


def run_exported(source, x: np.ndarray, fmt: str | None = None) -> np.ndarray:
    """Run an exported file on ``x`` (float32) as a user would: onnxruntime, or ``torch.jit.load``.

    ``source`` is the file's path (its suffix gives the format) or its bytes (then ``fmt`` says).
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    if fmt is None:
        fmt = "onnx" if Path(source).suffix == FORMATS["onnx"] else "torchscript"
    if fmt == "onnx":
        ort = require("onnxruntime", "onnx", "running an ONNX file")
        model = source if isinstance(source, bytes) else str(source)
        session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: x})[0]
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.load(io.BytesIO(source) if isinstance(source, bytes) else str(source), map_location="cpu")
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def tolerance(expected: np.ndarray) -> float:
    """The largest ``|exported - PyTorch|`` :func:`check_export` accepts: ``ATOL + RTOL * max|expected|``."""
    return ATOL + RTOL * float(np.max(np.abs(expected), initial=0.0))


def _short(value: float) -> str:
    return f"{value:.0e}".replace("e-0", "e-")  # 1e-4, not 1e-04


class ExportCheckError(AekitError, RuntimeError):
    """An exported file's outputs differ from PyTorch's by more than :func:`tolerance`; no file was written."""


def check_export(model, source, part: str, x: np.ndarray, fmt: str | None = None, name=None) -> float:
    """The largest ``|exported - PyTorch|`` over the inputs ``x`` (model-range images for the encoder,
    codes for the decoder); above :func:`tolerance` it raises :class:`ExportCheckError`.

    ``source`` and ``fmt`` are as in :func:`run_exported`; ``name`` is what the message calls the
    file (default ``source``, when it is a path).
    """
    import torch

    model.eval()
    with torch.no_grad():
        device = next(model.parameters()).device
        expected = PARTS_RUN[part](model, torch.as_tensor(x, dtype=torch.float32, device=device)).cpu().numpy()
    error = float(np.max(np.abs(run_exported(source, x, fmt) - expected))) if len(x) else 0.0
    limit = tolerance(expected)
    if not error <= limit:  # a NaN fails too
        name = name or (source if not isinstance(source, bytes) else f"the {part}")
        raise ExportCheckError(f"{name}: the exported {part} differs from PyTorch by {error:.3g}, more than the "
                               f"tolerance {limit:.3g} ({_short(ATOL)} + {_short(RTOL)} x the largest |output|, "
                               f"{np.max(np.abs(expected)):.3g})")
    return error


def export_run(run, fmt: str = "onnx", parts=PARTS, out=None, check_images: np.ndarray | None = None,
               log=None) -> list[Path]:
    """Export a run's ``parts`` as ``fmt``; returns the paths written.

    ``out`` is a directory (default ``<run>/export``) that gets ``encoder.onnx`` and so
    on, or, for one part, a file name ending in the format's suffix (``.onnx``, ``.pt``).
    With ``check_images`` (uint8 ``(N, C, H, W)``, e.g. test images), each file is run on
    them (the decoder on their codes) and compared with PyTorch (:func:`check_export`)
    before anything is written; ``log`` gets one line per file. Every file is made and
    checked in memory first, then each is written atomically: a failed check writes
    nothing, and a full or read-only disk (:class:`~aekit.errors.WriteError`) leaves no
    temp file and no directory this call made.
    """
    from aekit.pixels import to_model

    _check_format(fmt)
    log = log or (lambda msg: None)
    out = Path(out) if out is not None else run.path / "export"
    single_file = len(parts) == 1 and out.suffix == FORMATS[fmt]
    files = []
    for part in parts:
        path = out if single_file else out / f"{part}{FORMATS[fmt]}"
        data = export_bytes(run.model, part, fmt, run.scale, run.config.to_dict())
        line = f"wrote {path}"
        if check_images is not None:
            inputs = to_model(check_images, run.scale).numpy() if part == "encoder" else run.encode(check_images)
            try:
                error = check_export(run.model, data, part, inputs, fmt, name=path)
            except ExportCheckError as exc:
                raise ExportCheckError(f"{exc}; nothing was written") from None
            line += f" (max |{fmt} - torch| {error:.2g} on {len(inputs)} test images)"
        files.append((path, data, line))
    _write_all(files, log)
    return [path for path, _, _ in files]


def _write_all(files: list[tuple[Path, bytes, str]], log) -> None:
    """Write each ``(path, data, line)`` atomically, logging ``line``; on a failure remove the directories made."""
    from aekit.io import atomic_write_bytes

    made = _missing_dirs(files[0][0].parent) if files else []
    try:
        for path, data, line in files:
            atomic_write_bytes(path, data)
            log(line)
    except BaseException:
        for directory in made:  # deepest first; only while empty
            try:
                directory.rmdir()
            except OSError:
                break
        raise


def _missing_dirs(directory: Path) -> list[Path]:
    """``directory`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not directory.exists() and directory != directory.parent:
        missing.append(directory)
        directory = directory.parent
    return missing


__all__ = ["ATOL", "EXPORT_FORMAT", "FORMATS", "PARTS", "RTOL", "ExportCheckError", "check_export", "example_input",
           "export_bytes", "export_model", "export_run", "metadata", "read_metadata", "run_exported", "tolerance"]
