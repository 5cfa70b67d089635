"""aekit export: every registered model's encoder and decoder as ONNX (run in onnxruntime) and TorchScript."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from aekit.config import field_names
from aekit.integrations.export import ATOL, export_model, export_run, read_metadata, run_exported
from aekit.models import create_model, get_config_class, list_models

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

DOCS = Path(__file__).resolve().parents[1] / "docs" / "integrations.md"


def small_model(name: str, **fields):
    fields = {"latent_dim": 3, "hidden": (16,), **fields}
    if "channels" in field_names(get_config_class(name)):
        fields.setdefault("channels", (4, 8))
    return create_model(name, (1, 28, 28), **fields).eval()


def torch_out(model, method: str, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return getattr(model, method)(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_exports_its_encoder_and_decoder(name, tmp_path):
    import onnx

    model = small_model(name)
    rng = np.random.default_rng(0)
    for fmt, suffix in (("onnx", ".onnx"), ("torchscript", ".pt")):
        encoder = export_model(model, tmp_path / f"encoder{suffix}", "encoder", fmt)
        decoder = export_model(model, tmp_path / f"decoder{suffix}", "decoder", fmt)
        for batch in (1, 7):  # the batch size is dynamic
            x = rng.random((batch, 1, 28, 28), dtype=np.float32)
            z = run_exported(encoder, x)
            assert z.shape == (batch, 3)
            np.testing.assert_allclose(z, torch_out(model, "encode", x), atol=ATOL, rtol=0)
            np.testing.assert_allclose(run_exported(decoder, z), torch_out(model, "decode", z), atol=ATOL, rtol=0)
    onnx.checker.check_model(onnx.load(str(tmp_path / "encoder.onnx")), full_check=True)


def test_resconv_with_its_linear_path_exports_the_pca_start_and_the_clamp(tmp_path):
    import torch

    model = create_model("resconv", (3, 16, 16), latent_dim=4, width=4, max_width=8, linear_path=True)
    rng = np.random.default_rng(2)
    model.init_from_data(torch.from_numpy(rng.random((64, 3, 16, 16), dtype=np.float32)))
    with torch.no_grad():
        model.decoder[-1].conv.bias.fill_(0.8)  # pushes pixels past 1: the exported decoder must clamp them too
    model.eval()
    for fmt, suffix in (("onnx", ".onnx"), ("torchscript", ".pt")):
        encoder = export_model(model, tmp_path / f"encoder{suffix}", "encoder", fmt)
        decoder = export_model(model, tmp_path / f"decoder{suffix}", "decoder", fmt)
        x = rng.random((5, 3, 16, 16), dtype=np.float32)
        z = run_exported(encoder, x)
        np.testing.assert_allclose(z, torch_out(model, "encode", x), atol=ATOL, rtol=0)
        out = run_exported(decoder, z)
        np.testing.assert_allclose(out, torch_out(model, "decode", z), atol=ATOL, rtol=0)
        assert out.max() == 1.0 and out.min() >= 0.0


def test_a_vae_encoder_exports_the_mean_code(tmp_path):
    import torch

    model = small_model("vae", arch="conv")
    path = export_model(model, tmp_path / "encoder.onnx", "encoder", "onnx")
    x = np.random.default_rng(1).random((4, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        mu, _ = model.encode_distribution(torch.from_numpy(x))
    np.testing.assert_allclose(run_exported(path, x), mu.numpy(), atol=ATOL, rtol=0)


def test_the_files_say_how_to_scale_pixels(tmp_path):
    from aekit.resolve import build_config

    cfg = build_config("classic-2d-relu")
    model = create_model(cfg.model, (1, 28, 28))
    for suffix, fmt in ((".onnx", "onnx"), (".pt", "torchscript")):
        meta = read_metadata(export_model(model, tmp_path / f"d{suffix}", "decoder", fmt, "centered", cfg.to_dict()))
        assert meta["aekit.part"] == "decoder" and meta["aekit.scale"] == "centered"
        assert float(meta["aekit.pixel_offset"]) == 0.5 and meta["aekit.preset"] == "classic-2d-relu"
        assert meta["aekit.input_shape"] == "1,28,28" and meta["aekit.latent_dim"] == "2"
        assert "uint8 / 255 - 0.5" in meta["aekit.pixels"]


def test_cli_exports_a_run_and_checks_it_on_test_images(sample_run, tmp_path, capsys):
    from aekit.cli.main import main

    assert main(["export", str(sample_run.path), "--out", str(tmp_path / "onnx")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" (")[0] for line in lines] == [f"wrote {tmp_path / 'onnx' / p}.onnx" for p in
                                                       ("encoder", "decoder")]
    assert all("on 64 test images" in line for line in lines)
    single = tmp_path / "dec.pt"
    assert main(["export", str(sample_run.path), "--format", "torchscript", "--part", "decoder", "--out",
                 str(single), "--no-check"]) == 0
    assert single.is_file() and read_metadata(single)["aekit.model"] == "mlp"


def test_a_missing_onnx_extra_is_one_line(sample_run, tmp_path, monkeypatch, capsys):
    from aekit.cli.main import main

    monkeypatch.setitem(sys.modules, "onnx", None)
    assert main(["export", str(sample_run.path), "--out", str(tmp_path), "--no-check"]) == 2
    assert capsys.readouterr().err.strip() == ("aekit export: error: ONNX export needs aekit's onnx extra: "
                                               "pip install 'aekit[onnx]'")


@pytest.mark.parametrize("page", [DOCS, DOCS.parents[1] / "README.md"], ids=["docs", "readme"])
def test_the_serving_example_runs_as_written(sample_run, tmp_path, monkeypatch, page):
    """The onnxruntime example in docs/integrations.md and the README, run on an exported encoder and test images."""
    block = page.read_text().split("<!-- serving example -->", 1)[1]
    code = block.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) <= 10
    images = sample_run.load_data().x_test[:20]
    export_run(sample_run, "onnx", ("encoder",), tmp_path / "encoder.onnx")
    np.save(tmp_path / "images.npy", images)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, str(page), "exec"), namespace)
    np.testing.assert_allclose(namespace["codes"], sample_run.encode(images), atol=ATOL, rtol=0)


def large_code_model():
    """A conv model on 64x64 colour images whose codes reach a few hundred, as a real run's can (issue 18)."""
    import torch

    torch.manual_seed(0)
    model = create_model("conv", (3, 64, 64), latent_dim=16, channels=(32, 64)).eval()
    with torch.no_grad():
        model.encoder.head[1].weight.mul_(300)
        model.encoder.head[1].bias.mul_(300)
    return model


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_codes_in_the_hundreds_pass_a_check_scaled_to_their_size(fmt):
    from aekit.integrations.export import RTOL, check_export, export_bytes, tolerance

    model = large_code_model()
    x = np.random.default_rng(0).random((64, 3, 64, 64), dtype=np.float32)
    z = torch_out(model, "encode", x)
    assert 100 < np.abs(z).max() < 1000
    data = export_bytes(model, "encoder", fmt)
    error = check_export(model, data, "encoder", x, fmt)
    assert error <= tolerance(z) == pytest.approx(ATOL + RTOL * np.abs(z).max())
    # float32 rounding of values this size can exceed a fixed 1e-4, but stays far below the scaled tolerance
    assert np.abs(run_exported(data, x, fmt) - z).max() < tolerance(z) / 5


