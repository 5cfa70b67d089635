"""aekit export: every registered model's encoder and decoder as ONNX (run in onnxruntime) and TorchScript."""

import sys
from pathlib import Path

import numpy as np
import pytest

from aekit.config import field_names
from aekit.integrations.export import TOLERANCE, export_model, export_run, read_metadata, run_exported
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
            np.testing.assert_allclose(z, torch_out(model, "encode", x), atol=TOLERANCE, rtol=0)
            np.testing.assert_allclose(run_exported(decoder, z), torch_out(model, "decode", z), atol=TOLERANCE, rtol=0)
    onnx.checker.check_model(onnx.load(str(tmp_path / "encoder.onnx")), full_check=True)


def test_a_vae_encoder_exports_the_mean_code(tmp_path):
    import torch

    model = small_model("vae", arch="conv")
    path = export_model(model, tmp_path / "encoder.onnx", "encoder", "onnx")
    x = np.random.default_rng(1).random((4, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        mu, _ = model.encode_distribution(torch.from_numpy(x))
    np.testing.assert_allclose(run_exported(path, x), mu.numpy(), atol=TOLERANCE, rtol=0)


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
    np.testing.assert_allclose(namespace["codes"], sample_run.encode(images), atol=TOLERANCE, rtol=0)