def scaled_run(sample_run, tmp_path, factor=300.0):
    """A copy of the sample run whose last encoder layer is ``factor`` times larger: codes in the hundreds."""
    import shutil

    import aekit
    from aekit.rundir import RunDir

    path = tmp_path / "big"
    shutil.copytree(sample_run.path, path)
    rundir = RunDir(path)
    tensors, meta = rundir.load_checkpoint()
    last = max(k for k in tensors if k.startswith("model/encoder.") and k.endswith(".weight"))
    for key in (last, last.replace(".weight", ".bias")):
        tensors[key] = tensors[key] * factor
    meta.pop("format")
    rundir.save_checkpoint("checkpoint", tensors, meta)
    return aekit.load_run(path)


def test_cli_exports_and_checks_a_run_with_codes_in_the_hundreds(sample_run, tmp_path, capsys):
    from aekit.cli.main import main

    run = scaled_run(sample_run, tmp_path)
    assert np.abs(run.encode(run.load_data().x_test[:64])).max() > 100
    for fmt, suffix in (("onnx", ".onnx"), ("torchscript", ".pt")):
        assert main(["export", str(run.path), "--format", fmt, "--out", str(tmp_path / fmt)]) == 0
        assert sorted(p.name for p in (tmp_path / fmt).iterdir()) == [f"decoder{suffix}", f"encoder{suffix}"]
    assert all("on 64 test images" in line for line in capsys.readouterr().out.splitlines())


def test_help_states_the_tolerance():
    from aekit.cli import export as cli_export
    from aekit.integrations.export import RTOL

    assert (ATOL, RTOL) == (1e-4, 1e-5)  # as the help and the docs say
    assert "within 1e-4 + 1e-5 x the largest |PyTorch output|" in " ".join(cli_export.__doc__.split())
    assert "1e-4 + 1e-5 × the largest" in " ".join(DOCS.read_text().split())


def test_a_failed_check_is_one_line_and_writes_nothing(sample_run, tmp_path, monkeypatch, capsys):
    from aekit.cli.main import main
    from aekit.integrations import export

    real = export.run_exported
    monkeypatch.setattr(export, "run_exported", lambda *a, **k: real(*a, **k) + 0.01)  # an exporter gone wrong
    out = tmp_path / "new" / "export"
    for fmt in ("onnx", "torchscript"):
        assert main(["export", str(sample_run.path), "--format", fmt, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith(f"aekit export: error: {out / 'encoder'}")
        assert "differs from PyTorch by 0.01, more than the tolerance" in err and "nothing was written" in err
        assert not (tmp_path / "new").exists()
    # a decoder that fails its check after the encoder passed writes neither
    monkeypatch.setattr(export, "run_exported", lambda src, x, fmt=None: real(src, x, fmt) + (x.ndim == 2))
    assert main(["export", str(sample_run.path), "--out", str(out)]) == 2
    assert "exported decoder differs" in capsys.readouterr().err and not (tmp_path / "new").exists()


def _aekit(*args):
    import subprocess

    return subprocess.run([sys.executable, "-m", "aekit", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_a_full_disk_is_one_line_and_leaves_nothing(sample_run, tmp_path, fmt):
    from test_resume_kill import _tmpfs

    with _tmpfs(tmp_path / "full", "256k") as full:
        fd = os.open(full / "filler", os.O_WRONLY | os.O_CREAT)
        try:  # fill the disk to its last byte
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        res = _aekit("export", sample_run.path, "--format", fmt, "--out", full / "export", "--no-check")
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1, res.stderr  # not SIGABRT and a C++ dump
        assert lines[0].startswith(f"aekit export: error: {full / 'export'}") and "No space left" in lines[0]
        assert [p.name for p in full.rglob("*")] == ["filler"]  # no file, no temp file, no directory


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_a_read_only_disk_is_one_line_and_leaves_nothing(sample_run, tmp_path, fmt):
    from test_resume_kill import _tmpfs

    with _tmpfs(tmp_path / "ro", "1m", readonly=True) as ro:
        res = _aekit("export", sample_run.path, "--format", fmt, "--out", ro / "export", "--part", "encoder")
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1, res.stderr
        assert lines[0].startswith(f"aekit export: error: {ro / 'export'}") and "Read-only file system" in lines[0]
        assert not list(ro.iterdir())
